#!/usr/bin/env python3
"""What a 12 MP library photo's upload, replace, edit and cold render cost, and their database
commands: one checkout's figures, so two revisions can be compared run against run (issue 75:
image records moved to ``<bucket>.images`` and bytes became shareable; did the costs move?).

The app in this process (Flask's test client: the app's work and the database's, no network,
no worker pool) on a fresh embedded SecantusDB, as ``bench/replace.py``; ``--root DIR``
imports the app from another checkout, so this one file measures both revisions. Each round,
on fresh bytes of the 12 MP photo (a JPEG comment: new hash, same pixels):

- **upload**: ``POST /api/builder/media``;
- **cold render**: ``GET /media/builder/<id>[~<version>]/fit512.jpg`` of that upload, the
  preset ``w_512,h_512,q_80`` (unsigned, the render limits on), never asked before;
- **replace**: ``PUT /api/builder/media/{id}`` with other fresh bytes;
- **edit**: ``PUT /api/builder/media/{id}/edits`` ``{"rotate": 90}``.

Each is timed to its answer and to the end of the work it leaves after the answer (the
upload's pending variants, a rendition's store: the lanes of ``avenue.media.serve.route``,
drained after the answer is closed), and its database commands are counted over both (a
pymongo command listener; only the request's thread and the lanes', not the app's pollers), with
the CPU time of this process and of the database's over the same span and to the answer (less
moved by other work on the machine than the wall times; the database's in 10 ms ticks).
One warm-up round is not counted. It prints a table and, with ``--json``, the rounds.

    .venv/bin/python bench/costs.py --rounds 5
    .venv/bin/python bench/costs.py --root /work/wt/cost-base --json /tmp/base.json
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
OPS = ("upload", "cold_render", "replace", "edit")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=BENCH.parent, help="the checkout whose app runs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    parser.add_argument("--commands", action="store_true", help="list the last round's commands")
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path[:0] = [str(root), str(BENCH)]
    from avenue.embedded import EmbeddedServer

    import data

    with tempfile.TemporaryDirectory(prefix="bench-costs-") as folder:
        photo = data.photo_12mp(BENCH.parent, Path(folder)).read_bytes()  # one photo, whichever root runs
        database = EmbeddedServer(Path(folder) / "db", log_path=Path(folder) / "db.log").start()
        try:
            rounds = run(database.uri, database.process.pid, photo, args.rounds)
        finally:
            database.stop()
    import avenue

    med = {f"{op} {k}": statistics.median(r[op][k] for r in rounds)
           for op in OPS for k in ("answer", "done", "cpu", "answer_cpu", "commands")}
    print(f"{Path(avenue.__file__).parent}: medians of {args.rounds} rounds (ms; commands)")
    for op in OPS:
        print(f"  {op:12} answer {med[op + ' answer']:7.1f}  done {med[op + ' done']:7.1f}  "
              f"CPU {med[op + ' cpu']:7.1f}  answer CPU {med[op + ' answer_cpu']:7.1f}  "
              f"commands {med[op + ' commands']:.0f}")
    if args.commands:
        for op in OPS:
            print(f"  {op}: " + ", ".join(
                f"{n} x {name}" for name, n in sorted(collections.Counter(rounds[-1][op]["seen"]).items())))
    if args.json:
        args.json.write_text(json.dumps({"root": str(root), "loadavg": os.getloadavg(), "rounds": rounds}))
    return 0


def cpu_ms(pid: int) -> float:
    """This process's CPU time and the database process's (``pid``), in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    database = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return (time.process_time() + database) * 1000


def run(uri: str, database_pid: int, photo: bytes, rounds: int) -> list[dict[str, dict[str, Any]]]:
    from avenue import create_app
    from avenue.media.serve import route
    from tests.support import tokens

    from commands import CommandCounter

    import data

    # The request's thread and the after-answer lanes, not the app's pollers.
    lanes = {threading.main_thread().name, "avenue-pending-variants", "avenue-rendition-stores"}
    listener = CommandCounter(lanes)

    app = create_app({"TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": os.urandom(32).hex(),
                      "MONGO_URI": uri, "MONGO_DB": "bench_costs",
                      "MONGO_CLIENT_CLASS": listener.client_class(),
                      "RATELIMIT_ENABLED": True, "AVENUE_HISTORY_INTERVAL_SECONDS": 0,
                      "AVENUE_STATUS_WARM_UP": False, "AVENUE_ACCESS_LOG": "off",
                      "AVENUE_RENDITION_PRESETS": "fit512=w_512,h_512,q_80"})
    with app.app_context():
        from avenue.db import get_db, get_mongo

        get_mongo().ensure_indexes()
        headers = tokens.issue(get_db(), "editor", "bench@example.com")
    client = app.test_client()
    from avenue.background import Lane

    lanes = [lane for lane in vars(route).values() if isinstance(lane, Lane)]
    counter = iter(range(1_000_000))

    def fresh() -> dict[str, Any]:
        body = data.with_comment(photo, f"bench-costs-{next(counter)}-{time.time_ns()}")
        return {"file": (io.BytesIO(body), "photo.jpg")}

    def timed(call: Any, *args: Any, expect: int, **kwargs: Any) -> tuple[dict[str, Any], Any]:
        listener.seen = []
        start, cpu = time.perf_counter(), cpu_ms(database_pid)
        answer = call(*args, **kwargs)
        body = answer.get_data()
        answered, answer_cpu = time.perf_counter(), cpu_ms(database_pid) - cpu
        answer.close()  # what a server does after the last byte: starts the after-answer work
        for lane in lanes:
            lane.drain(60)
        done, cpu = time.perf_counter(), cpu_ms(database_pid) - cpu
        assert answer.status_code == expect, (answer.status_code, body[:300])
        return ({"answer": (answered - start) * 1000, "done": (done - start) * 1000,
                 "cpu": cpu, "answer_cpu": answer_cpu,
                 "commands": len(listener.seen), "seen": listener.seen}, answer)

    def one_round() -> dict[str, dict[str, Any]]:
        got: dict[str, dict[str, Any]] = {}
        got["upload"], answer = timed(client.post, "/api/builder/media", headers=headers, data=fresh(),
                                      expect=201)
        media = answer.get_json()
        stem = media["url"].split("://", 1)[-1]
        stem = stem[stem.index("/media/"):].rsplit(".", 1)[0]
        got["cold_render"], answer = timed(client.get, f"{stem}/fit512.jpg", expect=200)
        assert answer.mimetype == "image/jpeg", answer.mimetype
        got["replace"], _ = timed(client.put, f"/api/builder/media/{media['id']}", headers=headers,
                                  data=fresh(), expect=200)
        got["edit"], _ = timed(client.put, f"/api/builder/media/{media['id']}/edits", headers=headers,
                               json={"rotate": 90}, expect=200)
        return got

    one_round()  # warm-up: imports, first renders, the indexes' first use
    return [one_round() for _ in range(rounds)]


if __name__ == "__main__":
    raise SystemExit(main())
