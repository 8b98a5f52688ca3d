"""bench/migrate.py keeps working: its old-layout seed is what migrate-media converts, and its
checks of the migrated store pass.

The benchmark runs in a child process, as the script it is (tests never import ``bench/``:
tests/unit/test_layout.py), with ``--quick`` (200 images on a SecantusDB of its own); it prints
its checks as JSON, last.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_quick_run_migrates_the_seeded_old_store_and_every_check_passes():
    run = subprocess.run([sys.executable, "bench/migrate.py", "--quick", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["ok"] and all(found["ok"].values()), {k: v for k, v in found["ok"].items() if not v}
    seeded = found["seeded"]
    # Every kind of head was there to migrate: chunkless ones, and some of length 0.
    assert seeded["images"] == 200 and seeded["replaced"] > 0 and seeded["zero"] > 0
    assert found["checks"]["read"] == 200 and found["checks"]["invalid_count"] == 0
