"""Baseline: the naive way, ``GridFS.get(id).read()`` into one response body.

Env: ``BENCH_MONGO_URI`` (with the database name in its path).
"""

from __future__ import annotations

import os

import gridfs
from bson import ObjectId
from bson.errors import InvalidId
from flask import Flask, Response, abort
from pymongo import MongoClient

app = Flask(__name__)
# connect=False: the client is made before gunicorn forks; no socket exists until first use.
client = MongoClient(os.environ["BENCH_MONGO_URI"], connect=False)
fs = gridfs.GridFS(client.get_default_database())


@app.get("/files/<file_id>")
def files(file_id: str):
    try:
        grid_out = fs.get(ObjectId(file_id))
    except (InvalidId, gridfs.NoFile):
        abort(404)
    return Response(grid_out.read(), mimetype="image/jpeg")
