"""Which tests run on every backend (tests/support/subjects.py): the list names only modules
that exist and ask for a database, and the collection honours it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import source
from tests.support.subjects import DATABASE_FIXTURES, DATABASE_SUBJECTS

ROOT = Path(__file__).resolve().parents[2]


def asked_fixtures(path: Path) -> set[str]:
    """Every argument name of the module's functions (tests and fixtures alike)."""
    return {arg.arg for node in source.nodes(path)
            if isinstance(node, ast.FunctionDef) for arg in node.args.args}


def test_every_database_subject_is_a_module_that_asks_for_a_database():
    missing = sorted(name for name in DATABASE_SUBJECTS if not (ROOT / name).is_file())
    assert missing == [], "tests/support/subjects.py names modules that are gone"
    without = sorted(name for name in DATABASE_SUBJECTS
                     if not asked_fixtures(ROOT / name) & (DATABASE_FIXTURES | {"db_name"}))
    assert without == [], "these modules ask for no database: they run once, on mongomock"


def test_a_database_subject_runs_on_every_backend_and_any_other_module_once():
    subject, other = "tests/api/test_gc.py", "tests/api/test_alt_text.py"
    assert subject in DATABASE_SUBJECTS and other not in DATABASE_SUBJECTS
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", subject, other],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    ids = [line for line in listed if "::" in line]
    backends_of = {path: {name for name in ("mongomock", "secantus") if any(
        line.startswith(path) and name in line for line in ids)} for path in (subject, other)}
    assert backends_of == {subject: {"mongomock", "secantus"}, other: {"mongomock"}}


def test_make_test_fast_leaves_out_the_real_servers_half_alone():
    subject = "tests/api/test_gc.py"  # a database subject with no slow test

    def collected(*marks: str) -> list[str]:
        listed = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *marks,
             subject],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
        return [line for line in listed if "::" in line]

    every, fast = collected(), collected("-m", "not slow and not real_server")
    on_mongomock = [line for line in every if "mongomock" in line]
    assert fast == on_mongomock and len(on_mongomock) < len(every)


def skips_on_mongomock(test: ast.FunctionDef) -> bool:
    """Whether the test skips itself unless it is on a real server (``backend[0] is not
    pymongo.MongoClient`` or ``not threads_safe(db)``, the two checks the tests use)."""
    nodes = list(ast.walk(test))
    skips = any(isinstance(node, ast.Attribute) and node.attr == "skip" for node in nodes)
    compared = any(isinstance(node, ast.Compare) and any(
        isinstance(side, ast.Attribute) and side.attr == "MongoClient" for side in node.comparators)
        for node in nodes)
    asked = any(isinstance(node, ast.Call) and getattr(node.func, "id", "") == "threads_safe"
                for node in nodes)
    return skips and (compared or asked)


def marked_database(test: ast.FunctionDef) -> bool:
    return any(isinstance(decorator, ast.Attribute) and decorator.attr == "database"
               for decorator in test.decorator_list)


def test_a_test_that_only_a_real_server_runs_is_on_every_backend():
    """Outside the listed modules a test runs on mongomock alone: one that skips itself there
    would never run at all, unless it is marked ``database``."""
    lost = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path.relative_to(ROOT).as_posix() in DATABASE_SUBJECTS:
            continue
        for node in source.nodes(path):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") \
                    and skips_on_mongomock(node) and not marked_database(node):
                lost.append(f"{path.relative_to(ROOT)}::{node.name}")
    assert lost == [], "mark these @pytest.mark.database (or list their module in tests/support/subjects.py)"
