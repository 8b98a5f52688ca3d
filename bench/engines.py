#!/usr/bin/env python3
"""The image engines' paths with this checkout's code against another's (issue 42), in one run:
the same work timed alternately, each round in a fresh process per checkout, and a digest of
every output's bytes (the same digest: the same bytes).

Three kinds of work on 2 libvips sources (the 12 MP photo, the EXIF-rotated photo) and 2
Pillow ones (the transparent PNG, the CMYK JPEG): **renditions**, 20 renditions on request
(``render_spec``: 5 specs each, WebP); **uploads**, each source's variants (``variants.render``,
once as an upload makes them, once around a given point inside a named og crop); **edits**, one
edit of each (``edits.apply``: a quarter turn, a flip, a crop). No database, no HTTP.

    .venv/bin/python bench/engines.py --code /tmp/before     # git archive REF | tar -x -C /tmp/before
    .venv/bin/python bench/engines.py --code /tmp/before --rounds 7 --only renditions
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
KINDS = ("renditions", "uploads", "edits")
SOURCES = ("photo_12mp.jpg", "photo_exif_rotated.jpg", "alpha.png", "cmyk.jpg")
SPECS = ("w_320", "w_512,h_512,q_80", "w_800", "w_300,h_300,fit_cover", "w_1600")


def work(kind: str, good: Path, digest: hashlib._Hash) -> Callable[[], None]:
    """One pass of ``kind`` on the images in ``good`` with the code first on ``sys.path``, every
    output fed to ``digest``."""
    from avenue.media.ingest import edits, variants
    from avenue.media.ingest.focal import FocalPoint
    from avenue.media.ingest.images import Limits, prepare
    from avenue.media.ingest.render import render_spec
    from avenue.media.transform import parse

    sources = [(good / name).read_bytes() for name in SOURCES]
    stored = Limits.for_stored(50 * 2**20)

    def renditions() -> None:
        for data in sources:
            for spec in SPECS:
                digest.update(render_spec(data, stored, parse(spec).spec, "webp", FocalPoint(0.3, 0.6)).data)

    def uploads() -> None:
        for data in sources:
            inside = (0.1, 0.1, 0.6, 0.5)  # a named og crop
            for made in (variants.render(prepare(data, Limits())),
                         variants.render(prepare(data, Limits()), FocalPoint(0.2, 0.7), og_box=inside)):
                for rendition in made:
                    digest.update(rendition.data)

    def edit() -> None:
        for data in sources:
            digest.update(edits.apply(data, edits.Edits(90, True, False, edits.Box(0.1, 0.2, 0.5, 0.6))))

    return {"renditions": renditions, "uploads": uploads, "edits": edit}[kind]


def measure(code: Path, kind: str, good: Path, repeat: int) -> None:
    """In this process: the median wall and CPU time (every thread's: libvips and the variants'
    pool run several) of ``repeat`` passes after a warm-up, as JSON on stdout."""
    sys.path.insert(0, str(code))
    digest = hashlib.sha256()
    one = work(kind, good, digest)
    import avenue

    assert Path(avenue.__file__).resolve().is_relative_to(code), avenue.__file__
    one()  # the warm-up, and the digest of one pass
    made = digest.hexdigest()[:16]
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        one()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(json.dumps({"wall": statistics.median(wall), "cpu": statistics.median(cpu), "digest": made}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="the other checkout (a git archive)")
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per checkout and kind")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes in each process")
    parser.add_argument("--only", choices=KINDS, action="append")
    parser.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--good", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.code, args.measure, args.good, args.repeat)
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.fixtures import location

    good = location() / "images" / "good"  # this checkout's corpus, read by both
    print("| work | wall before (s) | wall after (s) | after / before | CPU before (s) | CPU after (s) "
          "| after / before | same bytes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for kind in args.only or KINDS:
        runs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
        for _ in range(args.rounds):  # alternately, so a busy moment falls on both
            for side, code in (("before", args.code.resolve()), ("after", ROOT)):
                command = [sys.executable, __file__, "--code", str(code), "--measure", kind,
                           "--good", str(good), "--repeat", str(args.repeat)]
                out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=code)
                runs[side].append(json.loads(out.stdout.splitlines()[-1]))
        cells = []
        for clock in ("wall", "cpu"):
            before, after = (statistics.median(float(str(run[clock])) for run in runs[side])
                             for side in ("before", "after"))
            cells.append(f"{before:.3f} | {after:.3f} | {after / before:.2f}")
        same = {str(r["digest"]) for r in runs["before"]} == {str(r["digest"]) for r in runs["after"]}
        print(f"| {kind} | {' | '.join(cells)} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
