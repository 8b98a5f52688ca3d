"""What a process pays to start the app: every gunicorn worker, CLI command and make run imports
avenue and calls ``create_app``, and the slow tests' gunicorn workers spent two thirds of their
CPU doing so (py-spy over the slow part). Work only some requests need is done when first
needed, not at every start: these tests fail when it comes back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Imported only by the requests that need them (docs/contributing.md, "Where the time goes").
NOT_AT_START = (
    "numpy",        # the JPEG XL encode and the versions' heat map (about 70 ms)
    "imagecodecs",  # JPEG XL, opt-in
    # The OpenAPI document: every wing's paths, each declared model's schema (about 120 ms).
    "avenue.apidoc.openapi", "avenue.apidoc.common", "avenue.apidoc.components",
)

STARTED = """
import json, sys
import werkzeug.security
hashed = []
real = werkzeug.security.generate_password_hash
werkzeug.security.generate_password_hash = lambda *a, **k: hashed.append(1) or real(*a, **k)
from avenue import create_app
create_app()
print(json.dumps({"modules": sorted(sys.modules), "hashes": len(hashed)}))
"""


def started() -> dict:
    env = {"AVENUE_ENV": "development", "MONGO_URI": "mongodb://127.0.0.1:9/start-cost",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", STARTED], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_starting_the_app_imports_nothing_only_some_requests_need():
    modules = set(started()["modules"])
    assert "avenue.http" in modules  # the app did start
    assert [name for name in NOT_AT_START if name in modules] == []


def test_starting_the_app_hashes_no_password():
    """The unknown-email login's comparison hash is a constant (avenue/auth/service.py), not an
    scrypt at import (100 ms of every start)."""
    assert started()["hashes"] == 0
