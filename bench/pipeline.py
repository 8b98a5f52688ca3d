#!/usr/bin/env python3
"""The upload pipeline alone, libvips against Pillow, on the fixtures and the benchmark photos.

For each JPEG the media core sends to libvips: ``prepare`` + ``render`` (validation, metadata
stripping, the 8 renditions; no database) with the shipped pipeline, and with the Pillow one it
replaced (the same code with libvips switched off, ``images._libvips_decodes`` returning
False). Each case runs in a fresh process: the median time of 5 runs after a warm-up, and the
process's peak RSS (``VmHWM``) above its RSS after the imports (the first upload) and above its
RSS after that warm-up upload (later ones).

    .venv/bin/python bench/pipeline.py          # prints three markdown tables
    .venv/bin/python bench/pipeline.py --critical-path   # the third alone

The second table is why Pillow still encodes the renditions: the same frames (libvips's
gallery and og of the 12 MP photo) encoded at the same settings by each library's wheel. The
third is a 12 MP upload's critical path against the upload target's baseline, in one run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import median_ms

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def fixtures() -> Path:
    """The test corpus's good images: ../shared/fixtures, else the corpus tests/support/fixtures.py makes."""
    sys.path.insert(0, str(ROOT))
    from tests.support.fixtures import location

    return location() / "images" / "good"


CASES = ["photo_12mp.jpg", "photo_exif_rotated.jpg", "progressive.jpg", "grayscale.jpg", "panorama.jpg"]
BENCH_DATA = ["img100k.jpg", "img2m.jpg"]  # made by bench/run.py in bench/work/data


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(path: str, pipeline: str) -> None:
    """Run one case in this process and print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    from avenue.media.ingest import images
    from avenue.media.ingest.images import Limits, prepare
    from avenue.media.ingest.variants import render

    if pipeline == "pillow":
        images._libvips_decodes = lambda *args: False  # type: ignore[assignment]
    data = Path(path).read_bytes()
    limits = Limits(max_bytes=64 * 2**20)

    def once() -> list:
        return render(prepare(data, limits))

    # Two figures: the peak above the process right after its imports (what the first upload
    # costs, caches and pools included), and the peak above its RSS after a warm-up upload
    # (what each later one adds; allocators that keep freed memory look better here).
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS (Linux ≥ 4.0)
    imported = _kb("VmRSS")
    once()
    first_peak = _kb("VmHWM") - imported
    Path("/proc/self/clear_refs").write_text("5")
    before = _kb("VmRSS")
    times = []
    for _ in range(5):
        start = time.perf_counter()
        out = once()
        times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"ms": statistics.median(times), "peak_mb": (_kb("VmHWM") - before) / 1024,
                      "first_mb": first_peak / 1024,
                      "bytes": sum(len(r.data) for r in out)}))


def encoders() -> None:
    """Median ms of encoding the 12 MP photo's gallery and og frames with each library."""
    import io

    sys.path.insert(0, str(ROOT))
    from avenue.media.ingest import vips
    from avenue.media.ingest.focal import crop_box
    from avenue.media.ingest.images import Limits, prepare

    base = prepare((fixtures() / "photo_12mp.jpg").read_bytes(), Limits()).pixels.image
    frames = {"gallery 1600x1200": vips.resize(base, 1600, 1200),
              "og 1200x630": vips.resize(base, 1200, 630, box=crop_box(base.width, base.height, 1200, 630))}

    def ms(fn) -> float:
        return median_ms(fn, 5)

    print("\n| frame, format | Pillow ms | libvips ms | bytes (Pillow / libvips) |")
    print("| --- | ---: | ---: | --- |")
    for name, frame in frames.items():
        pil = vips.to_pillow(frame)
        for fmt, pil_args, vips_call in (
                ("WebP q82 method 4", ("WEBP", {"quality": 82, "method": 4}),
                 lambda f=frame: f.webpsave_buffer(Q=82, effort=4, keep="none")),
                ("JPEG q85 optimized progressive",
                 ("JPEG", {"quality": 85, "optimize": True, "progressive": True}),
                 lambda f=frame: f.jpegsave_buffer(Q=85, optimize_coding=True, interlace=True, keep="none"))):
            def save(pil=pil, pil_args=pil_args) -> bytes:
                out = io.BytesIO()
                pil.save(out, pil_args[0], **pil_args[1])
                return out.getvalue()
            print(f"| {name}, {fmt} | {ms(save):.0f} | {ms(vips_call):.0f} | "
                  f"{len(save()):,} / {len(vips_call()):,} |")


