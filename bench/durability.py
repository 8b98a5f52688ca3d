#!/usr/bin/env python3
"""What durability costs on the embedded database, and what it buys: one table, one run.

For each way of making an acknowledged write survive a crash of SecantusDB, this starts a
fresh server, stores distinct ~1 MB JPEGs through the app's own write path
(``avenue.media.store.originals.store``: validate, render 8 variants, two write commands), times
each upload and the storage part alone, then SIGKILLs the server right after the last
acknowledgement, restarts it on the same folder and counts what is still there.

    python3 bench/durability.py            # 60 uploads per mode
    python3 bench/durability.py --count 200

Modes: ``none`` (the driver's default write concern: what the app used before), ``server``
(the server syncs its log on every commit: ``--sync-on-commit``), ``journal`` (the app's
choice: ``w: majority, j: true`` on each write, the server unchanged).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymongo  # noqa: E402
from avenue.config import embedded_cache_size  # noqa: E402
from avenue.embedded import executable, free_port  # noqa: E402
from avenue.media.ingest.images import Limits  # noqa: E402
from avenue.media.store import indexes, originals, storage  # noqa: E402
from PIL import Image  # noqa: E402
from tests.support.records import images  # noqa: E402

MODES = {
    "none": ([], {}),
    "server": (["--sync-on-commit"], {}),
    "journal": ([], {"w": "majority", "journal": True}),
}


def base_jpeg() -> bytes:
    """A ~1 MB photo-like JPEG (noise compresses like detail)."""
    image = Image.effect_noise((1100, 1100), 60).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def distinct(data: bytes, index: int) -> bytes:
    """The same image with a different JPEG comment: other bytes, so no dedupe."""
    marker = f"durability bench {index}".encode()
    return data[:2] + b"\xff\xfe" + (len(marker) + 2).to_bytes(2, "big") + marker + data[2:]


def start(folder: str, port: int, flags: list[str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [executable(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", folder,
         "--log-level", "WARNING", "--cache-size", embedded_cache_size(), *flags],  # as make run
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                                 serverSelectionTimeoutMS=500)
    for _ in range(300):
        try:
            client.admin.command("ping")
            break
        except pymongo.errors.PyMongoError:
            time.sleep(0.1)
    client.close()
    return process


def run(mode: str, count: int, data: bytes) -> dict[str, float]:
    flags, options = MODES[mode]
    folder = tempfile.mkdtemp(prefix=f"avenue-durability-{mode}-")
    port = free_port()
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    process = start(folder, port, flags)
    client = pymongo.MongoClient(uri, **options)
    db = client.bench
    indexes.ensure_indexes(db)
    timed_write = storage.write_files
    write_ms: list[float] = []

    def write_files(*args, **kwargs):  # the storage part of one upload
        t0 = time.perf_counter()
        try:
            return timed_write(*args, **kwargs)
        finally:
            write_ms.append((time.perf_counter() - t0) * 1000)

    storage.write_files = write_files
    upload_ms, ids = [], []
    try:
        for index in range(count):
            t0 = time.perf_counter()
            result = originals.store(db, "uploads", distinct(data, index), filename=f"{index}.jpg",
                                     limits=Limits(max_bytes=8 * 2**20), kind="upload")
            upload_ms.append((time.perf_counter() - t0) * 1000)
            ids.append(result.doc["_id"])
    finally:
        storage.write_files = timed_write
    os.killpg(process.pid, signal.SIGKILL)  # right after the last acknowledgement
    process.wait()
    client.close()
    process = start(folder, port, flags)
    after = pymongo.MongoClient(uri)
    try:
        stored = images(after.bench, "uploads").find({"_id": {"$in": ids}}, {"_id": 1})
        present = {doc["_id"] for doc in stored}
    finally:
        after.close()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return {"upload_ms": statistics.median(upload_ms), "write_ms": statistics.median(write_ms),
            "acknowledged": len(ids), "kept": len(present), "last_kept": float(ids[-1] in present)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    data = base_jpeg()
    print(f"# Durability on the embedded SecantusDB: {args.count} distinct {len(data) / 2**20:.2f} MB JPEGs "
          f"per mode, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| mode | upload, median ms | storage part (2 write commands), median ms | "
          "acknowledged | still there after kill -9 | last one kept |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    results = {mode: run(mode, args.count, data) for mode in MODES}
    for mode, r in results.items():
        print(f"| {mode} | {r['upload_ms']:.0f} | {r['write_ms']:.1f} | {r['acknowledged']:.0f} | "
              f"{r['kept']:.0f} | {'yes' if r['last_kept'] else 'no'} |")
    base = results["none"]["upload_ms"]
    print(f"\nupload time ÷ no durability: server {results['server']['upload_ms'] / base:.2f}x, "
          f"journal {results['journal']['upload_ms'] / base:.2f}x")


if __name__ == "__main__":
    main()
