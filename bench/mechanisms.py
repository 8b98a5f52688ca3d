#!/usr/bin/env python3
"""Each tuning mechanism on and off, side by side in one run (issue 74, item 4): a ratio.

The app in this process (Flask's test client, no gunicorn) on a fresh embedded SecantusDB, the
cold renders of ``bench/cold_cpu.py`` (2040x1356 photo-like JPEGs fitted into 512x512, JPEG
q80, each request a cold render). Rounds alternate on and off, so a noisy moment of a loaded
machine falls on both; medians of the rounds.

- ``writes``: several collections' writes in one ``bulkWrite`` (``avenue/writes.py``) against
  one command per collection (the dialect's ``cross_collection_writes`` turned off on the
  client, as on a mongod before 8.0);
- (``lane``, a rendition stored after its answer against before it, went with the lane:
  bench/results/mechanisms-2026-11-28-lane-latency.md; its code is ``203d51c``'s);
- with ``--majority-ms N`` the app reaches the database through ``bench/majority_delay.py``,
  which holds each majority write's reply N ms (a replica set's ``w: majority``: that module
  says why), and ``--concurrent N`` sends N requests at a time;
- ``vips``: libvips at one thread per operation against its default (one per core);
- ``malloc``: gunicorn.conf.py's glibc thresholds against glibc's own, each side in a fresh
  process (mallopt cannot be undone), alternating: the cold renders, then the RSS a process
  reaches and keeps over four edits of a 12 MP photo on request-like threads; ``malloc-edits``:
  the edits alone, no database;
- ``ledger``: a decode reservation taken and given back through the instance's ledger under
  ``flock`` against the process's own budget (what the ledger costs; what it bounds is the
  instance's memory, bench/results/attacks-2026-11-25-edits-instance-budget.md).

    .venv/bin/python bench/mechanisms.py writes vips malloc ledger
    .venv/bin/python bench/mechanisms.py writes --photos 20 --rounds 6
    .venv/bin/python bench/mechanisms.py malloc-edits --pairs 3
    .venv/bin/python bench/mechanisms.py writes --majority-ms 2 --concurrent 4
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from commands import CommandCounter  # noqa: E402

import data  # noqa: E402
import peers  # noqa: E402

MALLOC = {"server": ((-3, 1024 * 1024), (-1, 4 * 1024 * 1024)), "glibc": ()}  # gunicorn.conf.py's


class Counting(CommandCounter):
    """The commands, and the majority writes a request's own thread sent: its answer waited
    for them (work after the answer runs on a thread of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.answering = threading.local()
        self.answer_majority = 0

    def started(self, event: Any) -> None:
        super().started(event)
        w = (event.command.get("writeConcern") or {}).get("w")
        if getattr(self.answering, "on", False) and (w == "majority" or (isinstance(w, int) and w > 1)):
            self.answer_majority += 1


class Delay:
    """bench/majority_delay.py in a process of its own in front of ``upstream`` (host:port)."""

    def __init__(self, upstream: str, ms: float) -> None:
        command = [sys.executable, str(BENCH / "majority_delay.py"), "--upstream", upstream, "--ms", str(ms)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline().split()[1])

    def stop(self) -> str:
        """Stop it: how many replies it held."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        return out.split()[-1] if out.strip() else "?"


class Rig:
    """The app on a fresh SecantusDB with ``rounds`` sets of ``photos`` cold photos stored;
    with ``majority_ms``, through :class:`Delay` holding each majority write's reply that long;
    ``concurrent`` requests at a time."""

    def __init__(self, photos: int, rounds: int, majority_ms: float | None = None,
                 concurrent: int = 1) -> None:
        from avenue import create_app
        from avenue.db import get_db, get_mongo
        from avenue.embedded import EmbeddedServer
        from avenue.media import Buckets
        from avenue.media.store.originals import store

        self.stores: list[float] = []
        self.time_stores()
        self.listener = Counting()
        self.concurrent = concurrent
        bodies = [path.read_bytes() for path in peers.photos("2040", photos)[:photos]]
        preset = f"fit512=w_{peers.BOX},h_{peers.BOX},q_{peers.QUALITY}"
        self.server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="avenue-mechanisms-")) / "db").start()
        self.delay = Delay(f"127.0.0.1:{self.server.port}", majority_ms) if majority_ms is not None else None
        uri = (f"mongodb://127.0.0.1:{self.delay.port}/?directConnection=true" if self.delay
               else self.server.uri)
        self.app = create_app({"MONGO_URI": uri, "MONGO_DB": "mechanisms",
                               "MONGO_CLIENT_CLASS": self.listener.client_class(),
                               "SECRET_KEY": os.urandom(32).hex(), "AVENUE_STATUS_WARM_UP": False,
                               "AVENUE_ACCESS_LOG": "off", "AVENUE_VARIANTS_AFTER_ANSWER": True,
                               "RATELIMIT_ENABLED": True,
                               "AVENUE_RENDITION_PRESETS": preset,
                               "AVENUE_RENDER_ADDRESS_LIMIT": "100000/minute;1000000/hour",
                               "AVENUE_RENDER_INSTANCE_LIMIT": "100000/minute"})
        with self.app.app_context():
            get_mongo().ensure_indexes()
            self.db = get_db()
            self.rounds = [[store(self.db, Buckets.PRODUCTS,
                                  data.with_comment(body, f"m {r} {n} {time.time()}"),
                                  filename=f"p{n}.jpg").doc["_id"] for n, body in enumerate(bodies)]
                           for r in range(rounds + 1)]
        self.webs = threading.local()

    def time_stores(self) -> None:
        """Note how long each rendition's store takes (its chunks, files document and counters:
        ``renditions._put``), before the answer or after it."""
        from avenue.media.store import renditions

        put = renditions._put

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return put(*args, **kwargs)
            finally:
                self.stores.append((time.perf_counter() - began) * 1000)

        renditions._put = timed

    def get(self, oid: Any) -> float:
        """GET one id's rendition on this thread's test client, 200 or exit: its milliseconds."""
        web = getattr(self.webs, "client", None)
        if web is None:
            web = self.webs.client = self.app.test_client()
        began = time.perf_counter()
        self.listener.answering.on = True
        try:
            answer = web.get(f"/media/products/{oid}/fit512.jpg")
        finally:
            self.listener.answering.on = False
        took = (time.perf_counter() - began) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"HTTP {answer.status_code}: {answer.get_data()[:200]!r}")
        answer.close()
        return took

    def cold(self, ids: list[Any]) -> dict[str, float]:
        """GET each id's rendition (not stored yet), ``concurrent`` at a time: the answer's wall
        time and a store's (medians), the process's CPU, kernel CPU and page faults, the
        database commands and the majority writes the answers waited for, per render."""
        commands, majority = len(self.listener.seen), self.listener.answer_majority
        del self.stores[:]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.process_time()
        wall = time.perf_counter()
        if self.concurrent == 1:
            answers = [self.get(oid) for oid in ids]
        else:
            with ThreadPoolExecutor(self.concurrent) as pool:
                answers = list(pool.map(self.get, ids))

        n = len(ids)
        used = resource.getrusage(resource.RUSAGE_SELF)
        return {"answer ms": statistics.median(answers),
                "store ms": statistics.median(self.stores) if self.stores else 0.0,
                "wall ms": (time.perf_counter() - wall) * 1000 / n,
                "CPU ms": (time.process_time() - started) * 1000 / n,
                "kernel ms": (used.ru_stime - usage.ru_stime) * 1000 / n,
                "faults": (used.ru_minflt - usage.ru_minflt) / n,
                "commands": (len(self.listener.seen) - commands) / n,
                "majority writes in the answer": (self.listener.answer_majority - majority) / n}

    def stop(self) -> str:
        """Stop the database (and the proxy: what it says it held)."""
        held = self.delay.stop() if self.delay else ""
        self.server.stop()
        return held


def alternate(rig: Rig, sides: dict[str, Callable[[], None]]) -> dict[str, list[dict[str, float]]]:
    """The rig's rounds, each side in turn (the first round warms up and is dropped)."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    names = list(sides)
    for number, ids in enumerate(rig.rounds):
        name = names[number % len(names)]
        sides[name]()
        figures = rig.cold(ids)
        if number > 0:
            results[name].append(figures)
    return results


