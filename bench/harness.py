"""Process, port, HTTP and load-generator plumbing shared by every benchmark section.

Every process the suite starts goes through ``Procs``: it runs in its own session (process
group), is remembered by PID, and is stopped by PID (SIGTERM to its group, then SIGKILL) in a
``finally`` block and again at interpreter exit.  Traffic only ever goes to 127.0.0.1.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"


class BenchError(RuntimeError):
    """A section could not run; the message says why."""


# --------------------------------------------------------------------------------------
# Processes


class Procs:
    """Start processes in their own process group and stop every one of them by PID."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    def start(self, name: str, argv: list[str], *, env: dict | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )
        proc._bench_log = log  # type: ignore[attr-defined]
        with self._lock:
            self._procs.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        """SIGTERM the process group of ``proc``; SIGKILL it if it is still there after ``timeout``."""
        with self._lock:
            self._procs = [(n, p) for n, p in self._procs if p is not proc]
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Stragglers in the group (e.g. a worker that ignored the master's TERM).
        _signal_group(proc.pid, signal.SIGKILL)
        log = getattr(proc, "_bench_log", None)
        if log is not None:
            log.close()

    def stop_all(self) -> None:
        with self._lock:
            procs = list(reversed(self._procs))
        for _, proc in procs:
            try:
                self.stop(proc)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"warning: could not stop pid {proc.pid}: {exc}", file=sys.stderr)


def stop_after(limit: int) -> None:
    """Make SIGTERM, and an alarm ``limit`` seconds from now, interrupt the run like Ctrl-C
    (its ``finally`` then stops every process it started); ``signal.alarm(0)`` there cancels it."""

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}" if signum != signal.SIGALRM else f"over {limit} s")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, interrupted)
    signal.alarm(limit)


def _signal_group(pid: int, sig: int) -> None:
    # start_new_session=True made the child the leader of a group whose id is its PID.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run(argv: list[str], *, timeout: float, env: dict | None = None, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a short command to completion with a hard timeout (its whole group is killed)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BenchError(f"{' '.join(argv[:3])} … timed out after {timeout:.0f} s") from None
    except BaseException:  # Ctrl-C, SIGTERM, the overall time limit: leave nothing behind
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        raise
    result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        tail = (err or out).strip().splitlines()[-5:]
        raise BenchError(f"{' '.join(argv[:4])} exited {proc.returncode}: {' | '.join(tail)}")
    return result


# --------------------------------------------------------------------------------------
# Ports and readiness


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {port} within {timeout:.0f} s")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def request(method: str, port: int, path: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30.0) -> Reply:
    """One request to 127.0.0.1:port; header names come back lower-cased."""
    conn = HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float, what: str) -> Reply:
    """Wait until ``path`` answers anything below 500."""
    wait_port(port, proc, timeout, what)
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}")
        try:
            reply = request("GET", port, path, timeout=5)
            if reply.status < 500:
                return reply
            last = f"HTTP {reply.status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise BenchError(f"{what} did not answer {path} within {timeout:.0f} s ({last})")


# --------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    rps: float
    mb_per_s: float
    requests: int
    errors: int
    non_2xx_3xx: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    raw: str = field(repr=False, default="")

    @property
    def clean(self) -> bool:
        return self.errors == 0 and self.non_2xx_3xx == 0


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_SIZE = {"B": 1 / 1e6, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise BenchError(f"could not parse wrk output: {out.strip()[-300:]}")
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors = sum(int(g) for g in sock.groups())
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return WrkResult(
        rps=float(rps.group(1)),
        mb_per_s=float(transfer.group(1)) * _SIZE[transfer.group(2)] if transfer else 0.0,
        requests=int(total.group(1)) if total else 0,
        errors=errors,
        non_2xx_3xx=int(non.group(1)) if non else 0,
        latency_p50_ms=_ms(p50.group(1)) if p50 else None,
        latency_p99_ms=_ms(p99.group(1)) if p99 else None,
        raw=out,
    )


def wrk(port: int, path: str, *, seconds: float, threads: int = 2, connections: int = 16,
        headers: dict[str, str] | None = None, script: Path | None = None) -> WrkResult:
    """``wrk`` on ``path`` (``script``: a Lua script of wrk's that makes the requests instead)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--latency", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(f"http://{LOOPBACK}:{port}{path}")
    result = run(argv, timeout=seconds + 30)
    return parse_wrk(result.stdout)


# --------------------------------------------------------------------------------------
# Other work on the machine


def _tree_cpu_seconds() -> float:
    """CPU seconds used by this process, its reaped children and its live descendants."""
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            ct = child.cpu_times()
            total += ct.user + ct.system
        except psutil.NoSuchProcess:
            pass
    return total


class ForeignLoad:
    """How much of the machine's CPU other processes (not this run's) used over an interval."""

    def __init__(self) -> None:
        self._start: tuple[float, float, float] | None = None

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        t = psutil.cpu_times()
        busy = sum(getattr(t, f) for f in ("user", "nice", "system", "irq", "softirq", "steal")
                   if hasattr(t, f))
        return time.monotonic(), busy, _tree_cpu_seconds()

    def start(self) -> None:
        self._start = self._sample()

    def percent(self) -> float | None:
        """Other processes' CPU use since ``start`` as a % of all cores (0-100)."""
        if self._start is None:
            return None
        t1, busy1, ours1 = self._sample()
        t0, busy0, ours0 = self._start
        wall = (t1 - t0) * (os.cpu_count() or 1)
        if wall <= 0:
            return None
        # Descendants that exited and were reaped by a grandparent we no longer see can make
        # "ours" undercount a little, so this errs towards reporting load.
        return max(0.0, min(100.0, 100 * ((busy1 - busy0) - (ours1 - ours0)) / wall))


