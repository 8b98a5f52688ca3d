#!/usr/bin/env python3
"""Renditions on request against the image servers people run, side by side (issue 46).

Three servers on this machine, one run, the same source photos and the same output: each photo
fitted into 512x512 as a JPEG at quality 80.

- **Avenue**: ``make run``'s entry point (``python -m avenue.devserver``,
  ``tests/support/launcher.py``'s :class:`MakeRun`): the embedded default as a shop runs it, a
  standalone SecantusDB under its supervisor reached through make run's one-connection relay,
  and the Procfile's gunicorn with 2 workers (``--replica-set``: gunicorn on a replica-set
  SecantusDB of its own, no relay, as ``bench/renditions_load.py`` runs it, and as this
  script did before 2026-11-27); the photos uploaded as public images, the
  rendition asked by a preset (``AVENUE_RENDITION_PRESETS=fit512=w_512,h_512,q_80``, served
  unsigned): ``/media/<alias>/<id>/fit512.jpg``. The limits of unsigned cold renders are raised
  for the run (one client address asks for every cold rendition; they are checks, not work).
- **thumbor 7.8.0** (PyPI, its Pillow engine), 2 processes (``--processes 2``), the photos read
  from disk by its file loader, no storage of originals or results:
  ``/unsafe/fit-in/512x512/filters:quality(80):format(jpeg)/<name>``.
- **ipx 3.1** (npm, on sharp 0.34 and its prebuilt libvips), one node process as its CLI starts it:
  ``/s_512x512,fit_inside,q_80,f_jpeg/<name>``.

thumbor and ipx are installed by this script into ``bench/work/peers/`` (thumbor in a venv of
its own, ipx with npm in a folder of its own), never into the app's environment.

Each server is measured alone (the others are stopped), per workload (``2040``: photo-like
2040x1356 JPEGs, as imgproxy's published benchmark uses DIV2K photos about 2040 px wide;
``12mp``: 4000x3000), made deterministically (:func:`textured`):

- **cold**: every URL asked once, 2 clients at a time (keep-alive connections), every URL
  distinct; Avenue's answers are proven cold by its render counter (``/metrics``,
  ``avenue_rendition_render_seconds_count``: one render per request) and the renditions stored;
- **warm**: the same URLs again with ``wrk -t2 -c16`` (a Lua script walks the list): Avenue
  serves what it stored; thumbor and ipx render again (they keep no results);
- per phase: req/s, latency p50/p99, the CPU per request of each server's process group (for
  Avenue, its gunicorn master and workers, and the database process apart), and each group's
  peak RSS (summed, sampled every 50 ms);
- every cold answer is checked: HTTP 200, ``image/jpeg``, decodes as a JPEG, its size the photo
  fitted into 512x512 (within a pixel), its quantisation tables those of quality 80 (within 2).

``--profile`` also records Avenue's workers with py-spy during the cold phase (all threads,
idle ones left out) and writes the summary to ``bench/results/peers-profile-<date>.md``.

    .venv/bin/python bench/peers.py --quick         # about a minute: 12 + 3 photos, 1 s wrk
    .venv/bin/python bench/peers.py --out           # 60 + 20 photos, 10 s wrk; writes the table
    .venv/bin/python bench/peers.py --only avenue --profile
    .venv/bin/python bench/peers.py --before fb4b483 --out   # that ref's Avenue too, first, in the same run

Prints a markdown table; ``--out`` writes it to ``bench/results/peers-<date>.md`` (``-2``,
``-3``, ... when that exists). Logs in ``bench/work/peers/``.
"""

from __future__ import annotations

import argparse
import io
import os
import random
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
from http.client import HTTPConnection
from pathlib import Path

import psutil

