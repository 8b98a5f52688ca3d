"""A short soak (the long one is `python3 bench/soak.py`): mixed traffic and gc at once, no errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_a_short_soak_of_mixed_traffic_and_gc_has_no_errors(tmp_path):
    spec = importlib.util.spec_from_file_location("soak", Path(__file__).parents[2] / "bench" / "soak.py")
    soak = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = soak  # dataclasses look their module up there
    spec.loader.exec_module(soak)
    result = soak.soak(20, clients=3, folder=str(tmp_path))
    assert result["errors"] == []
    assert result["requests"]["upload"] > 0 and result["requests"]["read"] > 0
    assert result["requests"]["gc"] > 0
