#!/usr/bin/env python3
"""The zip import against single uploads, in one run on a real gunicorn: time per photo and the
workers' extra RSS.

The Procfile's web process (``gunicorn --config gunicorn.conf.py wsgi:app``, its default
workers) on a fresh embedded SecantusDB. Photos of about 2 MB are made from the test corpus's
12 MP photo (re-encoded smaller, so the per-photo work is the store path's, not only one huge
decode); each photo is distinct (a JPEG comment changes its hash, so nothing is deduplicated).
Into the builder's library, one request at a time:

- **single uploads**: ``POST /api/builder/media``, one photo per request, N photos;
- **zip import**: ``POST /api/builder/import-zip`` with the other N photos, in archives as
  large as ``AVENUE_ZIP_MAX_BYTES`` takes (100 MB: about 45 photos each).

Per photo: the total wall time ÷ N for each; the ratio zip ÷ single (target at most 1.2).
The two kinds run on two fresh gunicorns, warmed up alike (one single upload and one
one-photo zip import each), in turn: a batch of single uploads on one, then an archive of as
many photos on the other, and so on (a change in the shared machine's load falls on both).
RSS: the sum of each server's workers' RSS, sampled every 50 ms, minus the sum right after its
warm-up (target: under 300 MB extra throughout).

    python3 bench/zip_import.py                   # 200 photos each way
    python3 bench/zip_import.py --photos 40 --out bench/results/zip-import-2026-11-24.md
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from PIL import Image  # noqa: E402

from data import photo_12mp, with_comment  # noqa: E402
from harness import (  # noqa: E402
    LOOPBACK,
    Procs,
    against_single_report,
    free_port,
    request,
    rss_total,
    wait_http,
    worker_pids,
)

DB = "bench_zip_import"
TARGET = 2 * 1024 * 1024
ZIP_LIMIT = 100 * 1024 * 1024


def two_mb_photo() -> bytes:
    """The corpus's 12 MP photo re-encoded to about 2 MB (quality 95, scaled to fit)."""
    with tempfile.TemporaryDirectory() as folder, Image.open(photo_12mp(ROOT, Path(folder))) as source:
        source.load()
        scale, data = 1.0, b""
        for _ in range(8):
            size = (round(source.width * scale), round(source.height * scale))
            buffer = io.BytesIO()
            source.resize(size, Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=95)
            data = buffer.getvalue()
            if abs(len(data) - TARGET) < 0.05 * TARGET:
                break
            scale = min(1.0, scale * (TARGET / len(data)) ** 0.5)
            if scale == 1.0 and len(data) < TARGET:
                break
        return data


class RssPeak:
    """The largest sum of the workers' RSS while it runs, sampled every 50 ms."""

    def __init__(self, master) -> None:
        self.master = master
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_total(worker_pids(self.master)))
            time.sleep(0.05)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def start_app(procs: Procs, uri: str, name: str) -> tuple[int, object]:
    port = free_port()
    env = dict(os.environ, HOST=LOOPBACK, PORT=str(port), MONGO_URI=uri, MONGO_DB=DB,
               SECRET_KEY=secrets.token_hex(32), AVENUE_ENV="production", PYTHONDONTWRITEBYTECODE="1",
               AVENUE_RATELIMIT_ENABLED="0", AVENUE_HISTORY_INTERVAL_SECONDS="0")
    env.pop("WEB_CONCURRENCY", None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "--config", "gunicorn.conf.py", "wsgi:app"]
    proc = procs.start(f"gunicorn-{name}", argv, env=env, cwd=ROOT)
    wait_http(port, "/healthz", proc, 90, "gunicorn")
    return port, proc


