"""Baseline: Flask-PyMongo ``send_file`` from GridFS (the library way).

Env: ``BENCH_MONGO_URI`` (with the database name in its path). Files are stored beforehand
with ``PyMongo.save_file`` so that each carries the sha1 that ``send_file`` uses as its ETag.
"""

from __future__ import annotations

import os

from flask import Flask
from flask_pymongo import PyMongo

app = Flask(__name__)
app.config["MONGO_URI"] = os.environ["BENCH_MONGO_URI"]
# connect=False: the client is made before gunicorn forks; no socket exists until first use.
mongo = PyMongo(app, connect=False)


@app.get("/files/<path:name>")
def files(name: str):
    return mongo.send_file(name)
