"""The code keeps the shape issue 42 gave it, read from the checkout: a small media facade, no
function too long to read at once, no two media modules of one name, the image engine chosen
in one place, and no hand-written OpenAPI module longer than it has come down to (each figure
is in docs/architecture.md; raising a bound is a decision for the docs, not a quiet edit here)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from tests.support import source

AVENUE = Path(__file__).resolve().parents[2] / "avenue"
# Names each door of the media core may export (docs/architecture.md "The media package"; issue
# 74 caps the three doors at 25 together). The library (avenue/media/__init__.py): 11 classes
# and constants; what a class takes and answers in is its attribute (Library.Stored,
# Library.EditsBody, Resumables.Busy, Deliveries.DayRange, Alt.Result, Buckets.PRODUCTS), not
# a name of the door. The maintenance door (ops, status, monitoring): 4, the jobs (Maintenance,
# run as AppMedia.maintenance, its class holding their reports), what status and monitoring
# read (Figures) and who refers to images. The wiring (the app factory, the gunicorn worker,
# the CDN hook): 4, init_app, index_setups, the media Route (blueprint, front door, jobs, what
# a worker's exit finishes) and the purge outbox.
FACADE_NAMES = 11
MAINTENANCE_NAMES = 4
WIRING_NAMES = 4
DOORS = {"__init__.py": FACADE_NAMES, "maintenance.py": MAINTENANCE_NAMES, "wiring.py": WIRING_NAMES}
FUNCTION_LINES = 80  # lines a function may span, decorators and docstring included
ENGINE_CHOICES = 1  # isinstance on an engine's frame type: engine.engine_of only
# Lines a module writing OpenAPI by hand may have (issue 42): the JSON bodies, the library's query
# and most answers come from their models (avenue/shapes.py); the document is split by wing.
OPENAPI_LINES = 400


def _modules(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def facade_names(door: str = "__init__.py") -> list[str]:
    """The names a door of the media core (a module of avenue/media/) declares in ``__all__``."""
    tree = source.tree(AVENUE / "media" / door)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"avenue/media/{door} declares no __all__")


def test_the_media_facade_exports_at_most_its_bound_and_no_renamed_alias():
    names = facade_names()
    assert len(names) <= FACADE_NAMES, f"{len(names)} names: {names}"
    tree = source.tree(AVENUE / "media" / "__init__.py")
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    renamed = [f"{alias.name} as {alias.asname}" for node in imports
               for alias in node.names if alias.asname and alias.asname in names]
    assert renamed == [], "export a name by its own name (issue 42: no renamed aliases)"


def test_each_door_of_the_media_core_exports_at_most_its_bound_and_no_whole_module():
    """A door lists names, never a module (a module export brings every name it has: issue 63),
    and each door's list is bounded."""
    import importlib
    import inspect

    for door, bound in DOORS.items():
        names = facade_names(door)
        assert len(names) <= bound, f"{door}: {len(names)} names"
        assert len(set(names)) == len(names), f"{door} lists a name twice"
        dotted = "avenue.media" if door == "__init__.py" else f"avenue.media.{door[:-3]}"
        module = importlib.import_module(dotted)
        modules = [name for name in names if inspect.ismodule(getattr(module, name))]
        assert modules == [], f"{door} exports whole modules"


def _contracts() -> dict[str, dict[str, object]]:
    import tomllib

    config = tomllib.loads((AVENUE.parent / "pyproject.toml").read_text())
    return {contract["id"]: contract for contract in config["tool"]["importlinter"]["contracts"]}


def test_nothing_outside_the_media_package_reaches_past_its_doors():
    """The media-interface contract protects every module of avenue/media/ but the doors, with
    no ``ignore_imports`` (issue 63: there were 42): a module added to the package is listed
    there, or it is a door and in DOORS."""
    contracts = _contracts()
    for key in ("media-interface", "media-maintenance", "media-wiring"):
        assert not contracts[key].get("ignore_imports"), f"{key} lets an import past a door"
    protected = set(contracts["media-interface"]["protected_modules"])  # type: ignore[arg-type]
    media = AVENUE / "media"
    tops = {f"avenue.media.{path.stem if path.is_file() else path.name}" for path in media.iterdir()
            if path.name not in ("__pycache__", "__init__.py") and (path.suffix == ".py" or path.is_dir())}
    doors = {f"avenue.media.{door[:-3]}" for door in DOORS if door != "__init__.py"}
    assert tops - doors == protected
    assert doors & protected == set()


