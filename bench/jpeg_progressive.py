#!/usr/bin/env python3
"""Progressive against baseline (Huffman-optimised) JPEG for renditions on request (issue 46).

Both keep the same quantisation tables, so the decoded pixels are identical (checked here):
the choice is bytes against encode time. Each source photo (``bench/peers.py``'s 2040x1356
ones, and the corpus's 12 MP photo) resized with Lanczos to each width, then encoded by
Pillow as the renditions are (quality 80 and 85, ``optimize=True``), progressive and
baseline, alternating, ``--repeat`` times each; this process's CPU time (the machine is shared).

    .venv/bin/python bench/jpeg_progressive.py --out   # bench/results/jpeg-progressive-<date>.md
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageChops

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import data  # noqa: E402
import peers  # noqa: E402

WIDTHS = (320, 512, 800, 1280, 1600)


def encode(image: Image.Image, quality: int, progressive: bool) -> tuple[bytes, float]:
    started = time.process_time()
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True, progressive=progressive)
    return out.getvalue(), time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--photos", type=int, default=4, help="2040 px photos (plus the 12 MP one)")
    parser.add_argument("--out", action="store_true")
    args = parser.parse_args()
    sources = [Image.open(path) for path in peers.photos("2040", args.photos)[:-1]]
    sources.append(Image.open(data.photo_12mp(ROOT, BENCH / "work" / "data")))
    for image in sources:
        image.load()
    rows = ["| width | quality | progressive: ms, KB | baseline: ms, KB | baseline bytes | baseline time | "
            "same pixels |", "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for width in WIDTHS:
        for quality in (80, 85):
            times: dict[bool, list[float]] = {True: [], False: []}
            sizes: dict[bool, list[int]] = {True: [], False: []}
            same = True
            for source in sources:
                size = (width, round(source.height * width / source.width))
                small = source.resize(size, Image.Resampling.LANCZOS)
                made: dict[bool, bytes] = {}
                for n in range(args.repeat):
                    for progressive in ((True, False) if n % 2 == 0 else (False, True)):
                        made[progressive], seconds = encode(small, quality, progressive)
                        times[progressive].append(seconds * 1000)
                for progressive in (True, False):
                    sizes[progressive].append(len(made[progressive]))
                pictures = [Image.open(io.BytesIO(made[p])).convert("RGB") for p in (True, False)]
                same &= ImageChops.difference(*pictures).getbbox() is None
            p_ms, b_ms = statistics.median(times[True]), statistics.median(times[False])
            p_kb, b_kb = statistics.mean(sizes[True]) / 1024, statistics.mean(sizes[False]) / 1024
            rows.append(f"| {width} | {quality} | {p_ms:.2f}, {p_kb:.1f} | {b_ms:.2f}, {b_kb:.1f} | "
                        f"{(b_kb / p_kb - 1) * 100:+.1f} % | {b_ms / p_ms:.2f}x | "
                        f"{'yes' if same else 'NO'} |")
            print(rows[-1], flush=True)
    text = "\n".join([
        "# Progressive against baseline JPEG for renditions, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "", f"`python bench/jpeg_progressive.py {' '.join(sys.argv[1:])}`: {len(sources) - 1} photo-like "
        "2040x1356 JPEGs (bench/peers.py's) and the 12 MP corpus photo, Lanczos-resized to each width, "
        "encoded "
        f"by Pillow with `optimize=True`, {args.repeat} times each way alternating; median CPU ms, mean KB. "
        "\"same pixels\": both decode to identical pixels for every photo.", "", *rows, ""])
    print(text)
    if args.out:
        target = BENCH / "results" / f"jpeg-progressive-{time.strftime('%Y-%m-%d', time.gmtime())}.md"
        target.write_text(text)
        print(f"written to {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
