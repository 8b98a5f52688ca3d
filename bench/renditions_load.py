#!/usr/bin/env python3
"""Renditions on request under load, on the Procfile's gunicorn: issue 28's three remaining targets.

1. **One render per key**: 20 clients ask at once for the same cold rendition (a 12 MP photo
   to ``w_800.webp``, then ``w_800.avif``; a fresh upload per round, so the key is cold), ten
   of them on each of two app instances (``gunicorn --config gunicorn.conf.py wsgi:app``, 2
   workers each) on one database. The renders performed are read from the instances'
   ``/metrics`` (``avenue_rendition_render_seconds_count``, before and after, summed over the
   two: each instance's scrape adds up its own workers) and checked against the stored files
   of that key; the 20 answers' status codes, bytes and ETags, and their latency (p50, p99).
   Target: at most one render per key.
2. **Warm rendition against a fixed variant**: on one instance (the app alone, as
   ``bench/serving.py`` measures it: ``wrk -t2 -c16``, a GET and an ``If-None-Match`` 304), a
   photo whose fixed gallery WebP is about 100 KB, and its ``w_1600.webp`` rendition (the
   same width, so the bytes are alike; both sizes are printed), both fetched once first so
   the worker's cache holds them. Rounds alternate which goes first; the ratio is of the two
   sides' medians. Target: the rendition at least 0.9x the fixed variant's req/s.
3. **Memory under 20 cold renders**: 20 clients at once, each asking for a different cold
   rendition (4 uploads of the 12 MP photo x 5 specs, WebP and AVIF, 640-1600 px) on one
   instance; the workers' summed RSS (VmRSS of the master's children) sampled every 50 ms,
   after warm-up renders of both formats on another upload. Target: peak extra RSS under 600 MB.

Every gunicorn runs the repo's ``gunicorn.conf.py`` unchanged (2 workers, its worker class and
threads, ``AVENUE_RENDER_CONCURRENCY`` at its default unless the environment sets it), started
by ``tests/support/launcher.py``'s :class:`Gunicorn`, on the embedded SecantusDB. The machine
is shared: each part notes the other processes' CPU share over it, and the load averages.

    .venv/bin/python bench/renditions_load.py --quick   # 1 round per format, 3 x 2 s wrk rounds
    .venv/bin/python bench/renditions_load.py           # 3 rounds per format, 5 x 5 s wrk rounds

Writes ``bench/results/renditions-load-<date>.md`` (``-quick.md`` with ``--quick``; a run
stopped early writes ``bench/work/renditions-load/aborted.md``); logs in
``bench/work/renditions-load/``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness import BenchError, ForeignLoad, Reply, WrkResult, request, rss_mb, stop_after, wrk

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WORK = BENCH / "work" / "renditions-load"
# The app's code: this checkout's, or another's for --before's in-process rounds.
CODE_ENV = "RENDITIONS_LOAD_CODE"
sys.path.insert(0, os.environ.get(CODE_ENV) or str(ROOT))  # the app, and tests/support's launcher

import pymongo  # noqa: E402
from avenue.embedded import EmbeddedServer  # noqa: E402
from avenue.media.buckets import RENDITIONS  # noqa: E402
from avenue.media.ingest.images import Limits  # noqa: E402
from bson import ObjectId  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from tests.support import tokens  # noqa: E402
from tests.support.launcher import Gunicorn  # noqa: E402

import data  # noqa: E402

DB = "renditions_load"
CLIENTS = 20
RENDERS = "avenue_rendition_render_seconds_count"
# Part 3's 20 distinct renditions: 4 sources x these 5 specs.
MEMORY_SPECS = ("w_1600.webp", "w_1280.avif", "w_960.webp", "w_800.avif", "w_640.webp")
WARM_SPEC = "w_1600.webp"  # the gallery's width: the same pixels as the fixed variant
MODES = {"quick": {"cold_rounds": 1, "wrk_rounds": 3, "wrk_seconds": 2},
         "full": {"cold_rounds": 3, "wrk_rounds": 7, "wrk_seconds": 3}}


def say(message: str) -> None:
    print(f"[renditions-load {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------
# Images


def photo_12mp() -> bytes:
    return data.photo_12mp(ROOT, BENCH / "work" / "data").read_bytes()


def gallery_100k() -> bytes:
    """A 2400x1800 photo-like JPEG whose 1600 px gallery WebP is about 100 KB (grain 0.11,
    found by trying: 0.10 gives 79 KB, 0.12 126 KB)."""
    buf = io.BytesIO()
    data.photo_like(2400, 1800, 28, 0.11).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def upload(server: Gunicorn, headers: dict[str, str], body: bytes, name: str) -> dict:
    status, image = server.upload(headers, body, name, timeout=180)
    if status != 201 or "url" not in image:
        raise BenchError(f"upload of {name}: HTTP {status} {image}")
    return image


def rendition_path(image: dict, spec: str) -> str:
    return image["url"].rsplit(".", 1)[0] + "/" + spec


# --------------------------------------------------------------------------------------
# Measuring


def renders(servers: list[Gunicorn]) -> dict[str, float]:
    """Renditions rendered so far, by format, summed over the servers' /metrics."""
    total: dict[str, float] = {}
    for server in servers:
        reply = request("GET", server.port, "/metrics", timeout=30)
        if reply.status != 200:
            raise BenchError(f"/metrics on port {server.port}: HTTP {reply.status}")
        for family in text_string_to_metric_families(reply.body.decode()):
            for sample in family.samples:
                if sample.name == RENDERS:
                    fmt = sample.labels.get("format", "?")
                    total[fmt] = total.get(fmt, 0.0) + sample.value
    return total