def critical_path() -> None:
    """Why the 12 MP upload target (≤ 0.50x bare Pillow draft + reducing_gap) is out of reach
    on 2 cores while the WebP effort stays at method 4: the two steps nothing can run beside,
    timed in the same run as the baseline. The decode (libjpeg, one thread) must finish before
    any rendition starts, and the gallery's WebP encode (libwebp, one thread) is the longest
    rendition; the upload waits for both in turn whatever the other core does."""
    import io

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(BENCH))
    from avenue.media.ingest import vips
    from avenue.media.ingest.images import Limits, prepare
    from avenue.media.ingest.variants import VARIANTS, _fit_size, render

    from upload import time_pillow

    data = (fixtures() / "photo_12mp.jpg").read_bytes()
    prepared = prepare(data, Limits())
    base = prepared.pixels.image
    gallery = vips.to_pillow(vips.resize(base, *_fit_size(base.width, base.height, *VARIANTS["gallery"][:2])))

    def ms(fn) -> float:
        return median_ms(fn, 7)

    def webp(method: int) -> float:
        def save() -> bytes:
            out = io.BytesIO()
            gallery.save(out, "WEBP", quality=82, method=method)
            return out.getvalue()
        return ms(save)

    baseline = statistics.median(time_pillow(data, draft=True, repeat=7))
    decode = ms(lambda: prepare(data, Limits()))
    rows = [("bare Pillow draft + reducing_gap (the baseline)", baseline),
            ("the target: 0.50x the baseline", baseline / 2),
            ("decode + validate + resize to the rendition frame (`prepare`, libvips)", decode),
            ("the gallery's WebP encode, method 4 (the longest rendition)", webp(4)),
            ("all 8 renditions on two threads (`render`)", ms(lambda: render(prepared))),
            ("what if: the gallery's WebP encode at method 2 (+11 % bytes)", webp(2))]
    print("\n| a 12 MP upload's steps (median of 7) | ms | ÷ baseline |")
    print("| --- | ---: | ---: |")
    for label, value in rows:
        print(f"| {label} | {value:.0f} | {value / baseline:.2f}x |")
    serial = rows[2][1] + rows[3][1]
    print(f"| decode, then the gallery's WebP: the serial part | {serial:.0f} | {serial / baseline:.2f}x |")


def main() -> None:
    files = [fixtures() / name for name in CASES]
    files += [p for p in (BENCH / "work" / "data" / name for name in BENCH_DATA) if p.exists()]
    print("| image | Pillow ms | libvips ms | libvips ÷ Pillow | peak RSS MB, first upload: Pillow / libvips "
          "| peak RSS MB, later uploads: Pillow / libvips |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for path in files:
        row = {}
        for pipeline in ("pillow", "libvips"):
            out = subprocess.run([sys.executable, __file__, "--child", str(path), pipeline],
                                 capture_output=True, text=True, timeout=300, check=True)
            row[pipeline] = json.loads(out.stdout.strip().splitlines()[-1])
        p, v = row["pillow"], row["libvips"]
        print(f"| {path.name} | {p['ms']:.0f} | {v['ms']:.0f} | {v['ms'] / p['ms']:.2f}x | "
              f"{p['first_mb']:.1f} / {v['first_mb']:.1f} | {p['peak_mb']:.1f} / {v['peak_mb']:.1f} |")
    encoders()
    critical_path()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    elif sys.argv[1:] == ["--critical-path"]:
        critical_path()  # the third table alone
    else:
        main()