def writes_sides(rig: Rig) -> dict[str, Callable[[], None]]:
    from avenue.dialect import dialect_of

    client = rig.db.client
    with rig.app.app_context():
        together = dialect_of(rig.db)
    apart = dataclasses.replace(together, cross_collection_writes=False)

    def use(dialect: Any) -> Callable[[], None]:
        return lambda: setattr(client, "_avenue_dialect", dialect)

    return {"one bulkWrite (on)": use(together), "a command per collection (off)": use(apart)}


def vips_sides(rig: Rig) -> dict[str, Callable[[], None]]:
    import pyvips  # type: ignore[import-untyped]

    cores = os.cpu_count() or 1
    return {"1 thread (on)": lambda: pyvips.concurrency_set(1),
            f"{cores} threads, libvips's default (off)": lambda: pyvips.concurrency_set(cores)}


def rss_kb() -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))


def malloc_child(how: str, photos: int, rounds: int) -> dict[str, float]:
    """One side of ``malloc`` in this (fresh) process: the cold renders' medians (none with
    ``photos`` 0), then four edits of a 12 MP photo as an edit's work goes, each on a thread
    of its own as a request's (the whole picture decoded, turned 90, cut, encoded as JPEG q95,
    a small allocation kept after each, as a request leaves some): the RSS they reached and
    kept above what the process held before them."""
    libc = ctypes.CDLL(None)
    for option, value in MALLOC[how]:
        libc.mallopt(option, value)
    from PIL import Image

    result: dict[str, float] = {}
    if photos:
        rig = Rig(photos, rounds)
        try:
            rig.cold(rig.rounds[0])
            figures = [rig.cold(ids) for ids in rig.rounds[1:]]
            result = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
        finally:
            rig.stop()
    big = data.photo_12mp(ROOT, BENCH / "work" / "data").read_bytes()
    gc.collect()
    before, peaks, leftovers = rss_kb(), [0], []

    def edit() -> None:
        with Image.open(io.BytesIO(big)) as image:
            turned = image.convert("RGB").rotate(90, expand=True)
            cut = turned.crop((100, 100, turned.width - 100, turned.height - 100))
            del turned
            cut.save(io.BytesIO(), "JPEG", quality=95)
            del cut
        leftovers.append(bytes(200))
        peaks.append(rss_kb() - before)

    for _ in range(4):
        worker = threading.Thread(target=edit)
        worker.start()
        worker.join()
    gc.collect()
    result["edits' peak RSS MB"] = max(peaks) / 1024
    result["edits' RSS kept MB"] = (rss_kb() - before) / 1024
    return result


