"""No module of the package keeps per-app state in module globals (issue 63).

What an app is configured with lives on objects the app builds once and keeps in
``app.extensions`` (the media core: ``avenue/media/core.py``), handed to the code that needs it.
A module that a function writes into after import makes one call behave differently in a
request, from the CLI or a test and on the embedded database, depending on which app ran
``init_app`` last. So this walks every module under ``avenue/`` and fails on

- a ``global`` statement, and
- a function that assigns to, deletes from or calls a mutating method (``append``, ``add``,
  ``update``, ``setdefault``, ...) of a module-level name (``_cache[key] = ...``,
  ``_names.setdefault(...)``, ``_registered[:] = ...``, ``_state.field = ...``),

but for the process-wide state listed in :data:`ALLOWED`, each with the reason it is per
process and not per app. Per-app state has no list and no exception: the last of it, the
owners of referring documents the last app registered (``avenue.media.references._registered``,
read by code handed only a database), is the app's Media's now (``Media.owners``, asked through
``Media.referrers``). The check reads names, not types: a module-level object whose own
methods keep state (a lock, a ``background.Lane``) is not seen, and needs none of this.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from tests.support import source

PACKAGE = Path(__file__).resolve().parents[2] / "avenue"

# Methods that change the container they are called on.
MUTATORS = frozenset({"append", "extend", "insert", "remove", "pop", "popitem", "clear", "add",
                      "discard", "update", "setdefault", "move_to_end", "appendleft", "popleft",
                      "difference_update", "intersection_update", "symmetric_difference_update"})

# Flask's context locals: each names the current request's (or app context's) own object.
CONTEXT_LOCALS = frozenset({"g", "session", "request"})

# (module, name): why it is process-wide, not an app's configuration.
ALLOWED: dict[tuple[str, str], str] = {
    ("avenue.background", "_beside"): "the process's thread pool beside requests, made on first use",
    ("avenue.background", "_parallel"): "the process's thread pool for CPU work, made on first use",
    ("avenue.requestid", "_prefix"): "this process's request-id prefix, drawn again in a forked worker",
    ("avenue.requestid", "_counter"): "this process's request-id counter, restarted in a forked worker",
    ("avenue.media.store.claims", "_leaders"): "claims this process's threads hold now (in-flight de-dup)",
    ("avenue.media.ingest.decode_budget", "_BUDGETS"): "the process's decode memory, one budget per size, "
                                                       "shared by every app of the process by design",
    ("avenue.media.serve.route", "LOCAL_CACHES"): "every media cache of the process, weakly: a write here "
                                                  "evicts each at once; other processes read tombstones",
    ("avenue.ops.rerender", "_runs"): "re-render threads this process started (tests join them)",
    ("avenue.status.sweep", "_threads"): "sweep threads this process started (tests join them)",
    ("avenue.embedded.fences", "_cache"): "fences read from a database, keyed by client and database: what "
                                 "the database holds, not an app's settings",
    ("avenue.embedded.expiry", "_RULES"): "the TTL rules of each database's indexes, keyed by database: what "
                                 "the database holds, not an app's settings",
    ("avenue.apidoc.common", "SHAPES"): "the OpenAPI components the declared models add, filled as "
                                        "the apidoc modules are imported: the same for every app",
}

def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        yield name, source.tree(path)


def _bound(node: ast.AST) -> set[str]:
    """Names a function, lambda or module binds in its own scope (not in nested functions)."""
    names: set[str] = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        args = node.args
        names.update(a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))
        names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    todo = list(ast.iter_child_nodes(node))
    while todo:
        child = todo.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(child.name)
            todo.extend(child.decorator_list)
            continue  # its body is its own scope
        if isinstance(child, ast.Lambda):
            continue
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store | ast.Del):
            names.add(child.id)
        elif isinstance(child, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in child.names)
        elif isinstance(child, ast.ExceptHandler) and child.name:
            names.add(child.name)
        elif isinstance(child, ast.MatchAs | ast.MatchStar) and child.name:
            names.add(child.name)
        todo.extend(ast.iter_child_nodes(child))
    return names


def _root(node: ast.expr) -> str | None:
    """The name an attribute or item chain starts from (``a`` of ``a.b[c].d``)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _imported(tree: ast.Module) -> dict[str, bool]:
    """The names the module's own imports bind, each with whether it names a module."""
    names: dict[str, bool] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(((alias.asname or alias.name).split(".")[0], True) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = _is_module(node.module, alias.name)
    return names


def _is_module(module: str, name: str) -> bool:
    """Whether ``from module import name`` binds a module (a package's facade may re-export one)."""
    try:
        return isinstance(getattr(importlib.import_module(module), name, None), ModuleType) or \
            importlib.util.find_spec(f"{module}.{name}") is not None
    except ImportError:  # not importable here, or its parent is not a package: an object
        return False


def _writes(node: ast.AST) -> Iterator[tuple[str, int, bool]]:
    """The names a statement or expression of a function writes into: as a target of an
    assignment or a ``del`` through an attribute or item, or by a mutating method (then
    True)."""
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = node.targets
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
        name = _root(node.func.value)
        if name is not None:
            yield name, node.lineno, True
    for target in targets:
        for part in ast.walk(target):
            if isinstance(part, ast.Attribute | ast.Subscript) and isinstance(part.ctx, ast.Store | ast.Del):
                name = _root(part)
                if name is not None:
                    yield name, node.lineno, False


def module_state(name: str, tree: ast.Module) -> list[tuple[str, str, int]]:
    """Every (module-level name, how, line) a function of the module writes after import."""
    found: list[tuple[str, str, int]] = []
    imported = _imported(tree)
    # Names the module binds itself, and the modules and objects it imports (which a function
    # may write into through an attribute or item: ``other._provider = ...``), but Flask's
    # context locals. A "mutating" method called on an imported module is that module's
    # function (``os.remove``, ``resumable.append``), not a write: those count for objects only.
    written_into = (_bound(tree) | set(imported)) - CONTEXT_LOCALS
    objects = written_into - {name for name, is_module in imported.items() if is_module}

    def visit(node: ast.AST, shadowed: frozenset[str]) -> None:
        """Walk a function's body; ``shadowed``: the names its scopes bind themselves."""
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, shadowed | _bound(child))
                continue
            if isinstance(child, ast.Global):
                found.extend((global_name, "global", child.lineno) for global_name in child.names)
            found.extend((written, "written", line) for written, line, called in _writes(child)
                         if written in (objects if called else written_into) and written not in shadowed)
            visit(child, shadowed)

    def enter(node: ast.AST) -> None:
        """Walk the module's own code (and its classes') to each function."""
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, frozenset(_bound(child)))
            else:
                enter(child)

    enter(tree)
    return sorted(set(found), key=lambda item: (item[2], item[0]))