@dataclass
class Answer:
    status: int
    seconds: float
    length: int
    etag: str
    body_hash: int
    retries: int = 0  # 503s asked again first


def at_once(targets: list[tuple[int, str]], retry_busy: int = 0) -> list[Answer]:
    """One GET per (port, path), each on a thread and connection of its own, released together;
    a 503 is asked again after its Retry-After, up to ``retry_busy`` times (as a browser or a
    CDN would), and its answer's time runs from the first try."""
    answers: list[Answer | None] = [None] * len(targets)
    barrier = threading.Barrier(len(targets))

    def one(i: int, port: int, path: str) -> None:
        barrier.wait()
        started = time.monotonic()
        tries = 0
        try:
            while True:
                reply: Reply = request("GET", port, path, timeout=120)
                if reply.status != 503 or tries >= retry_busy:
                    break
                tries += 1
                time.sleep(float(reply.headers.get("retry-after", "1")))
            answers[i] = Answer(reply.status, time.monotonic() - started, len(reply.body),
                                reply.headers.get("etag", ""), hash(reply.body), tries)
        except OSError as exc:
            answers[i] = Answer(-1, time.monotonic() - started, 0, type(exc).__name__, 0, tries)

    threads = [threading.Thread(target=one, args=(i, port, path)) for i, (port, path) in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return [a if a is not None else Answer(-2, float("inf"), 0, "no answer", 0) for a in answers]


def percentile(values: list[float], p: float) -> float:
    """Nearest rank (p99 of 20 is the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def statuses(answers: list[Answer]) -> str:
    counts: dict[int, int] = {}
    for a in answers:
        counts[a.status] = counts.get(a.status, 0) + 1
    return ", ".join(f"{n} x {code}" for code, n in sorted(counts.items()))


def others(seconds: float = 1.0) -> str:
    """The processes outside this run using CPU over ``seconds``, grouped by name."""
    mine = {psutil.Process().pid} | {p.pid for p in psutil.Process().children(recursive=True)}
    procs = [p for p in psutil.process_iter(["name"]) if p.pid not in mine]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(seconds)
    by_name: dict[str, list[float]] = {}
    for p in procs:
        try:
            share = p.cpu_percent(None)
        except psutil.Error:
            continue
        if share >= 2.0:
            by_name.setdefault(p.info["name"] or "?", []).append(share)
    if not by_name:
        return "nothing else busy"
    return ", ".join(f"{name} x{len(v)} {sum(v):.0f} %" for name, v in
                     sorted(by_name.items(), key=lambda kv: -sum(kv[1])))


@dataclass
class Part:
    """One part's lines of the results, with what else ran meanwhile."""

    rows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)


def measured(part: Part, fn: Callable[[], None]) -> None:
    """Run ``fn`` noting the other processes busy at its start and their CPU share over it."""
    load = ForeignLoad()
    part.notes.append(f"busy at the start (other processes, % of one core): {others()}")
    load.start()
    fn()
    share = load.percent()
    part.notes.append(f"other processes used {share:.0f} % of the machine's CPU over this part"
                      if share is not None else "other processes' CPU share: not known")


# --------------------------------------------------------------------------------------
# 1. One render per key


