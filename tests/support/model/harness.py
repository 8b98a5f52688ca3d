"""The harnesses the store model runs on (tests/support/model/machine.py's :class:`Harness`).

- :func:`in_process`: ``workers`` apps in this process on one database, each its own media
  cache (as gunicorn workers are; one's in-memory evictions not heard by the others, as in
  another process). Fast; mongomock or SecantusDB.
- :func:`on_servers`: real gunicorn servers (the Procfile's worker, ``reuse_port``) on one
  SecantusDB database, reached over loopback on fresh connections; a restart is a server's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymongo

from avenue.media.serve.route import get_cache
from tests.helpers import make_app
from tests.support import tokens
from tests.support.imageserver import ImageServer
from tests.support.launcher import Gunicorn
from tests.support.model.doors import FlaskDoor, HttpDoor
from tests.support.model.machine import Harness

#: The model's pictures are a few KB: a resumable upload cut in four sends pieces that small.
# The URL imports' supplier runs on loopback: its network and any port allowed.
CONFIG = {"AVENUE_TUS_MIN_CHUNK_BYTES": 1, "AVENUE_URL_IMPORT_ALLOW_NETWORKS": ["127.0.0.1/32"],
          "AVENUE_URL_IMPORT_PORTS": ""}
ENV = {"AVENUE_TUS_MIN_CHUNK_BYTES": "1", "AVENUE_URL_IMPORT_ALLOW_NETWORKS": "127.0.0.1/32",
       "AVENUE_URL_IMPORT_PORTS": ""}
#: What a reset keeps: who may call the API.
KEPT = frozenset({"users", "api_tokens"})
#: The earlier URLs' window on a real server: each worker polls its tombstones this often.
POLL_MS = 100


def close_apps(apps: list[Any]) -> None:
    from avenue.ops.rerender import wait_for_runs

    wait_for_runs(60)
    for built in apps:
        built.extensions["avenue.mongo"].client.close()


def _reset(db: Any) -> None:
    for name in db.list_collection_names():
        if name not in KEPT and not name.startswith("system."):
            db[name].delete_many({})


def _cli(app: Any, args: list[str]) -> int:
    result = app.test_cli_runner().invoke(args=args)
    if result.exit_code not in (0, 1):
        raise AssertionError(f"flask {' '.join(args)}: exit {result.exit_code}: {result.output[-2000:]}"
                             f"{result.exception!r}")
    if result.exit_code:
        print(result.output[-4000:])  # hypothesis shows it with the failing sequence
    return result.exit_code


@contextmanager
def in_process(backend: Any, db_name: str, workers: int = 2) -> Iterator[Harness]:
    """Harness: ``workers`` apps in this process on one database."""
    apps = [make_app(backend, db_name, **CONFIG) for _ in range(workers)]
    from avenue.media.effects import invalidation

    for app in apps[1:]:
        invalidation.LOCAL_CACHES.discard(get_cache(app))  # another process's cache
    with apps[0].app_context():
        from avenue.db import get_db, get_mongo

        get_mongo().ensure_indexes()
        db = get_db()
    doors: list[Any] = [FlaskDoor(app) for app in apps]

    def settle() -> None:  # every worker's next tombstone poll, now
        for door in doors:
            get_cache(door.app).sync(db, margin=3600.0)

    def restart(index: int) -> FlaskDoor:
        fresh = make_app(backend, db_name, **CONFIG)
        apps.append(fresh)
        invalidation.LOCAL_CACHES.discard(get_cache(fresh))
        return FlaskDoor(fresh)

    supplier = ImageServer()
    try:
        yield Harness(doors=doors, editor=tokens.issue(db, "editor"), admin=tokens.issue(db, "admin"),
                      cli=lambda args: _cli(apps[0], args), db=db, settle=settle, restart=restart,
                      reset=lambda: _reset(db), supplier=supplier)
    finally:
        supplier.close()
        close_apps(apps)


@contextmanager
def on_servers(mongo_uri: str, folder: Path, servers: int = 2, workers: int = 2,
               reads: int = 3) -> Iterator[Harness]:
    """Harness: ``servers`` gunicorn servers of ``workers`` workers each on one database of
    the server at ``mongo_uri``; a URL is read ``reads`` times on each (fresh connections)."""
    db_name = f"avenue_model_{uuid.uuid4().hex[:10]}"
    env = {"AVENUE_DELETIONS_POLL_MS": str(POLL_MS), "AVENUE_UPLOAD_RATE_LIMIT": "100000/minute",
           "AVENUE_RENDITION_RATE_LIMIT": "100000/minute", "RATELIMIT_ENABLED": "0", **ENV,
           # One key for every server, as a deployment shares it: a private URL one server
           # signed serves on the other (each launcher alone would make a key of its own).
           "SECRET_KEY": uuid.uuid4().hex * 2}
    started = [Gunicorn(mongo_uri, db_name, folder / f"model-{i}.log", workers=workers,
                        extra_env=env).start(90) for i in range(servers)]
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    db = client[db_name]
    cli_app = make_app((pymongo.MongoClient, mongo_uri), db_name)
    doors: list[Any] = [HttpDoor(server.port, reads=reads, name=f"server-{i}")
                        for i, server in enumerate(started)]

    def restart(index: int) -> HttpDoor:
        server = started[index]
        server.stop(grace=20)
        server.start(90)
        return HttpDoor(server.port, reads=reads, name=f"server-{index}")

    supplier = ImageServer()
    try:
        yield Harness(doors=doors, editor=tokens.issue(db, "editor"), admin=tokens.issue(db, "admin"),
                      cli=lambda args: _cli(cli_app, args), db=db,
                      settle=lambda: time.sleep(3 * POLL_MS / 1000 + 0.2), restart=restart,
                      reset=lambda: _reset(db), supplier=supplier)
    finally:
        supplier.close()
        for server in started:
            server.stop(grace=20)
        close_apps([cli_app])
        client.drop_database(db_name)
        client.close()