def malloc_run(photos: int, rounds: int, pairs: int) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {"gunicorn.conf.py's thresholds (on)": [],
                                                  "glibc's own (off)": []}
    unset = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    for _ in range(pairs):
        for how, name in (("server", "gunicorn.conf.py's thresholds (on)"), ("glibc", "glibc's own (off)")):
            out = subprocess.run([sys.executable, __file__, "--malloc-child", how, "--photos", str(photos),
                                  "--rounds", str(rounds)], env=env, capture_output=True, text=True,
                                 check=True, timeout=900)
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def ledger_run(holds: int, threads: int) -> dict[str, list[dict[str, float]]]:
    """µs per reservation taken and given back, ``threads`` threads at once, each side in turn."""
    from avenue.media.ingest.decode_budget import DecodeBudget, SharedDecodeBudget

    folder = Path(tempfile.mkdtemp(prefix="avenue-mechanisms-ledger-"))
    budgets = {"the instance's ledger under flock (on)": SharedDecodeBudget(1 << 30, folder),
               "the process's own budget (off)": DecodeBudget(1 << 30)}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in budgets}

    def work(budget: DecodeBudget) -> None:
        for _ in range(holds):
            budget.hold(1 << 20, 1 << 20, 5.0).release()

    for _ in range(4):
        for name, budget in budgets.items():
            workers = [threading.Thread(target=work, args=(budget,)) for _ in range(threads)]
            started, cpu = time.perf_counter(), time.process_time()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            n = holds * threads
            results[name].append({"wall us": (time.perf_counter() - started) * 1e6 / n,
                                  "CPU us": (time.process_time() - cpu) * 1e6 / n})
    return results


