#!/usr/bin/env python3
"""What a placeholder (blurhash + dominant colour) and a focal point cost per upload: one
table, one run.

For every good fixture (and the 12 MP photo above all), this validates and renders the image
as an upload does (``prepare`` + ``render``), then times :func:`avenue.media.ingest.placeholders.compute`
on its WebP thumb and :func:`avenue.media.ingest.focal.estimate` on its decoded frame, the work the
upload adds, next to the validate-and-render time it is added to. Target (issue 17): a
placeholder under 5 ms per upload.

    python3 bench/placeholders.py              # 50 timings per fixture, medians
    python3 bench/placeholders.py --repeat 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avenue.media.ingest.focal import CENTRE, estimate  # noqa: E402
from avenue.media.ingest.images import Limits, prepare  # noqa: E402
from avenue.media.ingest.placeholders import compute  # noqa: E402
from avenue.media.ingest.variants import render  # noqa: E402
from tests.support.fixtures import location  # noqa: E402

from harness import median_ms  # noqa: E402

FIXTURES = location() / "images" / "good"  # ../shared/fixtures, else the corpus tests/support makes
TARGET_MS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="timings per fixture (median)")
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    rows = []
    for path in sorted(FIXTURES.iterdir()):
        data = path.read_bytes()
        prepared = prepare(data, Limits())
        renditions = render(prepared)
        thumb = next(r for r in renditions if r.name == "thumb" and r.format == "webp").data
        compute(thumb, frozenset())  # warm: first-call imports and allocations
        runs = max(3, args.repeat // 10)
        upload_ms = median_ms(lambda data=data: render(prepare(data, Limits())), runs, warm=False)
        # The same with the point given: what estimating it in the og crop's task adds to the wait.
        given_ms = median_ms(lambda data=data: render(prepare(data, Limits()), CENTRE), runs, warm=False)
        placeholder_ms = median_ms(lambda thumb=thumb: compute(thumb, frozenset()), args.repeat, warm=False)
        focal_ms = median_ms(lambda pixels=prepared.pixels: estimate(pixels), args.repeat, warm=False)
        rows.append((path.name, len(data), upload_ms, placeholder_ms, focal_ms, upload_ms / given_ms))
    worst = max(row[3] for row in rows)
    worst_focal = max(row[4] for row in rows)
    photo = next((row for row in rows if row[0] == "photo_12mp.jpg"), rows[0])
    lines = [
        f"# Placeholder cost per upload, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| fixture | bytes | validate + 8 renditions, median ms | placeholder, median ms | share "
        "| focal point alone, median ms | renditions estimating it ÷ given it |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {name} | {size:,} | {upload:.1f} | {cost:.2f} | {cost / upload:.1%} | {focal:.2f} "
          f"| {wait:.2f}x |" for name, size, upload, cost, focal, wait in rows),
        "",
        f"worst placeholder median: **{worst:.2f} ms** (target under {TARGET_MS:.0f} ms: "
        f"{'met' if worst < TARGET_MS else 'missed'}); worst focal point median: {worst_focal:.2f} ms "
        f"of CPU (no target), run beside the gallery encode: a {photo[0]} upload waits {photo[5]:.2f}x "
        "as long as with the point given",
        "",
        f"Command: `python3 bench/placeholders.py --repeat {args.repeat}` on this machine "
        f"({sys.platform}, {__import__('os').cpu_count()} cores).",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
