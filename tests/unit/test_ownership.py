"""One owner per stored document: who may read which collection, checked on the source.

The shop is the only module that reads ``shop_products``, the builder the only one that reads
``page_content``; everyone else asks their owners (avenue/media/references.py). Only the media
package spells a bucket's ``.files`` / ``.chunks``; ops and status ask its maintenance door,
whose jobs (avenue/media/upkeep/) read through its scan interface (avenue/media/store/scan.py).
import-linter checks imports, not names, so these read the syntax tree of every module.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from tests.support import source

ROOT = Path(__file__).resolve().parents[2] / "avenue"
# avenue/db.py declares every collection with its indexes and shard keys (the foundation
# every layer sits on, the buckets' collections by suffix).
DECLARED_IN = "avenue/db.py"
OWNED = {
    # collection: (its name's constant in avenue/db.py, the package that owns it)
    "shop_products": ("PRODUCTS", "avenue/shop/"),
    "page_content": ("PAGES", "avenue/builder/"),
}


def modules() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(ROOT.parent)), source.tree(path))
            for path in sorted(ROOT.rglob("*.py"))]


def reads_of(tree: ast.Module, collection: str, constant: str) -> list[int]:
    """Lines naming ``collection``: as a string, as ``db.<collection>``, or by importing its
    constant from avenue.db."""
    lines = []
    for node in source.walk(tree):
        if isinstance(node, ast.Constant) and node.value == collection:
            lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == collection:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "avenue.db" and any(
                alias.name == constant for alias in node.names):
            lines.append(node.lineno)
    return lines


def gridfs_spellings(tree: ast.Module) -> list[int]:
    """Lines spelling ``<bucket>.files`` / ``<bucket>.chunks`` (a literal or an f-string), or
    building them from the parts ``"files"`` / ``"chunks"``."""
    lines = []
    for node in source.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.endswith((".files", ".chunks")):
            lines.append(node.lineno)
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[-1], ast.Constant) \
                and str(node.values[-1].value).endswith((".files", ".chunks")):
            lines.append(node.lineno)
        elif isinstance(node, ast.Tuple) and {getattr(e, "value", None) for e in node.elts} \
                == {"files", "chunks"}:
            lines.append(node.lineno)
    return sorted(set(lines))


@pytest.mark.parametrize("collection", sorted(OWNED))
def test_only_its_owner_reads_a_collection_of_referring_documents(collection):
    constant, owner = OWNED[collection]
    readers = {name: lines for name, tree in modules()
               if not name.startswith(owner) and name != DECLARED_IN
               and (lines := reads_of(tree, collection, constant))}
    assert readers == {}, f"{collection} is read outside {owner}: ask its References instead"


def test_the_owners_read_their_collections():
    """The check above finds what it looks for (the owners themselves spell their names)."""
    found = {name for name, tree in modules() for collection, (constant, _) in OWNED.items()
             if reads_of(tree, collection, constant)}
    assert {"avenue/shop/references.py", "avenue/builder/references.py"} <= found


def test_only_the_media_package_spells_a_buckets_gridfs_collections():
    spellings = Counter({name: len(lines) for name, tree in modules()
                         if not name.startswith("avenue/media/") and name != DECLARED_IN
                         and (lines := gridfs_spellings(tree))})
    assert dict(spellings) == {}, "ask the media package (avenue.media.maintenance) instead"


def test_the_gridfs_check_finds_the_media_packages_own_spellings():
    assert any(gridfs_spellings(tree) for name, tree in modules() if name == "avenue/media/store/scan.py")
