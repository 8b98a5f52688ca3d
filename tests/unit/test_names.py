"""One name per concept (issue 63, item 6), read from the checkout.

The feature that finds look-alike images is "near-duplicates" in the code, as in the API
(``NearDuplicate``, ``near_duplicates``, the ``/near-duplicates`` routes) and the metrics
(``avenue_near_duplicate_lookups``): the two other words it went by, "likeness" and "nearby",
are retired from the names under avenue/ (module paths, identifiers, strings other than
docstrings, the console's scripts and pages). Comments and docstrings may still say why a name
changed. And a budget is of something: no module is named plain ``budget.py``
(``media/ingest/decode_budget.py`` holds decoded pixels, ``ops/rendition_budget.py`` the
renditions' bytes).
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from tests.support import source

ROOT = Path(__file__).resolve().parents[2]
AVENUE = ROOT / "avenue"
RETIRED = re.compile(r"likeness|nearby", re.IGNORECASE)
# Where a retired word stays, and why: (module, the string or identifier holding it).
ALLOWED = {
    ("avenue/ops/commands.py", "likeness"): "the command's old name, a deprecated alias of "
                                           "near-duplicates (docs/operations.md)",
}
VAGUE_MODULES = {"budget"}  # names that need the thing they are of


def _python_modules() -> list[Path]:
    return sorted(path for path in AVENUE.rglob("*.py") if "__pycache__" not in path.parts)


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def names_in(tree: ast.Module) -> list[tuple[int, str]]:
    """Every name the code spells (identifiers, attributes, parameters, imports, keywords) and
    every string constant that is not a docstring, with its line."""
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        match node:
            case ast.Name(id=name) | ast.Attribute(attr=name) | ast.arg(arg=name):
                found.append((line, name))
            case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name) | ast.ClassDef(name=name):
                found.append((line, name))
            case ast.keyword(arg=str() as name):
                found.append((line, name))
            case ast.alias(name=name, asname=asname):
                found.extend((line, spelled) for spelled in (name, asname) if spelled)
            case ast.ImportFrom(module=str() as module):
                found.append((line, module))
            case ast.Constant(value=str() as text) if id(node) not in docstrings:
                found.append((line, text))
    return found


@functools.cache
def spelled_under_avenue() -> dict[str, list[tuple[int, str]]]:
    """Each module under avenue/ (its path from the checkout's root) and the names it spells."""
    return {str(path.relative_to(ROOT)): names_in(source.tree(path)) for path in _python_modules()}


def retired_names() -> list[str]:
    """Each retired word in a name under avenue/, as path:line: name (the allowed ones left out)."""
    found = []
    for where, names in spelled_under_avenue().items():
        if RETIRED.search(where):
            found.append(f"{where}: its path")
        for line, name in names:
            if RETIRED.search(name) and (where, name) not in ALLOWED:
                found.append(f"{where}:{line}: {name!r}")
    for path in sorted(AVENUE.rglob("*")):
        if path.suffix in {".js", ".css", ".html"} and RETIRED.search(path.read_text()):
            found.append(f"{path.relative_to(ROOT)}: in its text")
    return found


def test_the_look_alike_feature_is_named_near_duplicates_in_every_name_under_avenue():
    assert retired_names() == [], "say near-duplicate(s) (issue 63); an exception goes in ALLOWED, with why"


def test_the_check_finds_a_retired_word_in_a_name_and_not_in_a_docstring():
    tree = ast.parse('"""Once called likeness."""\nfrom avenue.x import nearby\n'
                     'def f(likeness_of):\n    """Likeness, as it was."""\n    return nearby.Likeness("x")\n')
    spelled = [name for _, name in names_in(tree) if RETIRED.search(name)]
    assert sorted(spelled) == ["Likeness", "likeness_of", "nearby", "nearby"]


def test_every_allowed_exception_is_still_there():
    spelled = {(where, name) for where, names in spelled_under_avenue().items() for _, name in names}
    assert set(ALLOWED) <= spelled, "remove the exceptions the code no longer needs"


def test_no_module_is_named_for_a_budget_without_saying_of_what():
    vague = [str(path.relative_to(ROOT)) for path in _python_modules() if path.stem in VAGUE_MODULES]
    assert vague == []
