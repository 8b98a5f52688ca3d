"""bench/scale.py keeps working: its seed matches the app's counters, its measurements measure.

The benchmark runs in a child process, as the script it is: tests never import ``bench/``
(``bench/`` imports ``tests.support``; tests/unit/test_layout.py checks that the dependency goes
one way). The child prints what the test checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from avenue.media import Buckets

ROOT = Path(__file__).resolve().parents[2]

# Seeds the test's database (on mongomock: one of the child's own) and reports what the app sees.
SEED = """
import json, sys, types
sys.path.insert(0, "bench")
import mongomock, pymongo
import scale
from avenue.db import get_db, get_mongo
from avenue.media import AppMedia, Buckets
from avenue.media.effects.counters import count_bucket
from avenue.media.effects.counters import counters as media_counters
from avenue.media.upkeep.fsck import check
from avenue.status import reconcile
from tests.helpers import make_app
from tests.support.records import IMAGE, images

uri, db_name = sys.argv[1:3]
if "mongomock" in uri:
    mongomock.MongoClient.options = types.SimpleNamespace(timeout=None)
    shared = mongomock.MongoClient()
    client_class = lambda *args, **kwargs: shared
else:
    client_class = pymongo.MongoClient
app = make_app((client_class, uri), db_name)
with app.app_context():
    get_mongo().ensure_indexes()
    db = get_db()
    seeded = scale.seed(db, 0, 1, 8, "owner-1", lambda text: None)
    fields = ("files", "originals", "bytes", "chunks")
    counters = {bucket: [{k: media_counters(db)[bucket][k] for k in fields},
                         {k: count_bucket(db, bucket, chunk_index=True)[k] for k in fields}]
                for bucket in (Buckets.PRODUCTS, Buckets.UPLOADS, Buckets.BUILDER)}
    drift = reconcile(db, app.config, AppMedia.of(app).core.referrers(db))["products"]["drift"]
    report = check(db)
    seeded_original = {**IMAGE, "filename": {"$ne": "template.jpg"}}
    upload = images(db, Buckets.UPLOADS).find_one(seeded_original)["metadata"]
    media = images(db, Buckets.BUILDER).find_one(seeded_original)["metadata"]
print(json.dumps({"seeded": seeded, "counters": counters, "drift": sorted(set(drift.values())),
                  "checked": report.files_checked, "findings": [str(f) for f in report.findings],
                  "summary": report.summary_line(), "upload": upload, "media": media,
                  "seed_folders": list(scale.SEED_FOLDERS)}, default=str))
"""


def bench_scale(code: str, *args: str) -> object:
    """Run ``code`` with bench/scale.py imported as ``scale``; the JSON it printed last."""
    run = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_the_seed_keeps_the_counters_as_the_app_does_and_passes_fsck(app, backend, db_name):
    found = bench_scale(SEED, backend[1], db_name)
    seeded = found["seeded"]
    # One batch of 8 images: 6 product photos (3 products), 1 upload, 1 library image; and
    # the three templates the seed copies.
    assert (seeded["images"], seeded["products"], seeded["files"]) == (8, 3, 8 * 9 + 27)
    assert seeded["per_bucket"] == {Buckets.PRODUCTS: 6 * 9, Buckets.UPLOADS: 9, Buckets.BUILDER: 9}
    for bucket in (Buckets.PRODUCTS, Buckets.UPLOADS, Buckets.BUILDER):
        held, counted = found["counters"][bucket]
        assert held == counted
    assert found["drift"] == [0]
    # Shaped as the app writes: every byte, length, sha256 and link checks out.
    assert found["checked"] == seeded["files"] and found["findings"] == [], found["summary"]
    assert found["upload"]["owner"] == "owner-1"
    assert found["upload"]["key"].startswith("owner-1:public:")
    assert found["media"]["folder"] in found["seed_folders"] and "seeded" in found["media"]["tags"]


def test_a_measured_command_reports_its_peak_memory_and_a_timeout():
    code = """
import json, sys
sys.path.insert(0, "bench")
import scale
big = scale.run_measured([sys.executable, "-c", "x = bytearray(60 * 2**20); print('done')"], {}, 30)
slow = scale.run_measured([sys.executable, "-c", "import time; time.sleep(30)"], {}, 0.5)
print(json.dumps([big, slow]))
"""
    big, slow = bench_scale(code)
    assert big["finished"] and big["exit"] == 0 and big["peak_rss_mb"] >= 60 and "done" in big["output"]
    assert not slow["finished"] and slow["seconds"] < 10


def test_percentiles_pick_from_the_sorted_values():
    code = """
import json, sys
sys.path.insert(0, "bench")
import scale
values = [float(v) for v in range(1, 101)]
print(json.dumps([scale.percentile(values, 50), scale.percentile(values, 99), scale.percentile([5.0], 99)]))
"""
    median, p99, single = bench_scale(code)
    assert median in (50.0, 51.0) and p99 == 99.0
    assert single == 5.0
