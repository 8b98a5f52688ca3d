#!/usr/bin/env python3
"""Hostile uploads: what four small files declaring huge canvases cost the workers' memory.

The Procfile's server (2 workers) on the embedded database; the least privileged role (ops)
sends four uploads at once to ``/api/uploads``, each a ~150 KB PNG declaring 6300x6300 pixels
(40 megapixels, inside ``AVENUE_MAX_PIXELS``). The workers' summed RSS is sampled every 20 ms;
the report gives the peak above idle and each request's status and time, for each setup in
one run, side by side:

- ``no budget``: this code with ``AVENUE_DECODE_BUDGET_BYTES`` far above any image;
- ``shipped``: the default budget (192 MB of decoded pixels per process);
- ``before`` (``--before REF``): the code of a git ref, e.g. the commit before the budget.

    python3 bench/hostile.py                    # shipped and no budget
    python3 bench/hostile.py --before HEAD~1    # and an earlier commit, from a temporary worktree

Target (issue 12): under 600 MB above idle for the two workers, every request answered
within 30 s.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avenue.embedded import EmbeddedServer  # noqa: E402
from PIL import Image  # noqa: E402
from tests.support import tokens  # noqa: E402
from tests.support.launcher import Gunicorn  # noqa: E402

DB = "avenue_hostile"
SIDE = 6300


def hostile_pngs(count: int, side: int = SIDE) -> list[bytes]:
    """Distinct small PNGs declaring side x side RGBA pixels (mostly one colour: tiny files)."""
    base = Image.new("RGBA", (side, side), (250, 250, 250, 255))
    files = []
    for index in range(count):
        base.putpixel((index, index), (index, 0, 0, 255))
        out = io.BytesIO()
        base.save(out, "PNG", compress_level=9)
        files.append(out.getvalue())
    return files


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def ops_token(uri: str) -> dict[str, str]:
    return tokens.issue_on(uri, DB, "ops")


def run(label: str, files: list[bytes], *, env: dict[str, str], root: Path) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="avenue-hostile-"))
    database = EmbeddedServer(folder / "db", log_path=folder / "db.log").start()
    server = Gunicorn(database.uri, DB, folder / "gunicorn.log", extra_env=env, root=root).start()
    try:
        headers = ops_token(database.uri)
        # Warm both workers (imports, first request) so idle means idle.
        for _ in range(8):
            server.request("GET", "/healthz")
        time.sleep(1)
        workers = server.workers()
        idle = rss_mb(workers)
        peak = idle
        results: list[tuple[int, float, str]] = []
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(workers))
                time.sleep(0.02)

        def send(data: bytes, index: int) -> None:
            started = time.perf_counter()
            status, body = server.upload(headers, data, f"hostile{index}.png", timeout=120)
            code = (body.get("error") or {}).get("code", "") if isinstance(body, dict) else ""
            results.append((status, time.perf_counter() - started, code))

        sampler = threading.Thread(target=sample)
        sampler.start()
        senders = [threading.Thread(target=send, args=(data, n)) for n, data in enumerate(files)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        done.set()
        sampler.join()
        return {"label": label, "idle_mb": round(idle, 1), "peak_above_idle_mb": round(peak - idle, 1),
                "results": sorted(results), "slowest_s": round(max(t for _, t, _ in results), 1)}
    finally:
        server.stop()
        database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--side", type=int, action="append",
                        help="canvas side in pixels (repeatable; default 6300, the issue's file, and 5000, "
                             "about the largest RGBA canvas the shipped budget decodes)")
    parser.add_argument("--before", metavar="REF", help="also run the code of this git ref")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for every setup's server (e.g. MALLOC_ARENA_MAX=2); repeatable")
    parser.add_argument("--only", choices=["shipped"], help="run the shipped setup alone")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    sides = args.side or [SIDE, 5000]
    setups: list[tuple[str, dict[str, str], Path]] = [
        ("no budget", {"AVENUE_DECODE_BUDGET_BYTES": str(100 * 2**30)}, ROOT),
        ("shipped", {}, ROOT),
    ]
    worktree = None
    if args.before:
        worktree = Path(tempfile.mkdtemp(prefix="avenue-before-"))
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=ROOT,
                       check=True, capture_output=True)
        setups.insert(0, (f"before ({args.before})", {}, worktree))
    try:
        if args.only:
            setups = [setup for setup in setups if setup[0] == args.only]
        rows = []
        for side in sides:
            files = hostile_pngs(args.uploads, side)
            for label, env, root in setups:
                row = run(label, files, env={**env, **extra}, root=root)
                rows.append({**row, "side": side, "kb": len(files[0]) // 1024})
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    print(f"# Hostile uploads: {args.uploads} small RGBA PNGs at once, ops role, 2 workers, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| canvas | setup | idle RSS (2 workers) | peak above idle | slowest answer | answers |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for row in rows:
        answers = ", ".join(f"{status}{' ' + code if code else ''} ({seconds:.1f} s)"
                            for status, seconds, code in row["results"])
        print(f"| {row['side']}x{row['side']} ({row['kb']} KB) | {row['label']} | {row['idle_mb']} MB | "
              f"**{row['peak_above_idle_mb']} MB** | {row['slowest_s']} s | {answers} |")
    for side in sides:
        group = [row for row in rows if row["side"] == side]
        shipped = next((row for row in group if row["label"] == "shipped"), None)
        if shipped is None or len(group) < 2:
            continue
        baseline = group[0]
        ratio = shipped["peak_above_idle_mb"] / max(baseline["peak_above_idle_mb"], 1)
        print(f"\n{side}x{side}: shipped ÷ {baseline['label']} = {ratio:.2f}x of the peak")
    print("\ntarget: under 600 MB above idle for the two workers, every answer within 30 s")


if __name__ == "__main__":
    main()
