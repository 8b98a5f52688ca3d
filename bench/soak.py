#!/usr/bin/env python3
"""Soak: the Procfile's server on the embedded database under mixed traffic for a long while.

Uploads, reads of stored images, deletes, product edits and ``gc`` run at the same time for
``--minutes`` (30 by default): every request's latency by kind, every error (5xx, a
connection cut, anything not a deliberate 4xx), and the workers' RSS over time.

RSS is compared from the end of a warm-up (``--warm-up``, 2 minutes by default, the same
load, not counted in the latencies) to the end of the run: idle workers have not yet built
their thread stacks, Pillow's and zlib's buffers or the media cache, and the first minute
of load grows RSS by ~30 % (measured: 147 MB idle, 210 MB after 30 s, then flat between
185 and 221 MB for the rest of a 5-minute run, with the media cache on or off). What the
target asks is that RSS stops growing: a leak shows as a rising series, warm-up does not.

    python3 bench/soak.py                 # 30 minutes
    python3 bench/soak.py --minutes 2     # a short run (tests/system/test_soak.py runs ~20 s)

Targets: 0 errors besides deliberate 4xx; worker RSS flat within 10 % from start to end.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymongo  # noqa: E402
from avenue.builder.references import PageReferences  # noqa: E402
from avenue.embedded import EmbeddedServer  # noqa: E402
from avenue.media import AppMedia, Media  # noqa: E402
from avenue.shop.references import ProductReferences  # noqa: E402
from tests.support import tokens  # noqa: E402
from tests.support.fixtures import photo  # noqa: E402
from tests.support.launcher import Gunicorn  # noqa: E402

DB = "avenue_soak"
KINDS = ("upload", "read", "delete", "product", "gc")


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: list[str] = field(default_factory=list)
    refused: int = 0  # deliberate 4xx (e.g. a delete that lost a race with another delete)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, started: float, status: int, detail: str = "") -> None:
        with self.lock:
            self.latencies[kind].append((time.perf_counter() - started) * 1000)
            if status >= 500 or status <= 0:
                self.errors.append(f"{kind}: {status} {detail}"[:200])
            elif status >= 400:
                self.refused += 1


def rss_mb(pids: list[int]) -> float:
    """Summed resident memory of ``pids`` (from /proc: no extra dependency)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def soak(seconds: float, *, clients: int = 4, folder: str | None = None,
         env: dict[str, str] | None = None, sample_every: float = 15.0, warm_up: float = 0.0) -> dict:
    """Run the mixed load for ``seconds``; the figures as a dict (``env``: extra variables for
    the server, e.g. a cache size)."""
    folder = folder or tempfile.mkdtemp(prefix="avenue-soak-")
    database = EmbeddedServer(Path(folder) / "db", log_path=Path(folder) / "db.log").start()
    server = Gunicorn(database.uri, DB, Path(folder) / "gunicorn.log", extra_env=env).start()
    series: list[tuple[float, float]] = []
    tally = Tally()
    stored: list[dict] = []
    stored_lock = threading.Lock()
    try:
        headers = tokens.issue_on(database.uri, DB)
        admin = tokens.issue_on(database.uri, DB, "admin")
        images = [photo(i, side=600 + 100 * (i % 5)) for i in range(24)]
        for i in range(6):  # something to read from the start
            status, body = server.upload(headers, images[i], f"seed{i}.jpg")
            if status in (200, 201):
                stored.append(body)
        time.sleep(1)
        rss_idle = rss_mb(server.workers())
        measuring = threading.Event()
        deadline = time.monotonic() + warm_up + seconds
        counter = iter(range(10**9))

        def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                kind = rng.choices(("upload", "read", "delete", "product"), weights=(3, 10, 1, 2))[0]
                started = time.perf_counter()
                try:
                    if kind == "upload":
                        index = next(counter)
                        status, body = server.upload(headers, images[index % len(images)],
                                              f"soak{index}.jpg")
                        if status in (200, 201):
                            with stored_lock:
                                stored.append(body)
                    elif kind == "read":
                        with stored_lock:
                            target = rng.choice(stored) if stored else None
                        if target is None:
                            continue
                        path = target["url"][target["url"].index("/media/"):]
                        status, _ = server.request("GET", path)
                        if status == 404:  # deleted meanwhile by another client: deliberate
                            status = 410
                    elif kind == "delete":
                        with stored_lock:
                            target = stored.pop(rng.randrange(len(stored))) if len(stored) > 8 else None
                        if target is None:
                            continue
                        status, _ = server.request("DELETE", f"/api/uploads/{target['id']}", headers=headers)
                    else:
                        sku = f"SOAK-{seed}-{rng.randrange(20)}"
                        body = json.dumps({"sku": sku, "name": "Soak", "price": rng.randrange(1, 999)})
                        status, _ = server.request("POST", "/api/shop/products", body=body.encode(),
                                                   headers={**admin, "Content-Type": "application/json"})
                        if status == 409:  # exists: edit it instead
                            status, _ = server.request(
                                "PATCH", f"/api/shop/products/{sku}", headers={**admin, "Content-Type":
                                                                              "application/json"},
                                body=json.dumps({"price": rng.randrange(1, 999)}).encode())
                    if measuring.is_set() or status >= 500:
                        tally.note(kind, started, status)
                except OSError as error:
                    tally.note(kind, started, -1, repr(error))

        def collector() -> None:
            client = pymongo.MongoClient(database.uri)
            # No app is built in this process, so gc is handed a Media with the owners the app
            # factory gives its own (who refers to an image: products and pages).
            media = Media(owners=(ProductReferences, PageReferences))
            try:
                while time.monotonic() < deadline:
                    time.sleep(min(10.0, max(1.0, seconds / 6)))
                    started = time.perf_counter()
                    try:
                        AppMedia.on(client[DB], media).maintenance.collect_garbage(grace_seconds=60)
                        tally.note("gc", started, 200)
                    except Exception as error:  # noqa: BLE001 (any failure is an error of the run, not a dead thread)
                        tally.note("gc", started, -1, repr(error))
            finally:
                client.close()

        def sampler() -> None:
            began = time.monotonic()
            while time.monotonic() < deadline:
                series.append((round(time.monotonic() - began), round(rss_mb(server.workers()), 1)))
                time.sleep(min(sample_every, max(0.5, deadline - time.monotonic())))

        rss_after_warm_up: list[float] = []

        def starter() -> None:
            time.sleep(warm_up)
            rss_after_warm_up.append(rss_mb(server.workers()))
            measuring.set()

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
        threads += [threading.Thread(target=collector), threading.Thread(target=sampler),
                    threading.Thread(target=starter)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rss_end = rss_mb(server.workers())
        rss_start = rss_after_warm_up[0]
    finally:
        server.stop()
        database.stop()
    return {
        "seconds": seconds, "clients": clients,
        "requests": {k: len(v) for k, v in tally.latencies.items()},
        "p50_ms": {k: round(statistics.median(v), 1) for k, v in tally.latencies.items() if v},
        "p99_ms": {k: round(sorted(v)[min(len(v) - 1, int(len(v) * 0.99))], 1)
                   for k, v in tally.latencies.items() if v},
        "errors": tally.errors, "deliberate_4xx": tally.refused,
        "rss_idle_mb": round(rss_idle, 1), "warm_up_s": warm_up,
        "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1),
        "rss_growth": round(rss_end / rss_start, 3) if rss_start else None,
        "rss_series": series, "env": env or {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for the server (e.g. AVENUE_MEDIA_CACHE_BYTES=0); repeatable")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between RSS samples")
    parser.add_argument("--warm-up", type=float, default=2.0, help="minutes of load before measuring")
    parser.add_argument("--folder", help="keep the database and the logs here (default: a new temp folder)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    result = soak(args.minutes * 60, clients=args.clients, folder=args.folder, env=env,
                  sample_every=args.sample, warm_up=args.warm_up * 60)
    if args.json:
        print(json.dumps(result))
        return
    print(f"# Soak, {args.minutes:g} min, {args.clients} clients + gc, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| kind | requests | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |")
    for kind in KINDS:
        print(f"| {kind} | {result['requests'][kind]} | {result['p50_ms'].get(kind, '-')} | "
              f"{result['p99_ms'].get(kind, '-')} |")
    print(f"\nerrors: {len(result['errors'])} (target 0) {result['errors'][:5]}; deliberate 4xx: "
          f"{result['deliberate_4xx']}")
    print(f"worker RSS: {result['rss_idle_mb']} MB idle, {result['rss_start_mb']} MB after "
          f"{args.warm_up:g} min of warm-up, {result['rss_end_mb']} MB at the end ({result['rss_growth']}x "
          f"from warm-up to end; target within 1.10x); server variables: {env or 'none'}")
    print("\nRSS of both workers over time (s: MB): "
          + ", ".join(f"{at}: {mb}" for at, mb in result["rss_series"]))


if __name__ == "__main__":
    main()
