"""bench/scale.py keeps working: its seed matches the app's counters, its measurements measure."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from avenue.media import BUILDER, PRODUCTS, UPLOADS, media_counters
from avenue.media.counters import count_bucket
from avenue.ops.fsck import check
from avenue.status import reconcile

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_seed_keeps_the_counters_as_the_app_does_and_passes_fsck(app, db):
    scale = load_bench()
    seeded = scale.seed(db, 0, 1, 8, "owner-1", lambda text: None)
    # One batch of 8 images: 6 product photos (3 products), 1 upload, 1 library image; and
    # the three templates the seed copies.
    assert (seeded["images"], seeded["products"], seeded["files"]) == (8, 3, 8 * 9 + 27)
    assert seeded["per_bucket"] == {PRODUCTS: 6 * 9, UPLOADS: 9, BUILDER: 9}
    for bucket in (PRODUCTS, UPLOADS, BUILDER):
        held = media_counters(db)[bucket]
        counted = count_bucket(db, bucket, chunk_index=True)
        assert {k: held[k] for k in ("files", "originals", "bytes", "chunks")} == {
            k: counted[k] for k in ("files", "originals", "bytes", "chunks")}
    drift = reconcile(db, app.config)["products"]["drift"]
    assert set(drift.values()) == {0}
    # Shaped as the app writes: every byte, length, sha256 and link checks out.
    report = check(db)
    assert report.files_checked == seeded["files"] and report.findings == [], report.summary_line()
    seeded_original = {"metadata.role": "original", "filename": {"$ne": "template.jpg"}}
    upload = db[f"{UPLOADS}.files"].find_one(seeded_original)
    assert upload["metadata"]["owner"] == "owner-1"
    assert upload["metadata"]["key"].startswith("owner-1:public:")
    media = db[f"{BUILDER}.files"].find_one(seeded_original)
    assert media["metadata"]["folder"] in scale.SEED_FOLDERS and "seeded" in media["metadata"]["tags"]


def test_a_measured_command_reports_its_peak_memory_and_a_timeout():
    scale = load_bench()
    big = scale.run_measured([sys.executable, "-c", "x = bytearray(60 * 2**20); print('done')"], {}, 30)
    assert big["finished"] and big["exit"] == 0 and big["peak_rss_mb"] >= 60 and "done" in big["output"]
    slow = scale.run_measured([sys.executable, "-c", "import time; time.sleep(30)"], {}, 0.5)
    assert not slow["finished"] and slow["seconds"] < 10


def test_percentiles_pick_from_the_sorted_values():
    scale = load_bench()
    values = [float(v) for v in range(1, 101)]
    assert scale.percentile(values, 50) in (50.0, 51.0) and scale.percentile(values, 99) == 99.0
    assert scale.percentile([5.0], 99) == 5.0