def archives(photos: list[bytes]) -> list[tuple[bytes, int]]:
    """The photos in as few stored (not deflated: JPEGs do not shrink) zips as the limit allows."""
    out, batch, size = [], [], 0
    for photo in photos:
        if batch and size + len(photo) + 1024 > ZIP_LIMIT - 1024 * 1024:
            out.append(batch)
            batch, size = [], 0
        batch.append(photo)
        size += len(photo) + 1024
    out.append(batch)
    made = []
    for number, group in enumerate(out):  # (the archive, how many photos it holds)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for index, photo in enumerate(group):
                archive.writestr(f"bench/{number}/photo-{index}.jpg", photo)
        made.append((buffer.getvalue(), len(group)))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="photos each way")
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    from avenue.embedded import EmbeddedServer
    from tests.support import tokens

    base = two_mb_photo()
    stamp = time.time_ns()
    singles = [with_comment(base, f"single-{stamp}-{n}") for n in range(args.photos)]
    zipped = archives([with_comment(base, f"zip-{stamp}-{n}") for n in range(args.photos)])
    work = BENCH / "work" / "zip_import"
    procs = Procs(work)
    with tempfile.TemporaryDirectory(prefix="avenue-zip-bench-") as folder:
        database = EmbeddedServer(Path(folder) / "db", log_path=work / "secantusd.log")
        work.mkdir(parents=True, exist_ok=True)
        database.start()
        try:
            headers = tokens.issue_on(database.uri, DB, "editor")
            # One fresh gunicorn per kind, warmed up alike (imports, first renders, indexes: one
            # of each kind), used in turn: a batch of single uploads on one, then one archive of
            # as many photos on the other, and so on, so a change of the machine's load (shared)
            # falls on both kinds alike, and each server's extra RSS starts from the same state.
            servers = {}
            for kind in ("single", "zip"):
                port, master = start_app(procs, database.uri, kind)
                upload(port, headers, with_comment(base, f"warm-{kind}-{stamp}"))
                answer = request("POST", port, "/api/builder/import-zip", body=archives(
                    [with_comment(base, f"warm-zip-{kind}-{stamp}")])[0][0],
                    headers={**headers, "Content-Type": "application/zip"}, timeout=600)
                assert answer.status == 200, answer.body[:300]
                servers[kind] = (port, master, rss_total(worker_pids(master)))
            seconds = {"single": 0.0, "zip": 0.0}
            peaks = {kind: RssPeak(master) for kind, (_, master, _) in servers.items()}
            for peak in peaks.values():
                peak.__enter__()
            done = 0
            for body, count in zipped:
                port = servers["single"][0]
                start = time.perf_counter()
                for photo in singles[done:done + count]:
                    upload(port, headers, photo)
                seconds["single"] += time.perf_counter() - start
                done += count
                port = servers["zip"][0]
                start = time.perf_counter()
                answer = request("POST", port, "/api/builder/import-zip", body=body, timeout=3600,
                                 headers={**headers, "Content-Type": "application/zip"})
                seconds["zip"] += time.perf_counter() - start
                assert answer.status == 200, answer.body[:300]
                assert b'"refused":0' in answer.body.replace(b" ", b""), answer.body[:300]
                print(f"{done} photos each way: single {seconds['single']:.1f} s, zip {seconds['zip']:.1f} s",
                      flush=True)
            for peak in peaks.values():
                peak.__exit__()
            results = {kind: (seconds[kind], (peaks[kind].peak - servers[kind][2]) / 2**20,
                              servers[kind][2] / 2**20) for kind in servers}
        finally:
            procs.stop_all()
            database.stop()
    table = report(results, args.photos, len(base), len(zipped))
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


def upload(port: int, headers: dict, photo: bytes) -> None:
    boundary = secrets.token_hex(12)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()
    answer = request("POST", port, "/api/builder/media", body=body, timeout=600,
                     headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status == 201, answer.body[:300]


def report(results: dict, photos: int, size: int, archives_sent: int) -> str:
    return against_single_report(
        "Zip import",
        f"Command: `python3 bench/zip_import.py --photos {photos}`. The Procfile's gunicorn (its default "
        f"workers; a fresh one per kind, warmed up alike, used in turn batch by batch) on a fresh "
        f"embedded SecantusDB; {photos} distinct photos of {size / 1e6:.2f} MB each way "
        f"(the corpus's 12 MP photo re-encoded to about 2 MB), into the builder's library, one request at "
        f"a time; the zip phase sent {archives_sent} archive(s) of at most 100 MB.",
        "zip import", "zip", single=results["single"], other=results["zip"], photos=photos)


if __name__ == "__main__":
    sys.exit(main())
