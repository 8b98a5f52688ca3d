#!/usr/bin/env python3
"""Where the app's CPU per cold rendition goes, by thread, beside the image work alone (issue 63,
item 5): what is not the image work is what the target against ipx leaves to cut.

The app in this process (Flask's test client: no gunicorn) on a fresh embedded SecantusDB in
its own process (the database's CPU is not counted here: it is another process), the
rendition presets and the lifted limits of ``bench/peers.py`` (``fit512``: the photo fitted
into 512x512 as JPEG q80). ``--photos`` of the peers' photo-like 2040x1356 JPEGs are stored
``--rounds`` times over (a comment makes each copy new bytes, so every request is a cold render),
then each is asked for once, one request at a time:

- the process's CPU per cold render, and each thread's share of it (``/proc/self/task``): the
  request thread (the store included), libvips's workers (the decode and the resize), the
  rest (pymongo's monitors, the app's own threads);
- the image work alone on the same photos in the same process (``render_spec``: the decode at
  the scale needed, the resize, the encode), the floor under any cold render;
- the database commands per cold render (a pymongo command listener) and what one command
  costs this client at least (a ``find_one`` by ``_id`` of a small document, this client's
  thread CPU): the part of the overhead the commands explain.

Rounds alternate with the image work alone, so a noisy moment falls on both. glibc's malloc
is set as gunicorn.conf.py sets it in the server (its mmap and trim thresholds; ``--malloc
mmap-only``: its mmap threshold alone, as it was before 2026-11-28; ``--malloc glibc``: glibc's
own), and the kernel's share of the process's CPU and its page faults per render
are reported: with the mmap threshold fixed and the trim threshold left at 128 KiB, a render's
freed buffers were faulted in again by the next one (322 faults and 2.0 ms of kernel CPU a
render here: bench/results/cold-cpu-2026-11-28-malloc.md), which this script, run with glibc's
defaults, did not show.

    .venv/bin/python bench/cold_cpu.py                 # 30 photos x 4 rounds
    .venv/bin/python bench/cold_cpu.py --photos 60 --rounds 6
    .venv/bin/python bench/cold_cpu.py --malloc mmap-only   # the server's malloc before 2026-11-28
"""

from __future__ import annotations

import argparse
import ast
import collections
import ctypes
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from cold_commands import ask_cold  # noqa: E402
from commands import CommandCounter  # noqa: E402

import data  # noqa: E402
import peers  # noqa: E402