def table(title: str, results: dict[str, list[dict[str, float]]]) -> str:
    names = list(results)
    keys = list(results[names[0]][0])
    lines = [f"### {title}", "", "| | " + " | ".join(names) + " | on ÷ off |",
             "| --- |" + " ---: |" * (len(names) + 1)]
    for key in keys:
        medians = [statistics.median(r[key] for r in results[name]) for name in names]
        ratio = f"{medians[0] / medians[1]:.2f}x" if medians[1] else "-"
        lines.append(f"| {key} | " + " | ".join(f"{m:.2f}" for m in medians) + f" | {ratio} |")
    lines.append("")
    def listed(name: str) -> str:
        return ", ".join("/".join(f"{v:.1f}" for v in r.values()) for r in results[name])

    rounds = "; ".join(f"{name}: {listed(name)}" for name in names)
    lines.append(f"Rounds ({'/'.join(keys)}): {rounds}")
    # Rounds run in turn, so the n-th of each side ran side by side: their difference.
    pairs = [a[keys[0]] - b[keys[0]] for a, b in zip(results[names[0]], results[names[1]], strict=False)]
    if len(names) == 2 and pairs:
        below = sum(d < 0 for d in pairs)
        lines.append(f"\nPaired rounds, {keys[0]} on − off: median {statistics.median(pairs):+.1f} "
                     f"({min(pairs):+.1f} to {max(pairs):+.1f}, {below} of {len(pairs)} below 0)")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mechanisms", nargs="*", default=["writes", "vips", "malloc", "ledger"])
    parser.add_argument("--photos", type=int, default=15, help="cold renders per round")
    parser.add_argument("--rounds", type=int, default=8, help="rounds, alternating the sides")
    parser.add_argument("--pairs", type=int, default=2, help="malloc: fresh processes per side")
    parser.add_argument("--majority-ms", type=float, help="through bench/majority_delay.py: each majority "
                        "write's reply held this long (writes, vips)")
    parser.add_argument("--concurrent", type=int, default=1, help="requests at a time (writes, vips)")
    parser.add_argument("--malloc-child", choices=tuple(MALLOC), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.malloc_child:
        print(json.dumps(malloc_child(args.malloc_child, args.photos, args.rounds)))
        return 0
    options = (f" --majority-ms {args.majority_ms:g}" if args.majority_ms is not None else "") + (
        f" --concurrent {args.concurrent}" if args.concurrent != 1 else "")
    through = (f", each majority write's reply held {args.majority_ms:g} ms (bench/majority_delay.py)"
               if args.majority_ms is not None else "")
    out = [f"## Mechanisms on and off, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
           f"`python bench/mechanisms.py {' '.join(args.mechanisms)} --photos {args.photos} "
           f"--rounds {args.rounds}{options}`"
           f"; load average at the start {' / '.join(f'{x:.2f}' for x in os.getloadavg())}; SecantusDB "
           f"(embedded){through}, in process; {args.concurrent} request(s) at a time; "
           f"{os.cpu_count()} cores. Per cold render; medians of the rounds.", ""]
    print("\n".join(out), flush=True)
    in_process = {"writes": ("Combined writes", writes_sides),
                  "vips": ("libvips threads per operation", vips_sides)}
    wanted = [m for m in args.mechanisms if m in in_process]
    if wanted:
        rig = Rig(args.photos, args.rounds * len(wanted), args.majority_ms, args.concurrent)
        try:
            rig.cold(rig.rounds[0])
            for number, mechanism in enumerate(wanted):
                title, sides = in_process[mechanism]
                chunk = rig.rounds[number * args.rounds + 1:(number + 1) * args.rounds + 1]
                results = alternate(_Rounds(rig, [rig.rounds[0], *chunk]), sides(rig))
                next(iter(sides(rig).values()))()  # each mechanism's first side is "on": as the app runs
                print(table(title, results), flush=True)
        finally:
            held = rig.stop()
        if held:
            print(f"The proxy: {held} replies held.", flush=True)
    if "malloc-edits" in args.mechanisms:
        print(table("glibc's malloc thresholds, four 12 MP edits alone (each side a fresh process)",
                    malloc_run(0, 0, args.pairs)), flush=True)
    if "malloc" in args.mechanisms:
        print(table("glibc's malloc thresholds (each side a fresh process)",
                    malloc_run(args.photos, max(2, args.rounds // 4), args.pairs)), flush=True)
    if "ledger" in args.mechanisms:
        print(table("Decode reservations (2 threads, 2,000 holds each)", ledger_run(2000, 2)), flush=True)
    print(f"Load average at the end {' / '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    return 0


class _Rounds:
    """``rig`` with ``rounds`` in place of its own (a slice of its stored photos)."""

    def __init__(self, rig: Rig, rounds: list[list[Any]]) -> None:
        self.rig, self.rounds = rig, rounds

    def cold(self, ids: list[Any]) -> dict[str, float]:
        return self.rig.cold(ids)


if __name__ == "__main__":
    sys.exit(main())
