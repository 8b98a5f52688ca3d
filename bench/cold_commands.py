#!/usr/bin/env python3
"""The database commands one cold rendition on request sends, counted by a pymongo command
listener (issue 46): this checkout's code, and with ``--code DIR`` another checkout's (a
``git archive`` of an older ref), each in a process of its own.

The app in process on a fresh embedded SecantusDB (as ``make run``'s: journaled writes),
``AVENUE_VARIANTS_AFTER_ANSWER`` on and the limits of unsigned renders on (their defaults'
windows); three uploads of the 12 MP corpus photo, each then asked for once through a preset
(``w_512,h_512,q_80``, a JPEG): the commands from the request to the end of its store after
the answer, by command and collection (the last of the three: the first also pays for
indexes and the first deletion poll).

    .venv/bin/python bench/cold_commands.py
    git archive 9e5b4bc | tar -x -C /tmp/before && .venv/bin/python bench/cold_commands.py --code /tmp/before
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from commands import CommandCounter

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def ask_cold(web: Any, paths: list[str], route: Any) -> None:
    """GET each of ``paths`` (renditions not stored yet) through Flask's test client ``web``,
    200 or exit, then wait for their stores after the answers where the checkout has them
    (``route.RENDITION_STORES``, from 98c07a1 until the lane was removed; before and after,
    a rendition is stored before its answer)."""
    for path in paths:
        answer = web.get(path)
        if answer.status_code != 200:
            raise SystemExit(f"HTTP {answer.status_code}: {answer.get_data()[:200]!r}")
        answer.close()
    stores = getattr(route, "RENDITION_STORES", None)
    if stores is not None:
        stores.drain(30)


def count(code: Path) -> tuple[list[int], collections.Counter[str]]:
    sys.path.insert(0, str(code))
    from avenue import create_app
    from avenue.embedded import EmbeddedServer
    from avenue.media import Buckets
    from avenue.media.store.originals import store

    listener = CommandCounter()
    client = listener.client_class()

    photo = (ROOT.parent / "shared" / "fixtures" / "images" / "good" / "photo_12mp.jpg")
    if not photo.exists():
        sys.path.insert(0, str(BENCH))
        import data

        photo = data.photo_12mp(ROOT, BENCH / "work" / "data")
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="avenue-cold-commands-")) / "db").start()
    try:
        app = create_app({"MONGO_URI": server.uri, "MONGO_DB": "cold", "MONGO_CLIENT_CLASS": client,
                          "SECRET_KEY": os.urandom(32).hex(), "AVENUE_STATUS_WARM_UP": False,
                          "AVENUE_ACCESS_LOG": "off", "AVENUE_VARIANTS_AFTER_ANSWER": True,
                          "RATELIMIT_ENABLED": True, "AVENUE_RENDITION_PRESETS": "fit512=w_512,h_512,q_80"})
        from avenue.db import get_db, get_mongo
        from avenue.media.serve import route

        with app.app_context():
            get_mongo().ensure_indexes()
            docs = [store(get_db(), Buckets.PRODUCTS, photo.read_bytes() + bytes([n]),
                          filename=f"p{n}.jpg").doc
                    for n in range(3)]
        web = app.test_client()
        totals = []
        for doc in docs:
            listener.seen.clear()
            ask_cold(web, [f"/media/products/{doc['_id']}/fit512.jpg"], route)
            time.sleep(0.3)
            totals.append(len(listener.seen))
        return totals, collections.Counter(listener.seen)
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose app is counted")
    args = parser.parse_args()
    totals, last = count(args.code.resolve())
    print(f"{args.code}: commands per cold render, three in turn: {totals}")
    for name, n in sorted(last.items()):
        print(f"  {n} x {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
