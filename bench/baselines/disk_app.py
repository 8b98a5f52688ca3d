"""Baseline: Flask ``send_from_directory`` from local disk (what Avenue did before GridFS).

Env: ``BENCH_DATA_DIR`` is the folder served at ``/files/<name>``.
"""

from __future__ import annotations

import os

from flask import Flask, send_from_directory

app = Flask(__name__)
DATA_DIR = os.environ["BENCH_DATA_DIR"]


@app.get("/files/<path:name>")
def files(name: str):
    return send_from_directory(DATA_DIR, name, max_age=31536000)
