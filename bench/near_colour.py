#!/usr/bin/env python3
"""Colour variants against re-saves (issue 64, item 5): which pairs a lookup flags as
near-duplicates by the grey hash alone (before) and by the hash and the colour shares (now,
``near_hash.same_colours``). One run, one table.

1. **A product shot** (``tests/support/shots.py``: a mug on a table against a pale backdrop,
   about 15 % of the picture) in red, its hue turned to green and blue, two shades of its red
   (darker, bluer: about 20 ΔE), and orange (the hue turned 30 degrees, 37 ΔE); and the red
   shot's four re-saves (JPEG q70, half size, cropped 5 %, PNG). Every variant is compared
   with every other (the three hues: 3 pairs), each shade and orange with the red, each
   re-save with the red.
2. **Copies of other pictures**, as bench/near_duplicates.py makes them (the corpus's JPEGs
   and generated scenes, each stored at q90, then re-encoded at 60-95, resized to 50-100 %,
   cropped by 0-5 %, from a fixed seed): of those the hash flags, how many the colours keep,
   and the least share of a colour a copy kept (the margin over ``near_hash.COLOUR_KEPT``).
3. **Distinct pictures** flagged by the hash (generated scenes, every pair): how many the
   colours still flag.

    python3 bench/near_colour.py --out bench/results/near-colour-2026-11-27.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avenue.media.ingest import near_hash, pipeline  # noqa: E402
from avenue.media.ingest.images import Limits  # noqa: E402
from PIL import Image  # noqa: E402
from tests.support.fixtures import location, scene  # noqa: E402
from tests.support.shots import RED, SHADES, VARIANTS, encoded, product_shot, resaves  # noqa: E402


def stored(data: bytes) -> near_hash.NearHash:
    found = pipeline.ingest(data, Limits()).near_hash
    if found is None:
        raise RuntimeError("no near-duplicate hash for a good image")
    return found


def by_hash(a: near_hash.NearHash, b: near_hash.NearHash) -> bool:
    """What a lookup flagged before: within NEAR bits and sharing a probed band."""
    return near_hash.distance(a.phash, b.phash) <= near_hash.NEAR and bool(
        set(near_hash.probes(b.phash, b.order)) & set(near_hash.bands(a.phash)))


def flagged(a: near_hash.NearHash, b: near_hash.NearHash) -> tuple[bool, bool]:
    """(before, now)."""
    hashed = by_hash(a, b)
    return hashed, hashed and near_hash.same_colours(a.shares, b.shares)


def kept(a: near_hash.NearHash, b: near_hash.NearHash) -> float:
    """The least part of a colour's share (>= COLOUR_MATTERS) found within one step in the other."""
    mine, theirs = near_hash._unpacked(a.shares), near_hash._unpacked(b.shares)
    least = 9.0
    for first, second in ((mine, theirs), (theirs, mine)):
        for (light, aa, bb), share in first.items():
            if share >= near_hash.COLOUR_MATTERS:
                around = sum(second.get((light + dl, aa + da, bb + db), 0.0)
                             for dl in (-1, 0, 1) for da in (-1, 0, 1) for db in (-1, 0, 1))
                least = min(least, around / share)
    return least


def copy_of(im: Image.Image, rng: random.Random) -> bytes:
    width, height = im.size
    quality, scale, crop = rng.randint(60, 95), rng.uniform(0.5, 1.0), rng.uniform(0.0, 0.05)
    left, top = rng.uniform(0, crop), rng.uniform(0, crop)
    cut = im.crop((int(width * left), int(height * top), width - int(width * (crop - left)),
                   height - int(height * (crop - top))))
    size = (max(1, int(cut.width * scale)), max(1, int(cut.height * scale)))
    cut = cut.resize(size, Image.Resampling.LANCZOS)
    return encoded(cut, quality=quality)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=60, help="generated scenes copied (part 2)")
    parser.add_argument("--copies", type=int, default=4, help="copies of each picture (part 2)")
    parser.add_argument("--distinct", type=int, default=300,
                        help="generated scenes compared pairwise (part 3)")
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []

    shots = {"red": stored(encoded(product_shot(RED), quality=90))}
    shots.update({name: stored(encoded(product_shot(colour), quality=90))
                  for name, colour in VARIANTS.items()})
    pairs = [flagged(shots[a], shots[b]) for a, b in combinations(shots, 2)]
    rows.append(("hue variants (red, green, blue: 3 pairs)", f"{sum(p[0] for p in pairs)} of 3 flagged",
                 f"{sum(p[1] for p in pairs)} of 3 flagged"))
    for name, colour in {**SHADES, "orange": (200, 116, 32)}.items():
        before, now = flagged(shots["red"], stored(encoded(product_shot(colour), quality=90)))
        rows.append((f"red against {name}", "flagged" if before else "not flagged",
                     "flagged" if now else "not flagged"))
    found = [flagged(shots["red"], stored(data)) for data in resaves(product_shot(RED)).values()]
    rows.append(("re-saves of the red shot (q70, half, crop 5 %, PNG)",
                 f"{sum(f[0] for f in found)} of 4 found",
                 f"{sum(f[1] for f in found)} of 4 found"))

    rng = random.Random(31)
    good = location() / "images" / "good"
    pictures = [Image.open(path).convert("RGB") for path in sorted(good.glob("*.jpg"))]
    pictures += [scene((1200, 900), seed) for seed in range(args.scenes)]
    before = now = total = 0
    least = 9.0
    for im in pictures:
        first = stored(encoded(im, quality=90))
        for _ in range(args.copies):
            other = stored(copy_of(im, rng))
            hashed, coloured = flagged(first, other)
            total += 1
            before += hashed
            now += coloured
            if hashed:
                least = min(least, kept(first, other))
    rows.append((f"copies of {len(pictures)} pictures x {args.copies}", f"{before} of {total} found",
                 f"{now} of {total} found (least share kept {least:.2f}, needed {near_hash.COLOUR_KEPT})"))

    distinct = [stored(encoded(scene((480, 360), 10_000 + seed), quality=90))
                for seed in range(args.distinct)]
    pairs = [flagged(a, b) for a, b in combinations(distinct, 2)]
    rows.append((f"distinct scenes ({len(pairs):,} pairs)", f"{sum(p[0] for p in pairs)} flagged",
                 f"{sum(p[1] for p in pairs)} flagged"))

    lines = [f"# Near-duplicates: colour variants and re-saves ({dt.date.today()})", "",
             f"Hash within {near_hash.NEAR} bits (before) and, now, colour shares agreeing too "
             f"(a colour over {near_hash.COLOUR_MATTERS:.0%} of either picture keeps "
             f"{near_hash.COLOUR_KEPT:.0%} of its share within one step: {near_hash.TONE_L_STEP:g} L, "
             f"{near_hash.TONE_AB_STEP:g} a/b).", "",
             "| pairs | hash alone (before) | hash and colours (now) |", "| --- | --- | --- |"]
    lines += [f"| {what} | {was} | {is_now} |" for what, was, is_now in rows]
    lines += ["", f"Command: `python3 bench/near_colour.py --scenes {args.scenes} --copies {args.copies} "
              f"--distinct {args.distinct}`"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
