"""The checkout's Python source, read and parsed once per test process.

The tests that read the code (tests/unit/test_code_shape.py, test_layout.py, test_ownership.py,
test_docs.py, ...) each walk avenue/, tests/ or bench/ again: parsing tests/ alone is seconds
of CPU, repeated by every such test. The files do not change during a run, so each is read,
parsed and walked once here and the same tree handed to every test (none of them edits it).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path


@functools.cache
def python_files(folder: Path) -> tuple[Path, ...]:
    """Every ``*.py`` under ``folder`` (not in ``__pycache__``), sorted."""
    return tuple(sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts))


@functools.cache
def text(path: Path) -> str:
    return path.read_text()


@functools.cache
def tree(path: Path) -> ast.Module:
    """The file's syntax tree (shared: read it, never change it)."""
    return ast.parse(text(path), str(path))


@functools.cache
def walk(node: ast.AST) -> tuple[ast.AST, ...]:
    """Every node under ``node`` (itself included), in ``ast.walk``'s order, listed once."""
    return tuple(ast.walk(node))


def nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of the file's tree, in ``ast.walk``'s order."""
    return walk(tree(path))
