#!/usr/bin/env python3
"""What counting deliveries costs on the hottest media path: a ~100 KB original answered by the
media front door from the worker's cache (the app alone, in process, as ``bench/renditions_load.py``
times its front door), with counting on and off in one run.

One process, one app on an in-memory mongomock database (the front door answers from the cache
and reads the database at most once a second to sync, the same for both sides). "off" replaces
the worker's ``Deliveries.served`` by a no-op; "on" is the code as shipped (one deque append
per answer, folded into the tally every ``FOLD_AT`` answers, inside the round). Rounds
alternate which side goes first; each round times ``CALLS`` GETs and ``CALLS`` If-None-Match
304s per side, in CPU time of this process (the machine is shared), and folds the front door's
metrics of its own answers before it stops the clock. The ratio is of the two sides' medians,
as answers per second. Target (issue 31): counting costs under 5 % (on/off at least 0.95x),
and a flush after the run is one ``bulk_write`` for all of them.

    .venv/bin/python bench/deliveries.py            # 9 rounds x 20,000 calls per case
    .venv/bin/python bench/deliveries.py --quick    # 3 rounds x 5,000

Writes ``bench/results/deliveries-<date>.md`` (``-quick.md`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import io
import os
import random
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mongomock  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

mongomock.MongoClient.options = types.SimpleNamespace(timeout=None)  # as tests/conftest.py
_add_update = mongomock.collection.BulkOperationBuilder.add_update
mongomock.collection.BulkOperationBuilder.add_update = lambda self, *args, sort=None, **kwargs: _add_update(
    self, *args, **kwargs
)


def photo(target: int = 100_000) -> bytes:
    """A noisy JPEG of about ``target`` bytes."""
    rng = random.Random(31)
    side = 160
    while True:
        img = PILImage.new("RGB", (side, side))
        img.putdata(
            [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(side * side)]
        )
        out = io.BytesIO()
        img.save(out, "JPEG", quality=85)
        if out.tell() >= target:
            return out.getvalue()
        side += 20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, calls = (3, 5000) if args.quick else (9, 20000)

    from avenue import create_app
    from avenue.db import get_db, get_mongo
    from avenue.media import Buckets
    from avenue.media.serve import route
    from avenue.media.serve.frontdoor import FrontDoor
    from avenue.media.store import deliveries as numbers
    from avenue.media.store.originals import store
    from avenue.metrics import FRONT_DOOR

    shared = mongomock.MongoClient()
    app = create_app(
        {
            "MONGO_URI": "mongodb://mongomock.invalid:27017",
            "MONGO_DB": "bench",
            "MONGO_CLIENT_CLASS": lambda *a, **k: shared,
            "SECRET_KEY": os.urandom(32).hex(),
            "AVENUE_ACCESS_LOG": "off",
            "AVENUE_STATUS_WARM_UP": False,
            "TESTING": True,
        }
    )
    with app.app_context():
        get_mongo().ensure_indexes()
        doc = store(get_db(), Buckets.PRODUCTS, photo(), filename="hot.jpg").doc
    path = (
        f"/media/products/{doc['_id']}~{doc['metadata']['version']}"
        if doc["metadata"].get("version")
        else f"/media/products/{doc['_id']}"
    )
    door = FrontDoor(app, app.wsgi_app)

    def call(environ: dict) -> tuple[str, bytes]:
        answer: list[str] = []
        body = door(environ, lambda status, headers, *exc: answer.append(status))
        data = b"".join(body)
        getattr(body, "close", lambda: None)()
        return answer[0], data

    for _ in range(3):
        status, body = call(EnvironBuilder(path=path).get_environ())
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    environs = {
        "GET": EnvironBuilder(path=path).get_environ(),
        "304": EnvironBuilder(path=path, headers={"If-None-Match": etag}).get_environ(),
    }
    assert status == "200 OK" and call(dict(environs["304"]))[0] == "304 NOT MODIFIED"
    state = route.get_state(app)
    served = state.deliveries.served
    times: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    for n in range(rounds):
        for side in ("on", "off") if n % 2 == 0 else ("off", "on"):
            state.deliveries.served = served if side == "on" else (lambda *a, **k: None)  # type: ignore[method-assign]
            for case, environ in environs.items():
                gc.collect()
                FRONT_DOOR.fold()
                # CPU time of this process: the machine's other load (shared, 2 cores) stays out.
                started = time.process_time()
                for _ in range(calls):
                    call(dict(environ))
                # Each round pays for folding its own answers into the metrics (a thread folds
                # them every second: without this, its CPU time fell into whichever round ran).
                FRONT_DOOR.fold()
                times[side].setdefault(case, []).append(calls / (time.process_time() - started))
    state.deliveries.served = served  # type: ignore[method-assign]
    # The counting alone, as the front door calls it (route.note_served), many times over: a
    # steadier figure than the difference of two noisy rates.
    from avenue.media.serve.http import resolve

    rep = resolve(Buckets.PRODUCTS, path.rsplit("/", 1)[1], None, state.cache.get_doc, "")
    alone = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls * 5):
            route.note_served(state, Buckets.PRODUCTS, rep, len(body))
        alone.append((time.process_time() - started) / (calls * 5) * 1e6)
    note_us = statistics.median(alone)
    writes: list[int] = []
    real = type(shared.bench[numbers.COLLECTION]).bulk_write
    type(shared.bench[numbers.COLLECTION]).bulk_write = lambda self, ops, *a, **k: (
        writes.append(len(ops)),
        real(self, ops, *a, **k),
    )[1]
    with app.app_context():
        state.deliveries.flush(get_db())
    counted = sum(
        row["requests"] for row in shared.bench[numbers.COLLECTION].find({"day": {"$exists": True}})
    )
    # Warm-up, the "on" rounds' GETs, alone (a 304 is not a delivery: never counted).
    expected = 3 + rounds * calls + rounds * calls * 5
    rows = []
    verdicts = []
    for case in environs:
        on, off = statistics.median(times["on"][case]), statistics.median(times["off"][case])
        ratio = on / off
        verdicts.append(ratio >= 0.95)
        per_round = ", ".join(
            f"{a / b:.3f}" for a, b in zip(times["on"][case], times["off"][case], strict=True)
        )
        rows.append(
            f"| {case} | {off:,.0f} | {on:,.0f} | {ratio:.3f}x ({'met' if ratio >= 0.95 else 'NOT met'}) "
            f"| {per_round} |"
        )
    load = os.getloadavg()
    quick = " --quick" if args.quick else ""
    exact = "exact" if counted == expected else "NOT exact"
    per_get = 1e6 / statistics.median(times["off"]["GET"])
    report = "\n".join(
        [
            f"# Delivery counting on the hot media path ({dt.date.today():%Y-%m-%d}{quick})",
            "",
            f"`bench/deliveries.py{quick}`: a {len(body):,}-byte JPEG original answered by the media front "
            f"door from the worker's cache, in process (the app alone), {rounds} interleaved rounds x "
            f"{calls:,} calls per case and side, req/s of this process's CPU time; counting off = "
            "`Deliveries.served` replaced by a no-op. "
            f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (2 cores, shared).",
            "",
            "| case | off, req/s | on, req/s | on / off (target >= 0.95x) | per round |",
            "| --- | ---: | ---: | ---: | --- |",
            *rows,
            "",
            f"After the run one flush: {len(writes)} `bulk_write` ({writes[0] if writes else 0} upserts) "
            f"for {counted:,} answers counted (expected {expected:,}: {exact}); no database write during "
            "the timed rounds.",
            "",
            f"The counting alone (`route.note_served`, {rounds} x {calls * 5:,} calls): "
            f"**{note_us:.2f} µs** per answer, {note_us / per_get * 100:.1f} % of an uncounted GET's "
            f"{per_get:.1f} µs.",
            "",
            f"Target counting costs under 5 % (both medians): **{'met' if all(verdicts) else 'NOT met'}**.",
            "",
        ]
    )
    out = (
        ROOT
        / "bench"
        / "results"
        / f"deliveries-{dt.date.today():%Y-%m-%d}{'-quick' if args.quick else ''}.md"
    )
    out.write_text(report)
    print(report)
    return 0 if all(verdicts) and counted == expected else 1


if __name__ == "__main__":
    sys.exit(main())