def one_render_per_key(servers: list[Gunicorn], headers: dict[str, str], mongo_uri: str,
                       rounds: int, part: Part) -> None:
    source = photo_12mp()
    part.rows += ["| format | round | renders (metrics) | stored files | answers | distinct bodies / ETags | "
                  "p50 ms | p99 ms |", "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    worst = 0.0
    all_ok = True
    with pymongo.MongoClient(mongo_uri) as client:
        files = client[DB][f"{RENDITIONS}.files"]
        for fmt in ("webp", "avif"):
            for n in range(1, rounds + 1):
                image = upload(servers[0], headers, data.with_comment(source, f"key {fmt} {n} {time.time()}"),
                               "photo_12mp.jpg")
                path = rendition_path(image, f"w_800.{fmt}")
                before = renders(servers)
                answers = at_once([(servers[i % len(servers)].port, path) for i in range(CLIENTS)])
                time.sleep(1.5)  # a lapsed-claim takeover would have rendered by now (it does not)
                after = renders(servers)
                made = after.get(fmt, 0.0) - before.get(fmt, 0.0)
                stored = files.count_documents({"metadata.image_id": ObjectId(image["id"]),
                                                "metadata.spec": "w_800", "metadata.format": fmt})
                ok = [a for a in answers if a.status == 200]
                times = [a.seconds * 1000 for a in answers]
                distinct = f"{len({a.body_hash for a in ok})} / {len({a.etag for a in ok})}"
                p50, p99 = percentile(times, 50), percentile(times, 99)
                part.rows.append(f"| {fmt} | {n} | {made:.0f} | {stored} | {statuses(answers)} | "
                                 f"{distinct} | {p50:,.0f} | {p99:,.0f} |")
                say(part.rows[-1])
                worst = max(worst, made)
                all_ok &= len(ok) == CLIENTS and distinct == "1 / 1" and stored == 1
    verdict = "met" if worst <= 1 and all_ok else "missed"
    part.verdicts.append(f"at most one render per key with {CLIENTS} clients at once: **{verdict}** "
                         f"(most renders of one key: {worst:.0f}; every answer 200 with the same bytes "
                         f"and ETag: {'yes' if all_ok else 'no'})")


# --------------------------------------------------------------------------------------
# 2. A warm rendition against a fixed variant


def warm_against_fixed(server: Gunicorn, headers: dict[str, str], rounds: int, seconds: float,
                       part: Part) -> dict[str, str]:
    image = upload(server, headers, gallery_100k(), "gallery100k.jpg")
    sides = {"fixed gallery WebP": image["variant_urls"]["gallery"]["webp"],
             f"rendition {WARM_SPEC}": rendition_path(image, WARM_SPEC)}
    etags = {}
    for label, path in sides.items():
        first = request("GET", server.port, path, timeout=120)
        again = request("GET", server.port, path, timeout=30)  # from the cache now
        if first.status != 200 or again.status != 200 or first.body != again.body:
            raise BenchError(f"{label} {path}: HTTP {first.status} then {again.status}")
        etags[label] = again.headers["etag"]
        revalidated = request("GET", server.port, path, headers={"If-None-Match": etags[label]}, timeout=30)
        if revalidated.status != 304:
            raise BenchError(f"{label}: If-None-Match answered {revalidated.status}, not 304")
        part.notes.append(f"{label}: `{path}`, {len(again.body):,} bytes, "
                          f"{again.headers.get('content-type')}")
    results: dict[tuple[str, str], list[WrkResult]] = {}
    for n in range(rounds):
        order = list(sides) if n % 2 == 0 else list(reversed(sides))
        for case in ("GET", "304"):
            for label in order:
                extra = {"If-None-Match": etags[label]} if case == "304" else None
                result = wrk(server.port, sides[label], seconds=seconds, headers=extra)
                if not result.clean:
                    part.notes.append(f"round {n + 1}, {label} {case}: {result.errors} socket errors, "
                                      f"{result.non_2xx_3xx} non-2xx/3xx")
                results.setdefault((label, case), []).append(result)
        say(f"round {n + 1}: " + ", ".join(f"{label} {case} {rs[-1].rps:,.0f}"
                                          for (label, case), rs in results.items()))
    part.rows += ["| case | fixed gallery WebP, req/s (median) | rendition, req/s (median) | ratio of the "
                  "medians (target >= 0.90x) | per-round ratios (their median) |",
                  "| --- | ---: | ---: | ---: | --- |"]
    fixed, rendition = sides
    for case in ("GET", "304"):
        a = [r.rps for r in results[(rendition, case)]]
        b = [r.rps for r in results[(fixed, case)]]
        ratio = statistics.median(a) / statistics.median(b)
        verdict = "met" if ratio >= 0.9 else "missed"
        ratios = [x / y for x, y in zip(a, b, strict=True)]
        per_round = ", ".join(f"{r:.2f}" for r in ratios) + f" ({statistics.median(ratios):.2f})"
        part.rows.append(f"| {case} | {statistics.median(b):,.0f} | {statistics.median(a):,.0f} | "
                         f"{ratio:.2f}x ({verdict}) | {per_round} |")
        part.verdicts.append(f"warm rendition {case} at least 0.9x the fixed variant: **{verdict}** "
                             f"({ratio:.2f}x)")
    return sides


FRONT_DOOR_CALLS = 5000


def front_door_round(mongo_uri: str, sides: dict[str, str]) -> dict[str, float]:
    """One round of the media front door's answers to each side's GET and 304, timed in this
    process (the app built on the same database, its cache filled as a worker's is): the CPU
    an answer costs, without wrk or the machine's other load in the figure. Microseconds per
    answer by "label case"."""
    from avenue import create_app
    from werkzeug.test import EnvironBuilder

    # The access log off: its line is written by another thread, the same for both sides.
    app = create_app({"MONGO_URI": mongo_uri, "MONGO_DB": DB, "SECRET_KEY": os.urandom(32).hex(),
                      "AVENUE_ACCESS_LOG": "off", "AVENUE_STATUS_WARM_UP": False})

    def call(environ: dict) -> tuple[str, bytes]:
        answer: list[str] = []
        body = app.wsgi_app(environ, lambda status, headers, *exc: answer.append(status))
        try:
            data = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        return answer[0], data

    accept = {"Accept": "image/webp,*/*"}
    environs = {}
    for label, path in sides.items():
        for _ in range(3):  # read whole, so the worker's cache holds its body, then from the cache
            status, body = call(EnvironBuilder(path=path, headers=accept).get_environ())
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        environs[f"{label} GET"] = EnvironBuilder(path=path, headers=accept).get_environ()
        environs[f"{label} 304"] = EnvironBuilder(path=path, headers={"If-None-Match": etag}).get_environ()
        if status != "200 OK" or call(dict(environs[f"{label} 304"]))[0] != "304 NOT MODIFIED":
            raise BenchError(f"in process, {label}: {status}, or no 304 for {etag}")
    times = {}
    for key, environ in environs.items():
        started = time.perf_counter()
        for _ in range(FRONT_DOOR_CALLS):
            call(dict(environ))
        times[key] = (time.perf_counter() - started) / FRONT_DOOR_CALLS * 1e6
    return times


def front_door_in_process(mongo_uri: str, sides: dict[str, str], rounds: int, part: Part,
                          before: tuple[str, Path] | None) -> None:
    """:func:`front_door_round` ``rounds`` times, each in a fresh process (this script with
    ``--front-door``) on this checkout's code and, with ``before`` (ref, checkout), on that
    one's, alternating."""
    codes = [("this code", ROOT)] + ([(f"before ({before[0]})", before[1])] if before else [])
    times: dict[str, dict[str, list[float]]] = {label: {} for label, _ in codes}
    for n in range(rounds):
        for label, code in (codes if n % 2 == 0 else list(reversed(codes))):
            env = {**os.environ, CODE_ENV: str(code)}
            done = subprocess.run([sys.executable, __file__, "--front-door", mongo_uri, json.dumps(sides)],
                                  env=env, capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                raise BenchError(f"front door in process, {label}: {done.stderr.strip()[-500:]}")
            for key, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                times[label].setdefault(key, []).append(value)
    fixed, rendition = sides
    part.rows += ["", f"The media front door's answer in process, µs (median of {rounds} rounds x "
                  f"{FRONT_DOOR_CALLS:,}, each round a fresh process):", "",
                  "| code | case | fixed gallery WebP | rendition | rendition / fixed |",
                  "| --- | --- | ---: | ---: | ---: |"]
    for label, _ in codes:
        for case in ("GET", "304"):
            a = statistics.median(times[label][f"{rendition} {case}"])
            b = statistics.median(times[label][f"{fixed} {case}"])
            part.rows.append(f"| {label} | {case} | {b:.1f} | {a:.1f} | {a / b:.2f}x |")


# --------------------------------------------------------------------------------------
# 3. Memory under 20 cold renders


def memory_under_cold_renders(server: Gunicorn, headers: dict[str, str], part: Part) -> None:
    """On a server just started (``idle``: its workers' RSS then)."""
    source = photo_12mp()
    idle = rss_mb(server.workers())
    warm = upload(server, headers, data.with_comment(source, f"warm {time.time()}"), "warm.jpg")
    # Both formats on both workers (SO_REUSEPORT spreads the connections): the libraries
    # loaded and the allocators' arenas there, as in a server that has rendered before.
    warm_specs = [f"w_{w}.{fmt}" for w in (320, 480, 640, 800) for fmt in ("webp", "avif")]
    warmed = at_once([(server.port, rendition_path(warm, spec)) for spec in warm_specs])
    if any(a.status != 200 for a in warmed):
        raise BenchError(f"warm-up renders: {statuses(warmed)}")
    sources = [upload(server, headers, data.with_comment(source, f"memory {i} {time.time()}"), f"m{i}.jpg")
               for i in range(CLIENTS // len(MEMORY_SPECS))]
    targets = [(server.port, rendition_path(image, spec)) for image in sources for spec in MEMORY_SPECS]
    time.sleep(1.0)
    pids = server.workers()
    before = rss_mb(pids)
    peak = before
    samples = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, samples
        while not stop.wait(0.05):
            peak = max(peak, rss_mb(pids))
            samples += 1

    counted = renders([server])
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        answers = at_once(targets, retry_busy=3)
    finally:
        stop.set()
        sampler.join(timeout=5)
    wall = time.monotonic() - started
    peak = max(peak, rss_mb(pids))
    made = sum(renders([server]).values()) - sum(counted.values())
    time.sleep(0.5)
    after = rss_mb(pids)
    times = [a.seconds * 1000 for a in answers]
    concurrency = server.env.get("AVENUE_RENDER_CONCURRENCY", "2 (the default)")
    part.rows += ["| measurement | value |", "| --- | ---: |",
                  f"| workers' RSS before (sum of {len(pids)} workers), MB | {before:,.0f} |",
                  f"| peak during, MB ({samples} samples, every 50 ms) | {peak:,.0f} |",
                  f"| **peak extra RSS, MB** (target < 600) | **{peak - before:,.0f}** |",
                  f"| extra RSS 0.5 s after the last answer, MB | {after - before:,.0f} |",
                  f"| peak above the workers idle at start, before any render (warm-up included), MB | "
                  f"{peak - idle:,.0f} (idle {idle:,.0f}) |",
                  f"| answers (a 503 asked again after its Retry-After, up to 3 times) | {statuses(answers)} "
                  f"({sum(a.retries for a in answers)} retries) |",
                  f"| renders counted by /metrics | {made:.0f} |",
                  f"| wall time of the 20, s | {wall:.1f} |",
                  f"| latency p50 / p99, ms (from the first try) | {percentile(times, 50):,.0f} / "
                  f"{percentile(times, 99):,.0f} |"]
    part.notes.append(f"AVENUE_RENDER_CONCURRENCY {concurrency} per worker; decode budget "
                      f"{Limits.decode_budget_bytes // 2**20} MiB per worker (a render decodes with "
                      "`Limits.for_stored`, whose budget is this default, not AVENUE_DECODE_BUDGET_BYTES)")
    # Judged on memory; the answers are given beside it (a 503 is a render that waited more
    # than RENDER_SLOT_WAIT_SECONDS for a slot and never decoded: the renders counted say so).
    verdict = "met" if peak - before < 600 else "missed"
    part.verdicts.append(f"peak extra worker RSS under {CLIENTS} concurrent cold renders under 600 MB: "
                         f"**{verdict}** ({peak - before:,.0f} MB; answers {statuses(answers)}, "
                         f"{made:.0f} renders)")


# --------------------------------------------------------------------------------------
# The run


def report(parts: dict[str, Part], *, mode: str, started: str, loads: list[tuple[float, ...]],
           aborted: str | None) -> str:
    lines = [f"# Renditions on request under load, {started[:10]}{' (quick)' if mode == 'quick' else ''}", "",
             f"`python bench/renditions_load.py{' --quick' if mode == 'quick' else ''}`, started {started}, "
             f"on {os.cpu_count()} cores shared with other work; load average "
             f"{' / '.join(f'{x:.2f}' for x in loads[0])} at the start, "
             f"{' / '.join(f'{x:.2f}' for x in loads[-1])} at the end. "
             "`gunicorn --config gunicorn.conf.py wsgi:app` (2 workers each) on the embedded SecantusDB.", ""]
    if aborted:
        lines += [f"**Stopped early** ({aborted}): partial results.", ""]
    verdicts = [v for part in parts.values() for v in part.verdicts]
    if verdicts:
        lines += ["## Targets", ""] + [f"- {v}" for v in verdicts] + [""]
    for title, part in parts.items():
        lines += [f"## {title}", "", *part.rows, ""]
        lines += [f"- {note}" for note in part.notes] + [""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 cold round per format, 3 x 2 s wrk rounds")
    parser.add_argument("--only", default="key,warm,memory", help="a subset of: key, warm, memory")
    parser.add_argument("--before", metavar="REF", help="also time the front door's answers in process "
                        "on this git ref's code (a temporary worktree)")
    parser.add_argument("--front-door", nargs=2, metavar=("URI", "SIDES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.front_door:  # one in-process round, for front_door_in_process
        print(json.dumps(front_door_round(args.front_door[0], json.loads(args.front_door[1]))))
        return 0
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    only = set(args.only.split(","))
    limit = 900 if args.quick else 1800

    stop_after(limit)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = [os.getloadavg()]
    folder = Path(tempfile.mkdtemp(prefix="avenue-renditions-load-"))
    database = EmbeddedServer(folder / "db", log_path=WORK / "secantusd.log")
    servers: list[Gunicorn] = []
    parts: dict[str, Part] = {}
    aborted = None
    worktree: Path | None = None
    try:
        database.start()
        for name in ("a", "b"):
            log = WORK / f"gunicorn-{name}.log"
            log.unlink(missing_ok=True)
            servers.append(Gunicorn(database.uri, DB, log, workers=2,
                                    extra_env={"AVENUE_METRICS_ALLOW": "127.0.0.1/32"}).start())
        headers = tokens.issue_on(database.uri, DB)
        say(f"two instances on ports {servers[0].port} and {servers[1].port}, one database")
        if "key" in only:
            part = parts["1. One render per key: 20 clients, two instances, one cold key"] = Part()
            measured(part, lambda: one_render_per_key(servers, headers, database.uri, cfg["cold_rounds"],
                                                      part))
        servers.pop().stop()  # the rest on one instance, nothing else of ours running
        if "warm" in only:
            part = parts["2. A warm ~100 KB rendition against the fixed gallery WebP (app alone)"] = Part()
            sides: dict[str, str] = {}
            measured(part, lambda: sides.update(warm_against_fixed(servers[0], headers, cfg["wrk_rounds"],
                                                                   cfg["wrk_seconds"], part)))
            before = None
            if args.before:
                worktree = Path(tempfile.mkdtemp(prefix="avenue-before-"))
                subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=ROOT,
                               check=True, capture_output=True)
                before = (args.before, worktree)
            front_door_in_process(database.uri, sides, cfg["wrk_rounds"], part, before)
            part.notes.append(f"wrk -t2 -c16, {cfg['wrk_seconds']} s per run, {cfg['wrk_rounds']} rounds "
                              "alternating which side goes first; GET then 304 in each round")
        if "memory" in only:
            # A fresh instance: its workers' memory is what these renders (and their warm-up) add.
            servers.pop().stop()
            log = WORK / "gunicorn-c.log"
            log.unlink(missing_ok=True)
            servers.append(Gunicorn(database.uri, DB, log, workers=2,
                                    extra_env={"AVENUE_METRICS_ALLOW": "127.0.0.1/32"}).start())
            time.sleep(2.0)  # its background start-up (indexes, schedulers) done
            part = parts["3. Workers' memory under 20 concurrent cold renders (distinct keys)"] = Part()
            measured(part, lambda: memory_under_cold_renders(servers[0], headers, part))
    except (KeyboardInterrupt, BenchError, RuntimeError) as exc:
        aborted = f"{type(exc).__name__}: {exc}"
        say(f"stopped: {aborted}")
    finally:
        signal.alarm(0)
        for server in servers:
            server.stop(grace=10)
        database.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False,
                           capture_output=True)
    loads.append(os.getloadavg())
    text = report(parts, mode=mode, started=started, loads=loads, aborted=aborted)
    print("\n" + text)
    if aborted:
        target = WORK / "aborted.md"
    else:
        RESULTS.mkdir(exist_ok=True)
        target = RESULTS / f"renditions-load-{started[:10]}{'-quick' if args.quick else ''}.md"
    target.write_text(text)
    say(f"written to {target.relative_to(ROOT)}")
    return 1 if aborted else 0


if __name__ == "__main__":
    sys.exit(main())