def test_no_function_spans_more_than_eighty_lines():
    long = []
    for path in _modules(AVENUE):
        for node in source.nodes(path):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - first + 1
                if lines > FUNCTION_LINES:
                    where = f"{path.relative_to(AVENUE.parent)}:{node.lineno}"
                    long.append(f"{where} {node.name} ({lines} lines)")
    assert long == []


def test_no_two_media_modules_share_a_name():
    stems = Counter(path.stem for path in _modules(AVENUE / "media") if path.stem != "__init__")
    assert [stem for stem, count in stems.items() if count > 1] == []


def _frame_type(node: ast.expr) -> bool:
    """Whether ``node`` names an engine's frame type: libvips's ``Frame`` or Pillow's
    ``Image.Image`` (a tuple of types when one of them does)."""
    if isinstance(node, ast.Tuple):
        return any(_frame_type(element) for element in node.elts)
    if isinstance(node, ast.Name):
        return node.id == "Frame"
    if isinstance(node, ast.Attribute):
        return node.attr == "Frame" or (node.attr == "Image" and getattr(node.value, "id", "") == "Image")
    return False


def engine_choices(folder: Path) -> list[str]:
    """Every ``isinstance(x, <an engine's frame type>)`` under ``folder``, as path:line."""
    found = []
    for path in _modules(folder):
        for node in source.nodes(path):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance"
                    and len(node.args) == 2 and _frame_type(node.args[1])):
                found.append(f"{path.relative_to(folder.parent)}:{node.lineno}")
    return found


def test_the_image_engine_is_chosen_by_the_frames_type_in_one_place():
    """Pillow or libvips is asked of a frame once (avenue/media/ingest/engine.py's engine_of);
    everything else calls the engine it gives."""
    choices = engine_choices(AVENUE)
    assert len(choices) <= ENGINE_CHOICES, choices


def test_no_hand_written_openapi_module_grows_past_its_bound():
    """A module that spells OpenAPI's own structure (operations' request bodies, the shared
    error responses), or any module of the document's package (whose wings write operations
    through its helpers), is writing the document by hand; a model's schema comes from the model."""
    written = {path: path.read_text() for path in _modules(AVENUE)}
    by_hand = [path for path, text in written.items()
               if path.is_relative_to(AVENUE / "apidoc")
               or '"requestBody"' in text or "#/components/responses/" in text]
    assert by_hand, "the OpenAPI document is written somewhere"
    long = [f"{path.relative_to(AVENUE.parent)} ({len(written[path].splitlines())} lines)"
            for path in by_hand if len(written[path].splitlines()) > OPENAPI_LINES]
    assert long == []


def test_no_setting_s_default_is_spelled_where_it_is_read():
    """A setting's default is spelled once, in ``avenue/config.py`` SETTINGS: code reads the app's
    configuration (which has every setting) by key, or falls back to ``DEFAULTS[name]``, never to
    a literal of its own (``config.get("AVENUE_TRASH_DAYS", 30)`` disagreed with nothing only
    until the declared default changed)."""
    from avenue.config import SETTINGS

    names = {setting.name for setting in SETTINGS}
    spelled = []
    for path in sorted(AVENUE.rglob("*.py")):
        if path == AVENUE / "config.py":
            continue
        for node in source.nodes(path):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get" and len(node.args) == 2):
                continue
            name, default = node.args
            if (isinstance(name, ast.Constant) and name.value in names
                    and isinstance(default, (ast.Constant, ast.Tuple, ast.List))):
                spelled.append(f"{path.relative_to(AVENUE.parent)}:{node.lineno} {name.value}")
    assert spelled == []


# Where a view may still read the query string by hand (issue 42: every query is a declared model,
# @takes_query): the model decorator itself and the shared paging window (avenue/http.py), and the
# image-serving hot path's sig/expires (avenue/media/serve/route.py), where a model would cost
# every image request.
QUERY_READERS = {"http.py", "media/serve/route.py"}


def test_a_query_string_is_read_by_its_declared_model_not_by_hand():
    """``request.args`` appears only where QUERY_READERS says; any other view declares a query
    model (avenue/shapes.py), which checks it and writes its document parameters."""
    readers = set()
    for path in _modules(AVENUE):
        for node in source.nodes(path):
            if (isinstance(node, ast.Attribute) and node.attr == "args"
                    and isinstance(node.value, ast.Name) and node.value.id == "request"):
                readers.add(path.relative_to(AVENUE).as_posix())
    assert readers == QUERY_READERS
