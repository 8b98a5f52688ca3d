"""The ops dashboard's pure formatting (avenue/console/static/js/opsformat.js), run under node:
percentages, the charts' time axes, the uploads summary and the database card's facts."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "avenue" / "console" / "static" / "js" / "opsformat.js"
NODE = shutil.which("node") or shutil.which("nodejs")


def run(expression: str):
    """The JSON value of ``expression``, evaluated under node with the module imported as ``f``."""
    if NODE is None:
        pytest.fail("node is missing: run `make node` (apt-get install -y nodejs)")
    script = f"import * as f from {json.dumps(MODULE.as_uri())};\nconsole.log(JSON.stringify({expression}));"
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True,
                          timeout=60, check=False, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def seconds(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp())


def test_percentages_over_999_read_as_over_999():
    assert run("[f.percentText(35611370000), f.percentText(1000), f.percentText(999)]") == [
        "over 999 %", "over 999 %", "999 %"]
    assert run("[f.percentText(72.456), f.percentText(0), f.percentText(null)]") == [
        "72.5 %", "0 %", "not known"]


ONE_SAMPLE = {"range": "7d", "from": "2026-11-16T06:00:00Z", "to": "2026-11-23T06:00:00Z",
              "bar_seconds": 86400,
              "points": [{"at": "2026-11-23T05:00:00Z", "used_bytes": 5}],
              "uploads": [{"start": f"2026-11-{day}T00:00:00Z", "count": 0} for day in range(16, 24)],
              "uploads_counted_since": "2026-11-01T00:00:00Z"}


def test_the_storage_axis_is_the_chosen_range_even_with_one_sample():
    start, end = run(f"f.timeRange({json.dumps(ONE_SAMPLE)})")
    assert (start, end) == (seconds("2026-11-16T06:00:00Z"), seconds("2026-11-23T06:00:00Z"))
    assert end - start == 7 * 86400
    assert run(f"f.timeRange({json.dumps({**ONE_SAMPLE, 'points': []})})") == [start, end]


def test_upload_bars_sit_in_their_day_and_span_the_range():
    bars = run(f"f.uploadBars({json.dumps(ONE_SAMPLE)})")
    assert bars["range"] == [seconds("2026-11-16T00:00:00Z"), seconds("2026-11-24T00:00:00Z")]
    assert bars["times"][0] == seconds("2026-11-16T12:00:00Z") and len(bars["counts"]) == 8


def test_the_uploads_summary_says_when_counting_began():
    assert run(f"f.uploadsSummary({json.dumps(ONE_SAMPLE)})") == "0 upload(s) in this range."
    later = {**ONE_SAMPLE, "uploads": [{"start": "2026-11-22T00:00:00Z", "count": None},
                                       {"start": "2026-11-23T00:00:00Z", "count": 2}],
             "uploads_counted_since": "2026-11-23T05:00:00Z"}
    text = run(f"f.uploadsSummary({json.dumps(later)})")
    assert text.startswith("2 upload(s) in this range. Uploads are counted since ")
    assert text.endswith("earlier days show no bar.")


def test_the_database_card_shows_what_is_known_and_says_why_not_once():
    unmeasured = {"database_size": {"data_bytes": None, "storage_bytes": None, "index_bytes": None,
                                    "data_dir": None, "unmeasured_because": "Because."},
                  "chunk_indexes": {"ok": True, "missing": []}, "buckets": {}}
    facts = run(f"f.databaseFacts({json.dumps(unmeasured)})")
    assert facts["big"] == "Size not measured" and facts["lines"] == ["Because."]
    assert facts["chunkLine"] == "Chunk indexes: present in every bucket" and facts["bytes"] is None
    assert "unknown" not in json.dumps(facts)
    folder = {**unmeasured, "database_size": {"data_dir": {"path": "/var/db", "exists": True, "files": 3,
                                                           "bytes_on_disk": 2048}},
              "chunk_indexes": {"ok": False, "missing": ["uploads_b"]},
              "buckets": {"uploads_b": {"alias": "uploads"}}}
    facts = run(f"f.databaseFacts({json.dumps(folder)})")
    assert facts["big"] == "2.0 KB" and facts["lines"] == ["On disk: 3 file(s) in /var/db"]
    assert facts["chunkLine"] == "Chunk index missing in: uploads" and facts["chunksOk"] is False
    stats = {**unmeasured, "database_size": {"data_bytes": 1024, "storage_bytes": 4096, "index_bytes": 512}}
    facts = run(f"f.databaseFacts({json.dumps(stats)})")
    assert facts["big"] == "4.0 KB" and facts["lines"] == ["Data 1.0 KB, indexes 512 bytes, 4.0 KB allocated"]
