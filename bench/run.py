#!/usr/bin/env python3
"""Avenue media benchmark: the app against nginx, Flask from disk, Flask-PyMongo and a naive read.

    python3 bench/run.py            # quick mode (default), under 3 minutes
    python3 bench/run.py --full     # longer wrk runs, ingest up to 1 GB

Sets up what it needs (nginx, wrk and curl from apt; the project venv with the app's and the
bench's requirements), starts SecantusDB on free loopback ports, makes deterministic images,
measures, prints one table and writes it to bench/results/latest.md.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = ROOT / ".venv"
VENV_BIN = VENV / "bin"
VENV_PY = VENV_BIN / "python"
RESULTS = BENCH / "results"
WORK = BENCH / "work"  # git-ignored: data, databases, logs
APT_TOOLS = {"nginx": "nginx", "wrk": "wrk", "curl": "curl"}  # binary -> Debian package

MODES = {
    "quick": {"wrk_seconds": 3, "pillow_repeat": 3, "upload_repeat": 3, "ingest_app": 100,
              "ingest_stock": 100, "ingest_budget_s": 75, "status_products": 2_000,
              "status_per_product": 5, "status_repeat": 3, "overall_timeout_s": 900},
    "full": {"wrk_seconds": 10, "pillow_repeat": 7, "upload_repeat": 7, "ingest_app": 1024,
             "ingest_stock": 200, "ingest_budget_s": 900, "status_products": 10_000,
             "status_per_product": 5, "status_repeat": 5, "overall_timeout_s": 3600},
}
SECTIONS = ("serve", "upload", "ingest", "status")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------
# Setup (standard library only: runs under any python3 before the venv exists)


def _which(binary: str) -> str | None:
    return shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/sbin") / binary) if p.exists()), None)


def setup() -> None:
    missing = [pkg for binary, pkg in APT_TOOLS.items() if _which(binary) is None]
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"bench: need {' '.join(missing)}; run `apt-get install -y {' '.join(missing)}`")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        say(f"apt-get install {' '.join(missing)}")
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, timeout=600,
                       env=env)
    if not VENV_PY.exists():
        say(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    reqs = [p for p in (ROOT / "requirements-dev.txt", ROOT / "requirements.txt") if p.exists()][:1]
    reqs.append(BENCH / "requirements.txt")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in reqs)).hexdigest()
    stamp = VENV / ".bench-requirements.sha256"
    if not stamp.exists() or stamp.read_text().strip() != digest:
        argv = [str(VENV_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for req in reqs:
            argv += ["-r", str(req)]
        say("pip install " + " ".join(f"-r {p.relative_to(ROOT)}" for p in reqs))
        subprocess.run(argv, check=True, timeout=900, cwd=ROOT)
        stamp.write_text(digest + "\n")
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:],
                                "--no-setup"])


# --------------------------------------------------------------------------------------
# The run


class Aborted(BaseException):
    """SIGTERM, SIGINT or the overall time limit (a BaseException: no section swallows it)."""


def _abort(signum, _frame):
    raise Aborted(signal.Signals(signum).name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the default: about 3 minutes")
    mode.add_argument("--full", action="store_true", help="10 s wrk runs, ingest up to 1 GB")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--seconds", type=float, help="override the wrk duration per run")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the app's workers during its wrk runs (bench/results/)")
    parser.add_argument("--no-setup", action="store_true", help="skip apt/venv/pip checks")
    args = parser.parse_args()
    if not args.no_setup:
        setup()  # re-executes this script inside the venv when needed
    sys.path.insert(0, str(BENCH))

    from harness import Procs
    from suite import Suite

    mode_name = "full" if args.full else "quick"
    cfg = dict(MODES[mode_name])
    if args.seconds:
        cfg["wrk_seconds"] = args.seconds
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # One run at a time: two would share bench/work (databases, logs) and the two cores.
    lock = open(WORK / ".lock", "a+")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        sys.exit(f"bench: another run (pid {holder}) is in progress; wait for it to finish")
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    procs = Procs(WORK / "logs")
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGINT, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(int(cfg["overall_timeout_s"]))
    command = "python3 bench/run.py" + (" --full" if args.full else "") + (
        f" --only {args.only}" if only != set(SECTIONS) else "")
    suite = Suite(root=ROOT, bench=BENCH, work=WORK, results=RESULTS, venv_bin=VENV_BIN,
                  procs=procs, cfg=cfg, mode=mode_name, sections=only, profile=args.profile,
                  say=say)
    started = time.monotonic()
    status = 0
    try:
        suite.run()
    except Aborted as exc:
        suite.report.note(f"run aborted ({exc}); figures after that point are missing")
        status = 2
    finally:
        signal.alarm(0)
        procs.stop_all()
    suite.report.note(f"wall time {time.monotonic() - started:.0f} s")
    # An aborted run's partial table goes to the (git-ignored) work folder, not over latest.md.
    suite.finish(command, WORK / "aborted.md" if status else RESULTS / "latest.md")
    return status


if __name__ == "__main__":
    sys.exit(main())