from harness import (
    LOOPBACK,
    BenchError,
    ForeignLoad,
    Procs,
    free_port,
    request,
    run,
    stop_after,
    wait_http,
    wrk,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WORK = BENCH / "work" / "peers"
sys.path.insert(0, str(ROOT))  # the app, and tests/support's launcher

import pymongo  # noqa: E402
from avenue.embedded import EmbeddedServer  # noqa: E402
from PIL import Image  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from tests.support import fixtures, tokens  # noqa: E402
from tests.support.launcher import Gunicorn, MakeRun  # noqa: E402

import data  # noqa: E402
import profiles  # noqa: E402

THUMBOR = "7.8.0"
IPX = "3.1"
BOX = 512
QUALITY = 80
PRESET = f"fit{BOX}"
DB = "peers"
RENDERS = "avenue_rendition_render_seconds_count"
CLIENTS = 2
WARM_CONNECTIONS = 16
#: The workloads: (width, height, photos in a full run, photos with --quick).
WORKLOADS = {"2040": (2040, 1356, 60, 12), "12mp": (4000, 3000, 20, 3)}
SERVERS = ("avenue", "thumbor", "ipx")


def say(message: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------
# The peers, installed into bench/work/peers/


def install_thumbor() -> Path:
    """thumbor ``THUMBOR`` in a venv of its own (made with this Python's base interpreter);
    its ``thumbor`` script."""
    venv = WORK / "thumbor-venv"
    script = venv / "bin" / "thumbor"
    if script.exists():
        try:
            done = run([str(script), "--version"], timeout=60, check=False)
            if THUMBOR in done.stdout + done.stderr:
                return script
        except OSError:  # its interpreter is gone (a venv copied from another machine): again
            pass
    say(f"installing thumbor {THUMBOR} into {venv.relative_to(ROOT)}")
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", "--clear", str(venv)], timeout=120)
    run([str(venv / "bin" / "pip"), "install", "-q", f"thumbor=={THUMBOR}"], timeout=900)
    return script


def install_ipx() -> Path:
    """ipx ``IPX``.x with npm in a folder of its own; its CLI script."""
    folder = WORK / "ipx"
    script = folder / "node_modules" / "ipx" / "bin" / "ipx.mjs"
    manifest = folder / "node_modules" / "ipx" / "package.json"
    if script.exists() and f'"version": "{IPX}.' in manifest.read_text():
        return script
    if shutil.which("npm") is None:
        raise BenchError("npm is not installed (apt-get install nodejs npm)")
    say(f"installing ipx {IPX} into {folder.relative_to(ROOT)}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "avenue-bench-ipx", "private": true}\n')
    run(["npm", "install", "--no-audit", "--no-fund", f"ipx@{IPX}"], timeout=900, cwd=folder)
    return script


def versions(ipx_script: Path) -> str:
    sharp = run(["node", "-e", "const s = require('sharp'); console.log(s.versions.sharp, s.versions.vips)"],
                timeout=60, cwd=ipx_script.parents[3], check=False).stdout.split()
    pillow = run([str(WORK / "thumbor-venv" / "bin" / "python"), "-c", "import PIL; print(PIL.__version__)"],
                 timeout=60, check=False).stdout.strip()
    return (f"thumbor {THUMBOR} (Pillow {pillow or '?'}), ipx {IPX} (sharp {sharp[0] if sharp else '?'}, "
            f"libvips {sharp[1] if len(sharp) > 1 else '?'}), "
            f"node {run(['node', '--version'], timeout=30).stdout.strip()}")


# --------------------------------------------------------------------------------------
# Photos


def photos(workload: str, count: int) -> list[Path]:
    """``count`` photo-like JPEGs of the workload's size (q90), made once and kept; the warm-up
    photo is one more (``warmup.jpg``)."""
    width, height, _, _ = WORKLOADS[workload]
    folder = WORK / "images" / workload
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count + 1):
        path = folder / ("warmup.jpg" if i == count else f"photo{i:03d}.jpg")
        if not path.exists():
            buf = io.BytesIO()
            textured(width, height, 4600 + i).save(buf, "JPEG", quality=90)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(buf.getvalue())
            tmp.replace(path)
        paths.append(path)
    return paths


def textured(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like picture with detail at every scale, as a photo has: ``fixtures.scene``'s
    gradient, shapes and grain, then coarse and finer seeded texture (noise at 1/24 and 1/6 of
    the size, enlarged bicubic) blended in. At 2040x1356 its q90 JPEG is about 500 KB and its
    512 px q80 rendition about 40 KB, as a DIV2K photo's are (the smooth ``data.photo_like``
    with grain shrinks to 8 KB: too little for an encoder to do)."""
    rng = random.Random(seed)
    image = fixtures.scene((width, height), seed, grain=0.04)
    for divisor, amount in ((24, 0.3), (6, 0.18)):
        small = (max(1, width // divisor), max(1, height // divisor))
        noise = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
        image = Image.blend(image, noise.resize((width, height), Image.Resampling.BICUBIC), amount)
    return image


def fitted(width: int, height: int) -> tuple[int, int]:
    """The size of a ``width`` x ``height`` picture fitted into BOX x BOX (never enlarged)."""
    scale = min(BOX / width, BOX / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
         14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
         49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


def jpeg_quality(image: Image.Image) -> int | None:
    """The libjpeg quality whose scaled standard luminance table is closest to the file's (by
    the tables' sums, which do not depend on their order)."""
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    actual = sum(tables[0])

    def scaled(q: int) -> int:
        scale = 5000 // q if q < 50 else 200 - 2 * q
        return sum(min(255, max(1, (v * scale + 50) // 100)) for v in _LUMA)

    return min(range(1, 101), key=lambda q: abs(scaled(q) - actual))


@dataclass
class Check:
    """What the cold answers were, checked."""

    bad: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    qualities: list[int] = field(default_factory=list)

    def add(self, name: str, status: int, content_type: str, body: bytes, want: tuple[int, int]) -> None:
        if status != 200:
            self.bad.append(f"{name}: HTTP {status} {body[:120]!r}")
            return
        if content_type.split(";")[0].strip() != "image/jpeg":
            self.bad.append(f"{name}: Content-Type {content_type}")
        try:
            image = Image.open(io.BytesIO(body))
            image.load()
        except Exception as error:  # noqa: BLE001 - any failure to decode is a bad answer
            self.bad.append(f"{name}: does not decode ({error})")
            return
        if image.format != "JPEG":
            self.bad.append(f"{name}: {image.format}, not JPEG")
        if abs(image.width - want[0]) > 1 or abs(image.height - want[1]) > 1:
            self.bad.append(f"{name}: {image.width}x{image.height}, not {want[0]}x{want[1]}")
        quality = jpeg_quality(image)
        if quality is None or abs(quality - QUALITY) > 2:
            self.bad.append(f"{name}: quality {quality}, not {QUALITY}")
        if quality is not None:
            self.qualities.append(quality)
        self.sizes.append(len(body))

    def summary(self) -> str:
        if not self.sizes:
            return "no answer checked"
        qualities = sorted(set(self.qualities))
        text = (f"{len(self.sizes) - len([b for b in self.bad if 'HTTP' not in b])} of {len(self.sizes)} ok; "
                f"median {statistics.median(self.sizes) / 1024:.0f} KB, q {'/'.join(map(str, qualities))}")
        return text + (f"; **{len(self.bad)} bad**: {'; '.join(self.bad[:3])}" if self.bad else "")


# --------------------------------------------------------------------------------------
# Process groups: CPU and RSS


class Group:
    """A server's processes (its roots and their descendants, and ``alone``: processes counted
    without their children): CPU seconds used and RSS summed, read from /proc through psutil."""

    def __init__(self, name: str, roots: Callable[[], list[int]],
                 alone: Callable[[], list[int]] | None = None) -> None:
        self.name = name
        self.roots = roots
        self.alone = alone or (lambda: [])
        self._seen: dict[int, psutil.Process] = {}
        self._gone_cpu = 0.0
        self._last: dict[int, float] = {}

    def processes(self) -> list[psutil.Process]:
        found = []
        for pid in self.roots():
            try:
                root = self._seen.get(pid) or psutil.Process(pid)
                found += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        for pid in self.alone():
            try:
                found.append(self._seen.get(pid) or psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        for proc in found:
            self._seen.setdefault(proc.pid, proc)
        return found

    def cpu(self) -> float:
        """CPU seconds (user + system) of the group's live processes, plus what processes that
        have exited since the last call had used when last seen."""
        now: dict[int, float] = {}
        for proc in self.processes():
            try:
                t = proc.cpu_times()
                now[proc.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        self._gone_cpu += sum(v for pid, v in self._last.items() if pid not in now)
        self._last = now
        return self._gone_cpu + sum(now.values())

    def rss(self) -> int:
        total = 0
        for proc in self.processes():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total


class PeakRss:
    """The peak of each group's summed RSS, sampled every 50 ms while in the ``with``."""

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups
        self.peak = {g.name: 0 for g in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            for group in self.groups:
                self.peak[group.name] = max(self.peak[group.name], group.rss())
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def quiet(groups: list[Group], limit: float = 0.15, timeout: float = 60.0) -> float:
    """Wait until the groups together use under ``limit`` of a core over half a second (an
    upload's variants rendered after its answer are done); the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(g.cpu() for g in groups)
        time.sleep(0.5)
        if sum(g.cpu() for g in groups) - before < 0.5 * limit:
            break
    return time.monotonic() - started


# --------------------------------------------------------------------------------------
# Load


@dataclass
class Phase:
    """One phase's figures: req/s, latencies, CPU ms per request by group, peak RSS by group."""

    requests: int
    seconds: float
    p50: float | None
    p99: float | None
    cpu_ms: dict[str, float]
    peak_mb: dict[str, float]
    errors: int = 0
    times: list[float] = field(default_factory=list)  # each answer's ms (cold)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def cold(port: int, paths: list[str], groups: list[Group], want: tuple[int, int], check: Check) -> Phase:
    """Every path once, ``CLIENTS`` at a time on keep-alive connections; each answer checked."""
    queue = list(reversed(paths))
    lock = threading.Lock()
    answers: list[tuple[str, int, str, bytes, float]] = []

    def client() -> None:
        conn = HTTPConnection(LOOPBACK, port, timeout=120)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    path = queue.pop()
                started = time.perf_counter()
                try:
                    conn.request("GET", path, headers={"Accept": "image/jpeg,*/*"})
                    resp = conn.getresponse()
                    body = resp.read()
                    status, ctype = resp.status, resp.getheader("Content-Type") or ""
                except OSError as error:
                    conn.close()
                    conn = HTTPConnection(LOOPBACK, port, timeout=120)
                    status, ctype, body = -1, "", str(error).encode()
                answers.append((path, status, ctype, body, time.perf_counter() - started))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    cpu0 = {g.name: g.cpu() for g in groups}
    with PeakRss(groups) as peak:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        wall = time.perf_counter() - started
        # Work a server does after its answers (Avenue's stores) is part of what a render
        # costs: counted once the group is quiet again (its idle CPU meanwhile counts too).
        quiet(groups, timeout=30)
    cpu = {g.name: (g.cpu() - cpu0[g.name]) * 1000 / max(1, len(paths)) for g in groups}
    for path, status, ctype, body, _ in answers:
        check.add(path.rsplit("/", 2)[-2] if "/media/" in path else path.rsplit("/", 1)[-1],
                  status, ctype, body, want)
    times = [a[4] * 1000 for a in answers]
    return Phase(len(answers), wall, percentile(times, 50), percentile(times, 99), cpu,
                 {k: v / 2**20 for k, v in peak.peak.items()}, sum(1 for a in answers if a[1] != 200), times)


def merged(phases: list[Phase]) -> Phase:
    """Rounds of one server's cold phase as one: every request over all their seconds, the
    latencies pooled, CPU per request over all of them, the highest peak."""
    requests = sum(p.requests for p in phases)
    times = [t for p in phases for t in p.times]
    cpu = {name: sum(p.cpu_ms[name] * p.requests for p in phases) / max(1, requests)
           for name in phases[0].cpu_ms}
    peak = {name: max(p.peak_mb[name] for p in phases) for name in phases[0].peak_mb}
    return Phase(requests, sum(p.seconds for p in phases), percentile(times, 50), percentile(times, 99), cpu,
                 peak, sum(p.errors for p in phases), times)


def warm(port: int, paths: list[str], groups: list[Group], seconds: float) -> Phase:
    """``wrk -t2 -c16`` walking ``paths`` for ``seconds``."""
    script = WORK / f"paths-{port}.lua"
    listed = ",\n".join(f'  "{p}"' for p in paths)
    script.write_text(f"local paths = {{\n{listed}\n}}\nlocal i = math.random(#paths)\n"
                      "request = function()\n  i = i % #paths + 1\n"
                      '  return wrk.format("GET", paths[i], {["Accept"] = "image/jpeg,*/*"})\nend\n')
    cpu0 = {g.name: g.cpu() for g in groups}
    with PeakRss(groups) as peak:
        result = wrk(port, "/", seconds=seconds, connections=WARM_CONNECTIONS,
                     headers=None, script=script)
    cpu = {g.name: (g.cpu() - cpu0[g.name]) * 1000 / max(1, result.requests) for g in groups}
    return Phase(result.requests, result.requests / result.rps if result.rps else 0.0,
                 result.latency_p50_ms, result.latency_p99_ms, cpu,
                 {k: v / 2**20 for k, v in peak.peak.items()}, result.errors + result.non_2xx_3xx)


# --------------------------------------------------------------------------------------
# The servers


class Server:
    """One server under test: started, its paths for a set of photos, stopped."""

    name = ""
    label = ""
    groups: list[Group]

    def start(self) -> None: ...

    def paths(self, workload: str, files: list[Path]) -> list[str]:
        raise NotImplementedError

    def stop(self) -> None: ...

    port = 0

    def before_cold(self) -> None: ...

    def recold(self, paths: list[str]) -> None:
        """Make ``paths`` cold again for another round (the peers keep nothing: nothing to do)."""

    def after_cold(self, paths: list[str]) -> str:
        """What the server says about the cold phase (Avenue: its renders counted)."""
        return ""


class Avenue(Server):
    name, label = "avenue", "Avenue"

    def __init__(self, folder: Path, code: Path = ROOT, name: str = "avenue", *,
                 replica_set: bool = False) -> None:
        self.folder, self.code, self.name, self.replica_set = folder, code, name, replica_set
        self.database: EmbeddedServer | None = None
        self.server: Gunicorn | MakeRun | None = None
        self.master: int | None = None
        self.uri, self.db = "", DB
        self.headers: dict[str, str] = {}
        self._renders = 0.0

    def start(self) -> None:
        env = {
            "AVENUE_METRICS_ALLOW": "127.0.0.1/32",
            "AVENUE_RENDITION_PRESETS": f"{PRESET}=w_{BOX},h_{BOX},q_{QUALITY}",
            # One client address asks for every cold rendition here: the limits stay on, with the
            # defaults' windows (a minute and an hour per address, a minute per instance: three
            # counters hit per cold render), but do not refuse the run.
            "AVENUE_RENDER_ADDRESS_LIMIT": "100000/minute;1000000/hour",
            "AVENUE_RENDER_INSTANCE_LIMIT": "100000/minute",
            "AVENUE_UPLOAD_RATE_LIMIT": "100000/minute",
        }
        if self.replica_set:
            self._start_on_a_replica_set(env)
        else:
            self._start_make_run(env)
        assert self.server is not None
        self.port = self.server.port
        self.headers = tokens.issue_on(self.uri, self.db)

    def _start_make_run(self, env: dict[str, str]) -> None:
        """``make run``'s own entry point (``python -m avenue.devserver``): the embedded default
        as a shop runs it, a standalone SecantusDB under its supervisor, every process reaching it
        through make run's one-connection relay (avenue/embedded/relay.py), and gunicorn's 2 workers. The
        database's group is the server and make run's process (the relay's threads), counted
        without its children (gunicorn, the app's group)."""
        log = WORK / f"make-run-{self.name}.log"
        log.unlink(missing_ok=True)
        run = self.server = MakeRun(self.folder / self.name / "data", log, root=self.code,
                                    extra_env={**env, "WEB_CONCURRENCY": "2"}).start(timeout=180)
        assert run.process is not None
        devserver = psutil.Process(run.process.pid)
        master = next(child.pid for child in devserver.children() if "gunicorn" in " ".join(child.cmdline()))
        db_pid = run.database_pid()
        self.master, self.uri, self.db = master, run.mongo_uri, run.db_name
        self.groups = [Group(f"{self.name} app", lambda: [master]),
                       Group(f"{self.name} db", lambda: [db_pid], alone=lambda: [devserver.pid])]

    def _start_on_a_replica_set(self, env: dict[str, str]) -> None:
        """``--replica-set``: gunicorn on a replica-set SecantusDB of its own, no relay, as the
        other benchmarks start it (and this one did before 2026-11-27)."""
        self.database = EmbeddedServer(self.folder / self.name / "db",
                                       log_path=WORK / f"secantusd-{self.name}.log").start()
        log = WORK / f"gunicorn-{self.name}.log"
        log.unlink(missing_ok=True)
        gunicorn = self.server = Gunicorn(self.database.uri, DB, log, workers=2, root=self.code,
                                          extra_env=env).start()
        db_pid = self.database.pid
        assert gunicorn.process is not None and db_pid is not None
        master = self.master = gunicorn.process.pid
        self.uri = self.database.uri
        self.groups = [Group(f"{self.name} app", lambda: [master]),
                       Group(f"{self.name} db", lambda: [db_pid])]

    def workers(self) -> list[int]:
        """gunicorn's worker processes."""
        assert self.master is not None
        return [child.pid for child in psutil.Process(self.master).children()]

    def paths(self, workload: str, files: list[Path]) -> list[str]:
        found = []
        assert self.server is not None
        for path in files:
            # A comment with the run's time: every run's uploads are new images (cold keys).
            body = data.with_comment(path.read_bytes(), f"peers {workload} {path.name} {time.time()}")
            status, image = self.server.upload(self.headers, body, path.name, timeout=180)
            if status != 201 or "url" not in image:
                raise BenchError(f"upload of {path.name}: HTTP {status} {image}")
            found.append(image["url"].rsplit(".", 1)[0] + f"/{PRESET}.jpg")
            # Its variants are rendered after the answer, at low priority: a GET of one waits for
            # them (or renders them), so none is left to run beside the cold phase.
            variant = next(iter(image["variant_urls"]["card"].values()))
            status, _ = self.server.request("GET", variant[variant.index("/media/"):], timeout=180)
            if status != 200:
                raise BenchError(f"{path.name}'s card variant: HTTP {status}")
        return found

    def renders(self) -> float:
        reply = request("GET", self.port, "/metrics", timeout=30)
        if reply.status != 200:
            raise BenchError(f"/metrics: HTTP {reply.status}")
        return sum(s.value for family in text_string_to_metric_families(reply.body.decode())
                   for s in family.samples if s.name == RENDERS)

    def before_cold(self) -> None:
        self._renders = self.renders()

    def recold(self, paths: list[str]) -> None:
        """Remove the renditions of ``paths`` as the app removes an image's (files documents,
        chunks, a tombstone every worker's cache polls), then wait for the workers' caches:
        the next round renders every one again (its render counter says so)."""
        from avenue.media.buckets import BUCKETS
        from avenue.media.core import NO_PURGES
        from avenue.media.store import renditions
        from bson import ObjectId

        with pymongo.MongoClient(self.uri) as client:
            for path in paths:
                alias, token = path.split("/")[2:4]
                renditions.remove_for(client[self.db], BUCKETS[alias], ObjectId(token.split("~")[0]),
                                      purges=NO_PURGES)  # the peers' runs have no CDN
        time.sleep(2.0)  # the workers poll the tombstones at least once a second

    def after_cold(self, paths: list[str]) -> str:
        made = self.renders() - self._renders
        return f"{made:.0f} renders counted for {len(paths)} cold URLs" + (
            "" if made == len(paths) else " (**not one each**)")

    def stop(self) -> None:
        if isinstance(self.server, MakeRun):
            self.server.stop()  # Ctrl-C: gunicorn, then the database
        elif self.server is not None:
            self.server.stop(grace=15)
        if self.database is not None:
            self.database.stop()


class Thumbor(Server):
    name, label = "thumbor", f"thumbor {THUMBOR}"

    def __init__(self, procs: Procs, script: Path, root: Path) -> None:
        self.procs, self.script, self.root = procs, script, root
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        conf = WORK / "thumbor.conf"
        conf.write_text("\n".join([
            "LOADER = 'thumbor.loaders.file_loader'", f"FILE_LOADER_ROOT_PATH = {str(self.root)!r}",
            "STORAGE = 'thumbor.storages.no_storage'", "RESULT_STORAGE = None", "ALLOW_UNSAFE_URL = True",
            f"QUALITY = {QUALITY}", "SECURITY_KEY = 'bench'", "ENGINE = 'thumbor.engines.pil'", ""]))
        self.port = free_port()
        self.proc = self.procs.start("thumbor", [str(self.script), "-p", str(self.port), "-i", LOOPBACK,
                                                 "-c", str(conf), "-l", "warning", "--processes", "2"])
        wait_http(self.port, "/healthcheck", self.proc, 60, "thumbor")
        proc = self.proc
        self.groups = [Group("thumbor", lambda: [proc.pid])]

    def paths(self, workload: str, files: list[Path]) -> list[str]:
        return [f"/unsafe/fit-in/{BOX}x{BOX}/filters:quality({QUALITY}):format(jpeg)/{workload}/{p.name}"
                for p in files]

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.stop(self.proc)


class Ipx(Server):
    name, label = "ipx", f"ipx {IPX}"

    def __init__(self, procs: Procs, script: Path, root: Path) -> None:
        self.procs, self.script, self.root = procs, script, root
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.port = free_port()
        self.proc = self.procs.start("ipx", ["node", str(self.script), "serve", "--dir", str(self.root),
                                             "--port", str(self.port), "--host", LOOPBACK],
                                     env={**os.environ, "NODE_ENV": "production"})
        wait_http(self.port, "/_/12mp/warmup.jpg", self.proc, 60, "ipx")
        proc = self.proc
        self.groups = [Group("ipx", lambda: [proc.pid])]

    def paths(self, workload: str, files: list[Path]) -> list[str]:
        return [f"/s_{BOX}x{BOX},fit_inside,q_{QUALITY},f_jpeg/{workload}/{p.name}" for p in files]

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.stop(self.proc)


# --------------------------------------------------------------------------------------
# Profile


class Profile:
    """py-spy on each of Avenue's workers while in the ``with`` (all threads, idle ones left out)."""

    def __init__(self, procs: Procs, pids: list[int], name: str, gil: bool = False) -> None:
        self.procs, self.pids, self.name, self.gil = procs, pids, name, gil
        self.raw = [WORK / "profiles" / f"{name}-{pid}.txt" for pid in pids]
        self.spies: list[subprocess.Popen] = []

    def __enter__(self) -> Profile:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        (WORK / "profiles").mkdir(parents=True, exist_ok=True)
        for pid, raw in zip(self.pids, self.raw, strict=True):
            raw.unlink(missing_ok=True)
            argv = [spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                    "--output", str(raw), "--nonblocking", "--threads", *(["--gil"] if self.gil else [])]
            self.spies.append(self.procs.start(f"py-spy-{pid}", argv))
        time.sleep(1.0)  # attached
        return self

    def __exit__(self, *exc: object) -> None:
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        for spy in self.spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                pass
            self.procs.stop(spy)


def busy_only(raw: list[Path]) -> list[Path]:
    """The raw stacks without idle threads (waiting in a lock, a select, a sleep or a socket
    accept): what the cold renders cost, not what waited for them."""
    idle = ("wait (threading.py", "select (selectors.py", "sleep", "_wait_for_tstate_lock", "accept (",
            "poll (selectors.py", "get (queue.py", "_worker (concurrent/futures/thread.py")
    kept = []
    for path in raw:
        if not path.exists():
            continue
        out = path.with_suffix(".busy.txt")
        lines = [line for line in path.read_text(errors="replace").splitlines()
                 if not any(mark in line.rpartition(" ")[0].rsplit(";", 1)[-1] for mark in idle)]
        out.write_text("\n".join(lines) + "\n")
        kept.append(out)
    return kept


# --------------------------------------------------------------------------------------
# The run


@dataclass
class Result:
    server: str
    workload: str
    cold: Phase
    warm: Phase | None
    check: Check
    note: str = ""
    rounds: list[float] = field(default_factory=list)  # cold req/s of each round
    round_cpu: list[dict[str, float]] = field(default_factory=list)  # each round's CPU ms a request, by group


def measure(server: Server, workload: str, files: list[Path], warm_seconds: float,
            procs: Procs, profile: list[str] | None, gil: bool = False) -> Result:
    """One server, one workload: the paths made (Avenue: uploads), warmed up on another photo,
    then cold and warm."""
    width, height, _, _ = WORKLOADS[workload]
    warmup, measured = files[-1:], files[:-1]
    say(f"{server.name} {workload}: {len(measured)} photos")
    first = server.paths(workload, warmup)
    for _ in range(4):  # libraries loaded, every worker or process once at least
        reply = request("GET", server.port, first[0], timeout=120)
        if reply.status != 200:
            raise BenchError(f"{server.name} warm-up {first[0]}: HTTP {reply.status} {reply.body[:200]!r}")
    paths = server.paths(workload, measured)
    waited = quiet(server.groups)
    check = Check()
    server.before_cold()
    foreign = ForeignLoad()
    foreign.start()
    if profile is not None and isinstance(server, Avenue):
        with Profile(procs, server.workers(), f"{server.name.split()[0]}-{workload}", gil) as spy:
            phase = cold(server.port, paths, server.groups, fitted(width, height), check)
        summary = profiles.summarize(busy_only(spy.raw), top=25)
        profile += [f"## {server.name}, {workload}: {len(paths)} cold renders, "
                    f"{phase.rps:.1f} req/s under py-spy", "", *summary, ""]
    else:
        phase = cold(server.port, paths, server.groups, fitted(width, height), check)
    share = foreign.percent()
    note = "; ".join(part for part in (server.after_cold(paths), f"other processes {share:.0f} % of the CPU"
                                       if share is not None else "") if part)
    say(f"{server.name} {workload} cold: {phase.rps:.1f} req/s, p50 {phase.p50:.0f} ms, "
        f"p99 {phase.p99:.0f} ms, "
        f"CPU {', '.join(f'{k} {v:.1f}' for k, v in phase.cpu_ms.items())} ms/req; {check.summary()}"
        + (f"; {note}" if note else "") + f" (waited {waited:.1f} s for quiet)")
    hot = None
    if warm_seconds > 0:
        hot = warm(server.port, paths, server.groups, warm_seconds)
        say(f"{server.name} {workload} warm: {hot.rps:,.1f} req/s, p50 {hot.p50} ms, p99 {hot.p99} ms, "
            f"{hot.errors} errors")
    return Result(server.name, workload, phase, hot, check, note)


def interleaved(servers: list[Server], workload: str, files: list[Path], rounds: int,
                warm_seconds: float) -> list[Result]:
    """Every server (all started) on one workload, their cold phases taken in turn for
    ``rounds`` rounds, the order turned by one each round (whatever else the machine runs then
    falls on each about alike); Avenue's renditions removed between rounds so that every
    round is cold (counted). Then one warm phase each."""
    width, height, _, _ = WORKLOADS[workload]
    groups = [g for server in servers for g in server.groups]
    paths = {}
    for server in servers:
        say(f"{server.name} {workload}: {len(files) - 1} photos")
        first = server.paths(workload, files[-1:])
        for _ in range(4):  # libraries loaded, every worker or process once at least
            reply = request("GET", server.port, first[0], timeout=120)
            if reply.status != 200:
                raise BenchError(f"{server.name} warm-up: HTTP {reply.status} {reply.body[:200]!r}")
        paths[server.name] = server.paths(workload, files[:-1])
    phases: dict[str, list[Phase]] = {server.name: [] for server in servers}
    notes: dict[str, list[str]] = {server.name: [] for server in servers}
    checks = {server.name: Check() for server in servers}
    for n in range(rounds):
        for server in servers[n % len(servers):] + servers[:n % len(servers)]:
            if n:
                server.recold(paths[server.name])
            quiet(groups)
            server.before_cold()
            foreign = ForeignLoad()
            foreign.start()
            phase = cold(server.port, paths[server.name], server.groups, fitted(width, height),
                         checks[server.name])
            share = foreign.percent()
            notes[server.name].append(server.after_cold(paths[server.name]) +
                                      (f" (others {share:.0f} % of the CPU)" if share is not None else ""))
            phases[server.name].append(phase)
            say(f"round {n + 1}, {server.name} {workload} cold: {phase.rps:.1f} req/s, "
                f"p50 {phase.p50:.0f} ms, CPU {sum(phase.cpu_ms.values()):.1f} ms/req; "
                f"{notes[server.name][-1]}")
    results = []
    for server in servers:
        hot = None
        if warm_seconds > 0:
            quiet(groups)
            hot = warm(server.port, paths[server.name], server.groups, warm_seconds)
            say(f"{server.name} {workload} warm: {hot.rps:,.1f} req/s, {hot.errors} errors")
        mine = phases[server.name]
        note = "; ".join(f"round {i + 1}: {text}" for i, text in enumerate(notes[server.name]) if text)
        results.append(Result(server.name, workload, merged(mine), hot, checks[server.name], note,
                              [p.rps for p in mine], [p.cpu_ms for p in mine]))
    return results


def image_work(files: list[Path]) -> float:
    """CPU ms per photo of Avenue's render alone (:func:`avenue.media.ingest.render.render_spec`:
    the decode at the scale needed, the resize, the JPEG encode), in this process, one photo at
    a time: no HTTP, no database, no claim. The floor under Avenue's cold render whatever its
    serving costs: the verdicts compare a target's CPU budget per render with it."""
    from avenue.media.ingest.focal import CENTRE
    from avenue.media.ingest.images import Limits
    from avenue.media.ingest.render import render_spec
    from avenue.media.transform import Spec

    spec = Spec(width=BOX, height=BOX, quality=QUALITY)
    bodies = [path.read_bytes() for path in files]
    render_spec(bodies[-1], Limits.for_stored(len(bodies[-1])), spec, "jpeg", CENTRE)  # libraries loaded
    started = time.process_time()
    for body in bodies[:-1]:
        render_spec(body, Limits.for_stored(len(body)), spec, "jpeg", CENTRE)
    return (time.process_time() - started) * 1000 / max(1, len(bodies) - 1)


def app_cpu(cpu_ms: dict[str, float]) -> float | None:
    """Avenue's app group's share of a phase's CPU ms per request (its database's left out)."""
    return next((v for k, v in cpu_ms.items() if k.endswith(" app")), None)


def round_ratios(avenue: Result, ipx: Result) -> list[float]:
    """Avenue's app CPU per cold render over ipx's whole request's, round by round (empty
    for a run of one round)."""
    if len(avenue.round_cpu) < 2:
        return []
    pairs = ((app_cpu(mine), sum(theirs.values())) for mine, theirs in zip(avenue.round_cpu, ipx.round_cpu,
                                                                           strict=True))
    return [app / total for app, total in pairs if app is not None and total > 0]


def cpu_cell(phase: Phase) -> str:
    total = sum(phase.cpu_ms.values())
    if len(phase.cpu_ms) > 1:
        return f"{total:.1f} ({' + '.join(f'{v:.1f}' for v in phase.cpu_ms.values())})"
    return f"{total:.1f}"


def report(results: list[Result], *, args: argparse.Namespace, started: str, peers: str,
           loads: list[tuple[float, ...]], aborted: str | None,
           floors: dict[str, float] | None = None) -> str:
    command = "python bench/peers.py " + " ".join(sys.argv[1:])
    database = "a replica-set SecantusDB" if args.replica_set else "make run's SecantusDB and relay"
    lines = [f"# Renditions on request against thumbor and ipx, {started[:10]}", "",
             f"`{command.strip()}`, started {started}, on {os.cpu_count()} cores; load average "
             f"{' / '.join(f'{x:.2f}' for x in loads[0])} at the start, "
             f"{' / '.join(f'{x:.2f}' for x in loads[-1])} at the end. {peers + '. ' if peers else ''}"
             "Each photo fitted into "
             f"{BOX}x{BOX} as JPEG q{QUALITY}; cold: every URL once, {CLIENTS} clients; warm: the same URLs "
             f"with wrk -t2 -c{WARM_CONNECTIONS}. CPU is ms per request of each server's processes "
             f"(Avenue: app + database, {database}); RSS the group's peak.", ""]
    if aborted:
        lines += [f"**Stopped early** ({aborted}): partial results.", ""]
    by = {(r.server, r.workload): r for r in results}
    for workload in WORKLOADS:
        rows = [r for r in results if r.workload == workload]
        if not rows:
            continue
        width, height, _, _ = WORKLOADS[workload]
        photos = rows[0].cold.requests // max(1, len(rows[0].rounds))
        rounds = f", {len(rows[0].rounds)} rounds" if len(rows[0].rounds) > 1 else ""
        lines += [f"## {width}x{height} ({photos} photos{rounds})", "",
                  "| server | cold req/s | cold p50 / p99 ms | CPU ms per cold request | warm req/s | "
                  "warm p50 / p99 ms | CPU ms per warm request | peak RSS MB (cold, warm) | outputs |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for r in rows:
            w = r.warm
            peak_cold = sum(r.cold.peak_mb.values())
            peak_warm = f"{sum(w.peak_mb.values()):,.0f}" if w else "—"
            warm_cells = "— | — | —"
            if w is not None and w.p50 is not None and w.p99 is not None:
                warm_cells = f"{w.rps:,.1f} | {w.p50:.1f} / {w.p99:.1f} | {cpu_cell(w)}"
            lines.append(f"| {r.server} | {r.cold.rps:.1f} | {r.cold.p50:.0f} / {r.cold.p99:.0f} | "
                         f"{cpu_cell(r.cold)} | {warm_cells} | {peak_cold:,.0f}, {peak_warm} | "
                         f"{r.check.summary()}{'; ' + r.note if r.note else ''} |")
        lines.append("")
        before = next((r for r in rows if r.server.startswith("before")), None)
        avenue = by.get(("avenue", workload))
        if avenue is None:
            continue
        verdicts = []
        by_round = {r.server: r.rounds for r in rows if len(r.rounds) > 1}
        if by_round:
            verdicts.append("cold req/s by round: " + "; ".join(
                f"{name} {', '.join(f'{x:.1f}' for x in rps)}" for name, rps in by_round.items()))
            for peer in ("thumbor", "ipx"):
                if peer in by_round and "avenue" in by_round:
                    ratios = [a / b for a, b in zip(by_round["avenue"], by_round[peer], strict=True)]
                    verdicts.append(f"Avenue ÷ {peer} by round: {', '.join(f'{x:.2f}x' for x in ratios)}")
        if before is not None:
            cpu = sum(avenue.cold.cpu_ms.values()) / sum(before.cold.cpu_ms.values())
            speed = avenue.cold.rps / before.cold.rps
            verdicts.append(f"this code ÷ {before.server}, cold: **{speed:.2f}x** req/s, "
                            f"CPU per cold request {cpu:.2f}x")
        for peer, target in (("thumbor", 1.5), ("ipx", 1.0)):
            other = by.get((peer, workload))
            if other is not None and other.cold.rps:
                ratio = avenue.cold.rps / other.cold.rps
                met = "met" if ratio >= target else "**missed**"
                verdicts.append(f"cold, Avenue ÷ {peer}: **{ratio:.2f}x** (target at least {target}x: {met})")
        peers_cold = [by[(p, workload)].cold.rps for p in ("thumbor", "ipx") if (p, workload) in by]
        if peers_cold and avenue.warm is not None:
            ratio = avenue.warm.rps / max(peers_cold)
            met = "met" if ratio >= 10 else "**missed**"
            verdicts.append(f"warm Avenue ÷ the best peer's cold: **{ratio:.1f}x** "
                            f"(target at least 10x: {met})")
        ipx = by.get(("ipx", workload))
        app = app_cpu(avenue.cold.cpu_ms)
        if ipx is not None:
            mine, theirs = sum(avenue.cold.cpu_ms.values()), sum(ipx.cold.cpu_ms.values())
            met = "met" if mine <= theirs else "**missed**"
            verdicts.append(f"CPU per cold render, Avenue (app + database) ÷ ipx: **{mine / theirs:.2f}x** "
                            f"({mine:.1f} against {theirs:.1f} ms; target at most 1x: {met})")
            if app is not None:
                # What a real MongoDB would leave: the app's own share (mongod's CPU for the
                # same commands is not measured here; docs/performance.md reasons about it).
                verdicts.append(f"CPU per cold render, Avenue's app alone (no database) ÷ ipx: "
                                f"**{app / theirs:.2f}x** ({app:.1f} against {theirs:.1f} ms)")
                paired = round_ratios(avenue, ipx)
                if paired:
                    # Rounds pair Avenue's cold phase with ipx's taken minutes apart, so what the
                    # machine does then falls on both: the spread says what one run's ratio is worth.
                    spread = f"median {statistics.median(paired):.2f}x, {min(paired):.2f}-{max(paired):.2f}x"
                    verdicts.append("Avenue's app alone ÷ ipx, CPU per cold render by round: "
                                    f"{', '.join(f'{x:.2f}x' for x in paired)} ({spread})")
        floor = (floors or {}).get(workload)
        if floor is not None:
            cores = os.cpu_count() or 1
            line = (f"Avenue's image work alone (decode at scale, resize, encode; in one process, no HTTP, "
                    f"no database): **{floor:.1f} ms** CPU per photo")
            if app is not None:
                line += (f"; the app's cold render spends {app - floor:.1f} ms more "
                         "(serving, claim, reads, store)")
            thumbor = by.get(("thumbor", workload))
            if thumbor is not None and thumbor.cold.rps:
                budget = cores * 1000 / (1.5 * thumbor.cold.rps)
                line += (f". At 1.5x thumbor's req/s on {cores} cores a render may cost at most "
                         f"{budget:.1f} ms of CPU in all: {'more' if budget > floor else '**less**'} than "
                         f"the image work alone")
            verdicts.append(line)
        lines += [f"- {v}" for v in verdicts] + [""]
    return "\n".join(lines)


def output_path(started: str) -> Path:
    """``bench/results/peers-<date>.md``, or ``-2``, ``-3``, ... : never one that exists."""
    stem = f"peers-{started[:10]}"
    path = RESULTS / f"{stem}.md"
    n = 2
    while path.exists():
        path = RESULTS / f"{stem}-{n}.md"
        n += 1
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 + 3 photos, 1 s wrk: about a minute")
    parser.add_argument("--only", default=",".join(SERVERS), help="a subset of: avenue, thumbor, ipx")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="a subset of: 2040, 12mp")
    parser.add_argument("--photos", type=int,
                        help="photos per workload (default 60 and 20; --quick 12 and 3)")
    parser.add_argument("--warm-seconds", type=float,
                        help="wrk seconds per warm phase (10; --quick 1; 0: none)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy Avenue's workers during the cold phase")
    parser.add_argument("--gil", action="store_true",
                        help="with --profile: only the thread holding the GIL (Python's own CPU)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with more than 1: every server started at once, their cold phases in turn, "
                             "this many rounds (Avenue's renditions removed between them)")
    parser.add_argument("--before", metavar="REF",
                        help="also measure Avenue at this git ref (a copy by git archive), first")
    parser.add_argument("--replica-set", action="store_true",
                        help="Avenue on a replica-set SecantusDB of its own without make run's relay, as the "
                             "other benchmarks start it (default: make run's embedded database)")
    parser.add_argument("--out", action="store_true", help="write bench/results/peers-<date>[-N].md")
    args = parser.parse_args()
    only = [s for s in SERVERS if s in args.only.split(",")]
    workloads = [w for w in WORKLOADS if w in args.workloads.split(",")]
    warm_seconds = args.warm_seconds if args.warm_seconds is not None else (1.0 if args.quick else 10.0)

    stop_after(900 if args.quick else 2400)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = [os.getloadavg()]
    procs = Procs(WORK)
    folder = Path(tempfile.mkdtemp(prefix="avenue-peers-"))
    results: list[Result] = []
    profile: list[str] | None = [] if args.profile else None
    aborted = None
    peers = ""
    floors: dict[str, float] = {}
    try:
        thumbor = install_thumbor() if "thumbor" in only else None
        ipx = install_ipx() if "ipx" in only else None
        if ipx:
            peers = versions(ipx)
        sets = {}
        for workload in workloads:
            full, quick = WORKLOADS[workload][2:]
            sets[workload] = photos(workload, args.photos or (quick if args.quick else full))
        floors = {w: image_work(files) for w, files in sets.items()} if "avenue" in only else {}
        for workload, floor in floors.items():
            say(f"avenue {workload}: the image work alone {floor:.1f} ms CPU per photo")
        root = WORK / "images"
        photos("12mp", 0)  # ipx's readiness probe asks for this one
        servers: dict[str, Server] = {"avenue": Avenue(folder, replica_set=args.replica_set),
                                      "thumbor": Thumbor(procs, thumbor or Path(), root),
                                      "ipx": Ipx(procs, ipx or Path(), root)}
        if args.before:
            code = folder / "before-code"
            code.mkdir()
            archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True,
                                     check=True, timeout=120).stdout
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True, timeout=120)
            sha = run(["git", "rev-parse", "--short", args.before], timeout=30, cwd=ROOT).stdout.strip()
            servers["before"] = Avenue(folder, code, name=f"before ({args.before} {sha})",
                                       replica_set=args.replica_set)
            only.insert(0, "before")
        if args.rounds > 1:
            running = []
            try:
                for name in only:
                    servers[name].start()
                    running.append(servers[name])
                for workload in workloads:
                    results += interleaved(running, workload, sets[workload], args.rounds, warm_seconds)
            finally:
                for server in running:
                    server.stop()
        for name in only if args.rounds <= 1 else ():
            server = servers[name]
            server.start()
            try:
                for workload in workloads:
                    results.append(measure(server, workload, sets[workload], warm_seconds, procs, profile,
                                           args.gil))
            finally:
                server.stop()
    except (KeyboardInterrupt, BenchError, RuntimeError) as exc:
        aborted = f"{type(exc).__name__}: {exc}"
        say(f"stopped: {aborted}")
    finally:
        signal.alarm(0)
        procs.stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    loads.append(os.getloadavg())
    text = report(results, args=args, started=started, peers=peers, loads=loads, aborted=aborted,
                  floors=floors)
    print("\n" + text)
    if args.out and not aborted:
        RESULTS.mkdir(exist_ok=True)
        target = output_path(started)
        target.write_text(text)
        say(f"written to {target.relative_to(ROOT)}")
    if profile:
        target = RESULTS / f"peers-profile-{started[:10]}.md"
        n = 2
        while target.exists():
            target = RESULTS / f"peers-profile-{started[:10]}-{n}.md"
            n += 1
        threads = "only the thread holding the GIL" if args.gil else "all threads"
        target.write_text(f"# py-spy of Avenue's workers during the cold phase, {started}\n\n"
                          f"`{'python bench/peers.py ' + ' '.join(sys.argv[1:])}`; {threads}, idle stacks "
                          "(waiting on a lock, a select, a sleep, a queue) left out; raw stacks in "
                          "`bench/work/peers/profiles/`.\n\n" + "\n".join(profile))
        say(f"profile written to {target.relative_to(ROOT)}")
    return 1 if aborted else 0


if __name__ == "__main__":
    sys.exit(main())