@functools.cache
def package_state() -> tuple[tuple[str, str, str, int], ...]:
    """Every (module, name, how, line) of the package (read once per run)."""
    return tuple((module, name, how, line) for module, tree in modules()
                 for name, how, line in module_state(module, tree))


def test_no_function_writes_module_state_but_the_process_wide_kind_listed():
    found = [f"{module}:{line} {name} ({how})" for module, name, how, line in package_state()
             if (module, name) not in ALLOWED]
    assert found == [], ("per-app state belongs on the object the app builds (app.extensions); "
                         "process-wide state is listed in ALLOWED with its reason")


def test_every_allowed_name_is_still_written():
    written = {(module, name) for module, name, _, _ in package_state()}
    assert sorted(set(ALLOWED) - written) == [], "drop these: nothing writes them now"


def test_it_finds_a_registry_the_last_app_fills():
    """The shape the owners' registry had (avenue/media/references.py before issue 63's last
    step): the app's own extensions are not module state, the module's copy of them is."""
    source = '''
_registered = []
def init_app(app, owners):
    app.extensions["avenue.references"] = tuple(owners)
    _registered[:] = [app.extensions["avenue.references"]]
'''
    assert module_state("example", ast.parse(source)) == [("_registered", "written", 5)]


def test_it_finds_each_kind_of_write():
    source = '''
import os
from flask import g
_a = None
_b = {}
_c = []
_d = object()
_e = set()
def f(_local={}):
    global _a
    _b["k"] = 1
    _c[:] = []
    _d.field = 2
    _e.add(3)
    _local["k"] = 1
    def g():
        _b.setdefault("k", set()).add(4)
    mine = {}
    mine["k"] = 1
    os.remove("x")
    g.user = None
    os.environ["K"] = "v"
'''
    found = {(name, how) for name, how, _ in module_state("example", ast.parse(source))}
    assert found == {("_a", "global"), ("_b", "written"), ("_c", "written"), ("_d", "written"),
                     ("_e", "written"), ("os", "written")}
