#!/usr/bin/env python3
"""What a resumable (tus) upload costs next to one multipart upload: one table, one run.

The Procfile's process (gunicorn, two workers, ``avenue.server.GuardedThreadWorker``) on a
fresh embedded SecantusDB; each round uploads two fresh ~9 MB photos (random pixels, so
nothing dedupes and the JPEG is as large as a 10 MB limit allows), in alternating order:

- **multipart**: one ``POST /api/uploads`` (the baseline);
- **tus**: tuspy 1.1.0, ``POST /api/tus`` then ``PATCH`` es of 5 MiB (two of them), the last of
  which stores the image through the same path.

Both answer once the image is stored (validated, stripped, eight renditions, written). Medians
of ``--rounds``; the ratio is tus ÷ multipart in the same run (target: at most 1.3x).

    python3 bench/tus.py                      # 5 rounds
    python3 bench/tus.py --rounds 7 --out bench/results/tus-2026-11-24.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avenue.embedded import EmbeddedServer  # noqa: E402
from tests.support.fixtures import noise_jpeg  # noqa: E402
from tests.support.launcher import LOOPBACK, Gunicorn  # noqa: E402
from tusclient import client as tus_client  # noqa: E402

CHUNK = 5 * 1024 * 1024


def photo() -> bytes:
    return noise_jpeg(3700, 2800)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = EmbeddedServer(Path(folder) / "db", log_path=Path(folder) / "db.log").start()
        server = Gunicorn(database.uri, "bench_tus", Path(folder) / "gunicorn.log").start(60)
        try:
            user = server.token("ops")
            tus = tus_client.TusClient(f"http://{LOOPBACK}:{server.port}/api/tus", headers=user)
            times: dict[str, list[float]] = {"multipart": [], "tus": []}
            sizes: list[int] = []

            def multipart() -> None:
                data = photo()
                sizes.append(len(data))
                started = time.perf_counter()
                status, image = server.upload(user, data, "bench.jpg", timeout=120)
                times["multipart"].append(time.perf_counter() - started)
                assert status == 201, (status, image)

            def resumable() -> None:
                data = photo()
                sizes.append(len(data))
                started = time.perf_counter()
                uploader = tus.uploader(file_stream=io.BytesIO(data), chunk_size=CHUNK,
                                        metadata={"filename": "bench.jpg", "visibility": "public"})
                uploader.upload()
                times["tus"].append(time.perf_counter() - started)
                assert uploader.request.response_headers.get("avenue-image-id"), "not stored"

            multipart()  # warm-up: the workers' first upload loads libvips and the indexes
            times["multipart"].clear()
            for number in range(args.rounds):
                for step in ((multipart, resumable) if number % 2 == 0 else (resumable, multipart)):
                    step()
        finally:
            server.stop(grace=10)
            database.stop()
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    ratio = medians["tus"] / medians["multipart"]
    load = os.getloadavg()[0]
    at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python3 bench/tus.py" + (f" --rounds {args.rounds}" if args.rounds != 5 else "")
    lines = [
        f"# A 10 MB photo by tus in 5 MiB chunks against one multipart upload — {at}", "",
        f"Command: `{command}`. The Procfile's process (gunicorn, 2 workers) on a fresh embedded "
        f"SecantusDB, over loopback; fresh photos of {min(sizes) / 1e6:.1f}-{max(sizes) / 1e6:.1f} MB "
        f"(random pixels: nothing dedupes), rounds alternating which goes first; medians of "
        f"{args.rounds} rounds; load average at the end {load:.2f} (2 cores, shared).", "",
        "| upload | ms (median) | each round (ms) | ratio |", "| --- | ---: | --- | ---: |",
        f"| multipart: one `POST /api/uploads` (baseline) | {medians['multipart']:.0f} | "
        f"{', '.join(f'{v * 1000:.0f}' for v in times['multipart'])} | 1.00x |",
        "| tus (tuspy): `POST /api/tus` + 2 `PATCH`es of 5 MiB, the last one stores | "
        f"{medians['tus']:.0f} | "
        f"{', '.join(f'{v * 1000:.0f}' for v in times['tus'])} | **{ratio:.2f}x** |", "",
        f"Target: tus at most 1.3x the multipart upload. {'Met' if ratio <= 1.3 else 'NOT met'}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