# --------------------------------------------------------------------------------------
# Reports of a batch way of storing photos against single uploads


def against_single_report(title: str, setup: str, column: str, short: str, *, single: tuple,
                          other: tuple, photos: int, extra_rows: tuple[str, ...] = (),
                          peak_label: str = "workers' extra RSS, peak") -> str:
    """The markdown report of ``title`` (the column ``column``, ``short`` in the ratio's name)
    against one single upload per photo: ``single`` and ``other`` are (wall seconds, the
    workers' extra RSS peak in MB, their RSS after the warm-up in MB, …). The targets: per
    photo at most 1.2x the single uploads' time, under 300 MB extra RSS. ``setup`` (the
    command and what ran) is followed by the load average; ``extra_rows`` go before the peak."""
    per_single, per_other = single[0] / photos * 1000, other[0] / photos * 1000
    ratio = per_other / per_single
    peak = max(single[1], other[1])
    load = os.getloadavg()
    return "\n".join([
        f"# {title} against single uploads — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{setup} Load average at the end {load[0]:.2f} on 2 cores shared with other work.",
        "",
        f"| measurement | single uploads | {column} | target |",
        "| --- | ---: | ---: | --- |",
        f"| wall time, all photos | {single[0]:.1f} s | {other[0]:.1f} s | |",
        f"| time per photo | {per_single:.0f} ms | {per_other:.0f} ms | |",
        f"| ratio {short} ÷ single, per photo | | **{ratio:.2f}x** | at most 1.2x: "
        f"{'met' if ratio <= 1.2 else 'NOT met'} |",
        f"| workers' RSS after the warm-up | {single[2]:.0f} MB | {other[2]:.0f} MB | |",
        *extra_rows,
        f"| {peak_label} | {single[1]:.0f} MB | {other[1]:.0f} MB | under 300 MB: "
        f"{'met' if peak < 300 else 'NOT met'} |",
        "",
    ])


# --------------------------------------------------------------------------------------
# Memory of gunicorn workers under concurrent large downloads


def worker_pids(master: subprocess.Popen) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(master.pid).children(recursive=False)]
    except psutil.NoSuchProcess:
        return []


def rss_total(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def folder_bytes(folder: Path) -> int:
    """Disk used under ``folder``, as ``du`` counts it (allocated blocks, not apparent sizes)."""
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
            except OSError:
                pass
    return total


def rss_mb(pids: list[int]) -> float:
    """``rss_total`` in MiB."""
    return rss_total(pids) / 2**20


@dataclass
class RssResult:
    before_mb: float
    peak_growth_mb: float
    after_growth_mb: float
    seconds: float
    ok_downloads: int
    clients: int
    detail: str = ""


def concurrent_downloads(port: int, path: str, *, clients: int, expect_bytes: int,
                         master: subprocess.Popen, timeout: float = 180.0) -> RssResult:
    """Run ``clients`` curl downloads of ``path`` at once and sample the workers' total RSS."""
    pids = worker_pids(master)
    if not pids:
        raise BenchError("no gunicorn worker processes found")
    before = rss_total(pids)
    peak = before
    url = f"http://{LOOPBACK}:{port}{path}"
    argv = ["curl", "-s", "-o", "/dev/null", "--max-time", str(int(timeout)),
            "-w", "%{http_code} %{size_download}", url]
    started = time.monotonic()
    curls = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, text=True, start_new_session=True)
             for _ in range(clients)]
    try:
        while any(c.poll() is None for c in curls):
            peak = max(peak, rss_total(pids))
            if time.monotonic() - started > timeout + 10:
                raise BenchError("concurrent downloads did not finish in time")
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        peak = max(peak, rss_total(pids))
    finally:
        for c in curls:
            if c.poll() is None:
                _signal_group(c.pid, signal.SIGKILL)
            c.wait(timeout=5)
    ok = 0
    details = []
    for c in curls:
        out = (c.stdout.read() if c.stdout else "").strip()
        if c.stdout:
            c.stdout.close()
        parts = out.split()
        if len(parts) == 2 and parts[0] == "200" and int(float(parts[1])) == expect_bytes:
            ok += 1
        else:
            details.append(out or f"curl exit {c.returncode}")
    time.sleep(0.5)  # let allocators hand back what they are going to hand back
    after = rss_total(pids)
    mb = 1024 * 1024
    return RssResult(before / mb, (peak - before) / mb, (after - before) / mb, elapsed, ok,
                     clients, "; ".join(sorted(set(details))[:3]))


def parallel_get(port: int, path: str, n: int) -> list[int]:
    """``n`` concurrent GETs (to warm every worker and thread); returns the status codes."""
    codes: list[int] = [0] * n

    def one(i: int) -> None:
        try:
            codes[i] = request("GET", port, path, timeout=60).status
        except OSError:
            codes[i] = -1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    return codes


def median_ms(fn, runs: int, *, warm: bool = True) -> float:
    """The median milliseconds of ``runs`` calls of ``fn`` (after one call to warm it)."""
    if warm:
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
