#!/usr/bin/env python3
"""A cold rendition against bare pyvips doing the same thing, in one process, in one run.

Issue 28's target: rendering a 12 MP photo's 800 px wide WebP and AVIF on request takes at
most 1.25x what bare pyvips takes for the same operation. Ours is
:func:`avenue.media.ingest.render.render_spec` (validation and decode by ``prepare`` at
the scale the rendition needs, the cut around the focal point, Lanczos, then Pillow's
encoders: WebP q82 method 4, AVIF q64 speed 6). The baseline is what a service built on
pyvips alone would run: ``thumbnail_buffer`` (shrink-on-load, then resize) and libvips's own
encoder at the same settings (``webpsave`` Q82 effort 4; ``heifsave`` AV1 Q64 effort 3, which
is speed 6). The two are timed alternately, ``--repeat`` times each, and the medians and their
ratio printed; the bytes each made are printed too, since the encoders differ.

    python3 bench/renditions.py               # 7 timings each
    python3 bench/renditions.py --repeat 15 --out bench/results/renditions-DATE.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402
from avenue.media.ingest.focal import CENTRE  # noqa: E402
from avenue.media.ingest.images import Limits  # noqa: E402
from avenue.media.ingest.render import render_spec  # noqa: E402
from avenue.media.transform import normalise  # noqa: E402
from tests.support.fixtures import location  # noqa: E402

TARGET = 1.25
WIDTH = 800


def ours(data: bytes, fmt: str) -> bytes:
    return render_spec(data, Limits.for_stored(len(data)), normalise(WIDTH), fmt, CENTRE).data


def bare(data: bytes, fmt: str) -> bytes:
    image = pyvips.Image.thumbnail_buffer(data, WIDTH)
    if fmt == "webp":
        return bytes(image.webpsave_buffer(Q=82, effort=4))
    return bytes(image.heifsave_buffer(Q=64, compression="av1", effort=3))


def timed(fn: Callable[[], bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    made = fn()
    return (time.perf_counter() - start) * 1000, len(made)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timings of each (median)")
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    data = (location() / "images" / "good" / "photo_12mp.jpg").read_bytes()
    lines = [f"# A cold rendition against bare pyvips, {dt.date.today()}", "",
             f"12 MP JPEG ({len(data):,} B) to {WIDTH} px wide; median of {args.repeat}, alternating; "
             f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}.", "",
             "| format | ours ms | bare pyvips ms | ratio (target <= 1.25x) | ours bytes | pyvips bytes |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for fmt in ("webp", "avif"):
        ours(data, fmt), bare(data, fmt)  # warm: imports, first-call allocations
        mine, theirs = [], []
        for _ in range(args.repeat):
            mine.append(timed(lambda: ours(data, fmt)))  # noqa: B023 (called at once)
            theirs.append(timed(lambda: bare(data, fmt)))  # noqa: B023 (called at once)
        a, b = statistics.median(t for t, _ in mine), statistics.median(t for t, _ in theirs)
        verdict = "met" if a / b <= TARGET else "missed"
        lines.append(f"| {fmt} | {a:.0f} | {b:.0f} | {a / b:.2f}x ({verdict}) | {mine[0][1]:,} | "
                     f"{theirs[0][1]:,} |")
        print(lines[-1], flush=True)
    report = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