def thread_ticks() -> dict[int, tuple[str, int]]:
    """Each thread of this process: (name, CPU ticks so far)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue  # ended meanwhile
        fields = stat.rpartition(")")[2].split()
        found[int(tid)] = (names.get(int(tid), comm), int(fields[11]) + int(fields[12]))
    return found


def malloc_as_the_server(trim: bool = True) -> str:
    """glibc's mmap and trim thresholds as gunicorn.conf.py sets them in the server (its
    constants read from the file, not run: it prepares folders for gunicorn and loads .env);
    ``trim`` False: the mmap threshold alone. What was set."""
    def number(node: ast.expr) -> int:  # 4 * 1024 * 1024: constants and products only
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return number(node.left) * number(node.right)
        raise ValueError(f"gunicorn.conf.py: not a product of numbers: {ast.unparse(node)}")

    tree = ast.parse((ROOT / "gunicorn.conf.py").read_text())
    values = {node.targets[0].id: number(node.value) for node in tree.body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
              and node.targets[0].id in {"MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES"}}
    libc = ctypes.CDLL(None)
    done = []
    for name, option in (("MMAP_THRESHOLD_BYTES", -3), ("TRIM_THRESHOLD_BYTES", -1)):
        if name in values and (trim or option != -1):
            libc.mallopt(option, values[name])
            done.append(f"{name.split('_')[0].lower()} threshold {values[name] // 1024} KiB")
    return ", ".join(done)


def kind(name: str) -> str:
    if name == "MainThread":
        return "request thread"
    if "libvips" in name or name.startswith("vips"):
        return "libvips workers"
    return "other threads"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--malloc", choices=("server", "mmap-only", "glibc"), default="server",
                        help="glibc's malloc thresholds: as gunicorn.conf.py sets them (default), its "
                             "mmap threshold alone (the server before 2026-11-28), or glibc's own")
    args = parser.parse_args()
    malloc = ("glibc's defaults" if args.malloc == "glibc" else
              f"{'as the server' if args.malloc == 'server' else 'the mmap threshold alone'} "
              f"({malloc_as_the_server(trim=args.malloc == 'server')})")

    from avenue import create_app
    from avenue.db import get_db, get_mongo
    from avenue.embedded import EmbeddedServer
    from avenue.media import Buckets
    from avenue.media.ingest.focal import CENTRE
    from avenue.media.ingest.images import Limits
    from avenue.media.ingest.render import render_spec
    from avenue.media.serve import route
    from avenue.media.store.originals import store
    from avenue.media.transform import Spec

    listener = CommandCounter()

    files = peers.photos("2040", args.photos + 1)
    bodies = [path.read_bytes() for path in files]
    spec = Spec(width=peers.BOX, height=peers.BOX, quality=peers.QUALITY)
    server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="avenue-cold-cpu-")) / "db").start()
    try:
        app = create_app({"MONGO_URI": server.uri, "MONGO_DB": "cold",
                          "MONGO_CLIENT_CLASS": listener.client_class(),
                          "SECRET_KEY": os.urandom(32).hex(), "AVENUE_STATUS_WARM_UP": False,
                          "AVENUE_ACCESS_LOG": "off", "AVENUE_VARIANTS_AFTER_ANSWER": True,
                          "RATELIMIT_ENABLED": True,
                          "AVENUE_RENDITION_PRESETS": f"fit512=w_{peers.BOX},h_{peers.BOX},q_{peers.QUALITY}",
                          "AVENUE_RENDER_ADDRESS_LIMIT": "100000/minute;1000000/hour",
                          "AVENUE_RENDER_INSTANCE_LIMIT": "100000/minute"})
        with app.app_context():
            get_mongo().ensure_indexes()
            rounds = [[store(get_db(), Buckets.PRODUCTS,
                             data.with_comment(body, f"cold-cpu {r} {n} {time.time()}"),
                             filename=f"p{n}.jpg").doc for n, body in enumerate(bodies)]
                      for r in range(args.rounds + 1)]
            probe = get_db()["cold_cpu_probe"]
            probe.insert_one({"_id": 1, "name": "probe"})
        web = app.test_client()

        def cold(docs: list[dict]) -> tuple[float, dict[str, float], float, float, float]:
            before, commands = thread_ticks(), len(listener.seen)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            started = time.process_time()
            ask_cold(web, [f"/media/products/{doc['_id']}/fit512.jpg" for doc in docs], route)
            spent = (time.process_time() - started) * 1000 / len(docs)
            used = resource.getrusage(resource.RUSAGE_SELF)
            kernel = (used.ru_stime - usage.ru_stime) * 1000 / len(docs)
            faults = (used.ru_minflt - usage.ru_minflt) / len(docs)
            after, hz = thread_ticks(), os.sysconf("SC_CLK_TCK")
            shares: dict[str, float] = collections.Counter()
            for tid, (name, ticks) in after.items():
                shares[kind(name)] += (ticks - before.get(tid, (name, 0))[1]) * 1000 / hz / len(docs)
            return spent, dict(shares), (len(listener.seen) - commands) / len(docs), kernel, faults

        def alone() -> float:
            started = time.process_time()
            for body in bodies[1:]:
                render_spec(body, Limits.for_stored(len(body)), spec, "jpeg", CENTRE)
            return (time.process_time() - started) * 1000 / (len(bodies) - 1)

        def one_command() -> float:
            with app.app_context():
                started = time.thread_time()
                for _ in range(200):
                    probe.find_one({"_id": 1})
                return (time.thread_time() - started) * 1e6 / 200

        cold(rounds[0][:5])  # the first requests pay for imports, indexes, the caches' first polls
        alone()
        results = []
        for docs in rounds[1:]:
            results.append((*cold(docs), alone(), one_command()))
        med = statistics.median
        process = med(r[0] for r in results)
        floor = med(r[5] for r in results)
        command_us = med(r[6] for r in results)
        commands = med(r[2] for r in results)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(f"# Where a cold rendition's app CPU goes, {stamp}\n")
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"`python bench/cold_cpu.py --photos {args.photos} --rounds {args.rounds} "
              f"--malloc {args.malloc}`; load average {load} at the end; medians of {len(results)} "
              f"rounds of {args.photos} cold renders "
              f"(2040x1356 photo-like JPEGs fitted into 512x512, JPEG q80); glibc's malloc {malloc}.\n")
        print("| | CPU ms per cold render |\n| --- | ---: |")
        print(f"| the app's process (in process, no gunicorn; the database is another process) "
              f"| **{process:.2f}** |")
        threads = ("request thread", "libvips workers", "other threads")
        for name in threads:
            print(f"| - {name} | {med(r[1].get(name, 0.0) for r in results):.2f} |")
        print(f"| - of it in the kernel ({med(r[4] for r in results):.0f} page faults a render) "
              f"| {med(r[3] for r in results):.2f} |")
        print(f"| the image work alone (render_spec, same photos, same process) | **{floor:.2f}** |")
        print(f"| beyond the image work | **{process - floor:.2f}** |")
        print(f"| - of which the database commands at least ({commands:.1f} a render x "
              f"{command_us:.0f} us, one small find_one's client CPU) | {commands * command_us / 1000:.2f} |")
        print("\nRounds (process / image work alone, ms): "
              + ", ".join(f"{r[0]:.1f} / {r[5]:.1f}" for r in results))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
