#!/usr/bin/env python3
"""What comparing two versions of a 12 MP photo costs: the heat map made once, then found.

In this process, on mongomock (the figures are the media package's work: reading both
versions' bytes, drawing each at most 512 px, the difference and its PNG, storing it), for the
test corpus's 12 MP JPEG in the builder library replaced by the same photo with a patch
brightened (another 12 MP JPEG of the same size):

- **heat map, first time**: ``Library.compare_versions`` with nothing stored (both 12 MP JPEGs
  read and decoded at an eighth of their size, the difference, the PNG, stored in the
  renditions bucket);
- **heat map, stored**: the same call again (found by its unique index, read);
- **pictures alone**: ``difference.small`` of both JPEGs and ``difference.heat_map``, no database.

Medians of ``--rounds`` (each round a fresh pair of versions, so nothing is found stored).

    python3 bench/versions.py                 # 5 rounds
    python3 bench/versions.py --rounds 9 --out bench/results/versions-2026-11-25.md
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import mongomock  # noqa: E402
from avenue.media import Buckets, Library, Media  # noqa: E402
from avenue.media.ingest import difference  # noqa: E402
from avenue.media.ingest.images import Limits  # noqa: E402
from avenue.media.store.options import UploadOptions  # noqa: E402
from bson import ObjectId  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402

from data import photo_12mp, with_comment  # noqa: E402


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def brightened(jpeg: bytes) -> bytes:
    """The same photo with its middle ninth brighter, as a 12 MP JPEG of the same size."""
    with Image.open(io.BytesIO(jpeg)) as opened:
        picture = opened.convert("RGB")
    w, h = picture.size
    box = (w // 3, h // 3, 2 * w // 3, 2 * h // 3)
    picture.paste(ImageEnhance.Brightness(picture.crop(box)).enhance(1.6), box)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=88)
    return out.getvalue()


def run(photo: bytes, rounds: int) -> dict[str, list[float]]:
    db = mongomock.MongoClient()["bench_versions"]
    other = brightened(photo)
    times: dict[str, list[float]] = {"first": [], "stored": [], "pictures": []}
    library = Library(db, Buckets.BUILDER, Media())
    for n in range(rounds):
        stored = library.storing.store_with([Library.Upload("photo.jpg", with_comment(photo, f"round {n}"))],
                                    UploadOptions(owner="bench", kind="builder"))
        image_id: ObjectId = stored[0].image.id
        before = library.versions(image_id)
        assert before is not None
        library.replace(image_id, Library.Upload("photo.jpg", with_comment(other, f"round {n}")))
        listed = library.versions(image_id)
        assert listed is not None and len(listed) == 2
        a, b = listed[1].id, listed[0].id
        start = time.perf_counter()
        first = library.compare_versions(image_id, a, b)
        times["first"].append(_ms(start))
        start = time.perf_counter()
        again = library.compare_versions(image_id, a, b)
        times["stored"].append(_ms(start))
        assert first is not None and again is not None and first[1] == again[1]
        start = time.perf_counter()
        difference.heat_map(difference.small(photo, Limits.for_stored(len(photo))),
                            difference.small(other, Limits.for_stored(len(other))))
        times["pictures"].append(_ms(start))
        share = first[0].share
    print(f"share changed: {share:.3f}, heat map {first[0].width}x{first[0].height}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-versions-") as folder:
        photo = photo_12mp(ROOT, Path(folder)).read_bytes()
        with Image.open(io.BytesIO(photo)) as opened:
            size = opened.size
        times = run(photo, args.rounds)
    lines = [f"Two versions of a {size[0]}x{size[1]} JPEG, medians of {args.rounds} rounds:", "",
             "| step | median ms | min ms | max ms |", "| --- | ---: | ---: | ---: |"]
    names = {"first": "heat map, first time (read, draw both at 512 px, diff, PNG, store)",
             "stored": "heat map, stored (found and read)", "pictures": "pictures alone (no database)"}
    for key, label in names.items():
        values = times[key]
        lines.append(f"| {label} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
