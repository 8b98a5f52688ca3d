"""The test tree keeps its shape: every module in the folder of its kind, unit tests without a
database, and the dependency between tests/ and bench/ going one way (bench/ imports
``tests.support``; nothing under tests/ imports, loads or runs bench/ in-process)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import source
from tests.support.subjects import DATABASE_FIXTURES

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
KINDS = ("unit", "api", "system", "model", "media")


def python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def test_every_test_module_is_in_the_folder_of_its_kind():
    misplaced = [str(path.relative_to(ROOT)) for path in TESTS.rglob("test_*.py")
                 if path.relative_to(TESTS).parts[0] not in KINDS]
    assert misplaced == [], ("sort these into tests/unit, tests/api, tests/system, tests/model or "
                             "tests/media (docs/contributing.md)")


def test_media_tests_sit_beside_what_they_test():
    """tests/media/ mirrors avenue/media/: tests/media/store/test_originals.py tests
    avenue/media/store/originals.py (or the package avenue/media/store/originals/)."""
    core = ROOT / "avenue" / "media"
    astray = []
    for path in sorted((TESTS / "media").rglob("test_*.py")):
        inside = path.relative_to(TESTS / "media")
        subject = core / inside.parent / inside.name.removeprefix("test_").removesuffix(".py")
        if not (subject.with_suffix(".py").is_file() or (subject / "__init__.py").is_file()):
            astray.append(str(inside))
    assert astray == [], "name each tests/media module after the avenue/media/ module it tests, in its folder"


def test_unit_tests_ask_for_no_database():
    asking = []
    for path in python_files(TESTS / "unit"):
        for node in source.nodes(path):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                wanted = {arg.arg for arg in node.args.args} & DATABASE_FIXTURES
                if wanted:
                    asking.append(f"{path.name}::{node.name} {sorted(wanted)}")
    assert asking == [], "tests that need the app on a database belong in tests/api"


def test_nothing_under_tests_imports_or_loads_bench():
    bench_modules = {path.stem for path in (ROOT / "bench").glob("*.py")}
    found = []
    for path in python_files(TESTS):
        for node in source.nodes(path):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                    "spec_from_file_location", "run_path", "SourceFileLoader"):
                names = ["bench" for arg in ast.walk(node) if isinstance(arg, ast.Constant)
                         and isinstance(arg.value, str) and "bench" in arg.value]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "bench" or top in bench_modules:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert found == [], "tests run a benchmark as a script (a subprocess), never import it"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file at ``path``."""
    found = []
    for node in source.nodes(path):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_bench_reaches_the_tests_only_through_tests_support():
    found = [f"{path.name}:{line} {name}" for path in python_files(ROOT / "bench")
             if "work" not in path.relative_to(ROOT / "bench").parts
             for line, name in imports(path)
             if name.split(".")[0] == "tests" and not name.startswith("tests.support")]
    assert found == []


def test_no_test_module_imports_another():
    """What two test modules share lives in tests/support (or a folder's conftest.py), so a
    test module can be moved, split or deleted without breaking another."""
    kinds = tuple(f"tests.{kind}." for kind in KINDS)
    found = [f"{path.relative_to(ROOT)}:{line} {name}" for path in python_files(TESTS)
             for line, name in imports(path) if name.startswith(kinds)]
    assert found == [], "move what is shared into tests/support"


# The media core's doors (avenue/media/__init__.py, maintenance.py, wiring.py): what the app's
# own modules may import of it (the media-interface contract in pyproject.toml).
MEDIA_DOORS = {"avenue.media", "avenue.media.maintenance", "avenue.media.wiring"}
# Issue 74: tests/api and tests/system reach the media core through its doors only, so a
# rename inside avenue/media/ breaks no test named after a feature; tests/unit and tests/media
# (which mirrors avenue/media/) may import the inside they test. A test whose subject is an
# inner module moves to tests/media beside it; a feature test that only seeded or faulted
# through the insides goes through the doors. Two browser modules reach past them (63 modules
# at issue 74), each for what no public path does: the ops dashboard's 30 days of upload counts
# written at past hours (effects.uploads), and the served app's look-alike lookup slowed so no
# answer waits for it (store.near_duplicates). A new one never joins them.
PAST_THE_DOORS = {"system/console/conftest.py", "system/console/test_products_and_ops.py"}


def _reaches_past_the_media_doors(path: Path) -> bool:
    for node in source.nodes(path):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                 [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        if any(name.startswith("avenue.media.") and name not in MEDIA_DOORS for name in names):
            return True
    return False


def test_api_and_system_tests_reach_the_media_core_only_through_its_doors():
    reaching = {str(path.relative_to(TESTS)) for kind in ("api", "system")
                for path in python_files(TESTS / kind) if _reaches_past_the_media_doors(path)}
    assert reaching - PAST_THE_DOORS == set(), "import these through avenue.media or its maintenance door"
    assert PAST_THE_DOORS - reaching == set(), "these go through the doors now: strike them off"
