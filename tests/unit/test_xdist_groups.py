"""``--dist loadgroup`` keeps an ``xdist_group`` on one worker (tests/support/xdist_groups.py):
the console browser modules count on it to start one Chromium and one server each."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GROUPED = '''
import pytest

pytestmark = pytest.mark.xdist_group("{group}")

@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    pass
'''

LOOSE = '''
import pytest

@pytest.mark.parametrize("i", range(12))
def test_loose(i):
    pass
'''


def test_a_group_runs_on_one_worker_and_the_others_spread(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.support.xdist_groups"]\n')
    (tmp_path / "test_first.py").write_text(GROUPED.format(group="pictures"))
    (tmp_path / "test_second.py").write_text(GROUPED.format(group="pictures"))
    (tmp_path / "test_third.py").write_text(GROUPED.format(group="links"))
    (tmp_path / "test_loose.py").write_text(LOOSE)
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                           "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    workers = collections.defaultdict(set)  # module -> the workers that ran its tests
    ran = re.findall(r"^\[(gw\d)\] \[ *\d+%\] PASSED ([^:]+)::", done.stdout, re.MULTILINE)
    for worker, module in ran:
        workers[module].add(worker)
    assert len(ran) == 30, done.stdout
    # Both modules of "pictures" on one worker, "links" on one (the loose tests go anywhere).
    assert len(workers["test_first.py"] | workers["test_second.py"]) == 1, dict(workers)
    assert len(workers["test_third.py"]) == 1, dict(workers)
