#!/usr/bin/env python3
"""The database commands one library delete (to the trash) sends, counted by a pymongo command
listener: this checkout's app, or with ``--root DIR`` another checkout's (a worktree of an
older ref), in process on a fresh embedded SecantusDB. Four rounds, each a fresh upload of the
same photo (a JPEG comment: new hash, same pixels), the work after its answer drained (its
pending variants: the delete meets no render), then its ``DELETE``; the request's thread
only (not the app's pollers).

    .venv/bin/python bench/delete_commands.py
    git worktree add /tmp/base cf4b12b && .venv/bin/python bench/delete_commands.py --root /tmp/base
"""

from __future__ import annotations

import argparse
import collections
import io
import sys
import tempfile
import threading
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=BENCH.parent, help="the checkout whose app runs")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path[:0] = [str(root), str(BENCH)]
    from avenue import create_app
    from avenue.background import Lane
    from avenue.db import get_db
    from avenue.embedded import EmbeddedServer
    from avenue.media.serve import route
    from tests.support import tokens

    from commands import CommandCounter

    import data

    with tempfile.TemporaryDirectory(prefix="bench-delete-") as folder:
        photo = data.photo_12mp(BENCH.parent, Path(folder)).read_bytes()  # one photo, whichever root runs
        server = EmbeddedServer(Path(folder) / "db", log_path=Path(folder) / "db.log").start()
        try:
            counter = CommandCounter({threading.main_thread().name})
            app = create_app({"TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": "x" * 64,
                              "MONGO_URI": server.uri, "MONGO_DB": "bench_delete",
                              "MONGO_CLIENT_CLASS": counter.client_class(), "AVENUE_STATUS_WARM_UP": False,
                              "AVENUE_ACCESS_LOG": "off", "AVENUE_HISTORY_INTERVAL_SECONDS": 0})
            with app.app_context():
                headers = tokens.issue(get_db(), "editor", "bench@example.com")
            web = app.test_client()
            lanes = [lane for lane in vars(route).values() if isinstance(lane, Lane)]
            totals = []
            for n in range(args.rounds):
                upload = web.post("/api/builder/media", headers=headers, data={
                    "file": (io.BytesIO(data.with_comment(photo, f"bench-delete-{n}")), "photo.jpg")})
                upload.close()
                if upload.status_code != 201:
                    raise SystemExit(f"upload: HTTP {upload.status_code}")
                for lane in lanes:
                    lane.drain(60)
                counter.seen.clear()
                gone = web.delete(f"/api/builder/media/{upload.get_json()['id']}", headers=headers)
                gone.close()
                if gone.status_code != 204:
                    raise SystemExit(f"delete: HTTP {gone.status_code}")
                totals.append(len(counter.seen))
        finally:
            server.stop()
    print(f"{root}: commands per delete, {args.rounds} in turn: {totals}")
    for name, count in sorted(collections.Counter(counter.seen).items()):
        print(f"  {count} x {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
