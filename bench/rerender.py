#!/usr/bin/env python3
"""What ``flask rerender`` costs: variants re-rendered per second, and the CPU it takes, with and
without ``--cpu-share``.

On the embedded database (a fresh SecantusDB folder), ``--images`` photo-like JPEGs (2 MP by
default) are stored in the uploads bucket with their eight variants each. Then, per run, a
setting of the variant table changes (the card's and the thumb's box, each run another size:
four variants stale per image, the card and the thumb in WebP and JPEG) and the job runs over
all of them: wall time, variants per second, and the process's CPU time (every thread) divided
by the wall time, in cores, and the embedded database process's the same way (the job's reads
and writes are its work). One run unbounded (``cpu_share`` 1), one at ``--share``.

    python3 bench/rerender.py                     # 36 images, share 0.5
    python3 bench/rerender.py --images 48 --out bench/results/rerender-2026-11-25.md
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from avenue.embedded import EmbeddedServer  # noqa: E402

from data import photo_like  # noqa: E402

SECRET = "bench-rerender-secret-key-0123456789abcdef"
DB = "bench_rerender"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=36)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rerender-") as folder:
        database = EmbeddedServer(Path(folder) / "db", log_path=Path(folder) / "db.log").start()
        try:
            rows = run(database.uri, args.images, args.share, database.pid)
        finally:
            database.stop()
    table = report(rows, args.images)
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


def cpu_seconds(pid: int | None) -> float:
    """The user and system CPU time of process ``pid`` so far (0 without /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(uri: str, images: int, share: float, db_pid: int | None) -> list[dict[str, float]]:
    from avenue import create_app
    from avenue.media.buckets import UPLOADS
    from avenue.media.ingest import variants
    from avenue.media.store.originals import store
    from avenue.ops import rerender

    app = create_app({"TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": SECRET, "MONGO_URI": uri,
                      "MONGO_DB": DB, "RATELIMIT_ENABLED": False, "AVENUE_HISTORY_INTERVAL_SECONDS": 0})
    rows = []
    with app.app_context():
        from avenue.db import get_db, get_mongo

        get_mongo().ensure_indexes()
        db = get_db()
        for index in range(images):
            out = io.BytesIO()
            photo_like(1600, 1200, seed=index, noise=0.25).save(out, "JPEG", quality=88)
            store(db, UPLOADS, out.getvalue(), filename=f"photo-{index}.jpg")
        card, thumb = variants.VARIANTS["card"], variants.VARIANTS["thumb"]
        try:
            for step, cpu_share in enumerate((1.0, share), start=1):
                variants.VARIANTS["card"] = (card[0] - 20 * step, card[1] - 20 * step, card[2])
                variants.VARIANTS["thumb"] = (thumb[0] - 10 * step, thumb[1] - 10 * step, thumb[2])
                wall, cpu, db_cpu = time.perf_counter(), time.process_time(), cpu_seconds(db_pid)
                done = rerender.run(db, cpu_share=cpu_share)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                db_cpu = cpu_seconds(db_pid) - db_cpu
                rows.append({"share": cpu_share, "variants": done.variants_rerendered, "seconds": wall,
                             "per_second": done.variants_rerendered / wall, "cores": cpu / wall,
                             "db_cores": db_cpu / wall,
                             "render": done.render_seconds, "slept": done.slept_seconds})
        finally:
            variants.VARIANTS["card"], variants.VARIANTS["thumb"] = card, thumb
    return rows


def report(rows: list[dict[str, float]], images: int) -> str:
    load = os.getloadavg()
    lines = [
        f"rerender: {images} photo-like 2 MP JPEGs, card and thumb stale (4 variants each); "
        f"{os.cpu_count()} cores, load {load[0]:.2f} at the end",
        "",
        "| --cpu-share | variants | seconds | variants/s | job CPU (cores) | database CPU (cores) "
        "| rendering s | yielded s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['share']:.2f} | {row['variants']:.0f} | {row['seconds']:.1f} | "
                     f"{row['per_second']:.1f} | {row['cores']:.2f} | {row['db_cores']:.2f} | "
                     f"{row['render']:.1f} | {row['slept']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
