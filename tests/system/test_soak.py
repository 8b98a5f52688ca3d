"""A short soak (the long one is `python3 bench/soak.py`): mixed traffic and gc at once, no errors.

The benchmark runs as the script it is: tests never import ``bench/`` (``bench/`` imports
``tests.support``; tests/unit/test_layout.py checks that the dependency goes one way).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_soak_of_mixed_traffic_and_gc_has_no_errors(tmp_path):
    run = subprocess.run([sys.executable, "bench/soak.py", "--minutes", str(20 / 60), "--clients", "3",
                          "--warm-up", "0", "--sample", "15", "--folder", str(tmp_path), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["errors"] == []
    assert result["requests"]["upload"] > 0 and result["requests"]["read"] > 0
    assert result["requests"]["gc"] > 0
