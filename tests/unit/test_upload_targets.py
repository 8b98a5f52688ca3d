"""Upload targets (avenue/targets.py): one vocabulary, and one place in the code that chooses
how an upload is stored (issue 42: three such places became one)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from avenue import targets
from avenue.bulk import service as zip_import
from avenue.errors import BadRequest
from tests.support import source

AVENUE = Path(__file__).resolve().parents[2] / "avenue"

# The service call of each kind's multipart route: what storing into that kind is.
STORES = {("avenue.uploads.service", "upload"): "uploads",
          ("avenue.builder.service", "upload_media"): "builder",
          ("avenue.shop.service", "store_temp_images"): "temp",
          ("avenue.shop.service", "add_images"): "product"}
SERVICES = {module for module, _ in STORES}
# A blueprint calls its own service: each of its routes is one kind, not a choice between them.
OWN = {"uploads", "builder", "shop"}


def _kinds_used(node: ast.AST, aliases: dict[str, str]) -> set[str]:
    """The kinds whose store call ``node`` names (``service.add_images``, ``builder.upload_media``)."""
    return {STORES[(aliases[name.value.id], name.attr)] for name in ast.walk(node)
            if isinstance(name, ast.Attribute) and isinstance(name.value, ast.Name)
            and name.value.id in aliases and (aliases[name.value.id], name.attr) in STORES}


def dispatches(root: Path = AVENUE) -> list[str]:
    """Every place that chooses between the store calls of two or more kinds: a module-level
    function, class or table that names the store calls of two kinds, itself or through
    functions and tables of its module that each reach one kind's (so a table of kinds counts
    once, not again in each function that looks it up)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] in OWN:
            continue
        tree = source.tree(path)
        aliases = {alias.asname or alias.name: f"{node.module}.{alias.name}" for node in tree.body
                   if isinstance(node, ast.ImportFrom) for alias in node.names
                   if f"{node.module}.{alias.name}" in SERVICES}
        top: dict[str, ast.AST] = {}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                top[node.name] = node
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        top[target.id] = node
        # Classes are not followed: a record that names a table of kinds in a method (Completed's
        # bucket) would make every function that builds one look like it reaches them all.
        uses = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in top
                       and n.id != name and not isinstance(top[n.id], ast.ClassDef)}
                for name, node in top.items()}
        direct = {name: _kinds_used(node, aliases) for name, node in top.items()}
        reached = dict(direct)
        changed = True
        while changed:  # through the module's own names, until nothing more is reached
            changed = False
            for name in top:
                more = reached[name].union(*(reached[used] for used in uses[name]))
                if more != reached[name]:
                    reached[name], changed = more, True
        for name in top:
            chosen = direct[name].union(*(reached[used] for used in uses[name] if len(reached[used]) == 1))
            if len(chosen) > 1:
                found.append(f"{path.relative_to(root.parent)}:{name}")
    return found


def test_one_place_chooses_how_an_upload_is_stored():
    # Before avenue/targets.py: 2 (tus/service.py's TARGET rows, bulk/service.py's import_archive;
    # when issue 42 was filed, tus/service.py's complete and the same import_archive).
    assert dispatches() == ["avenue/targets.py:KIND"]


def test_a_second_choice_between_store_calls_is_found(tmp_path):
    package = tmp_path / "avenue"
    (package / "bulk").mkdir(parents=True)
    (package / "bulk" / "service.py").write_text(
        "from avenue.builder import service as builder\nfrom avenue.shop import service as shop\n\n"
        "def _library(db):\n    return builder.upload_media(db)\n\n"
        "def _product(db):\n    return shop.add_images(db)\n\n"
        "def store(db, target):\n    return _library(db) if target == 'library' else _product(db)\n")
    assert dispatches(package) == ["avenue/bulk/service.py:store"]


def test_a_target_is_kept_as_the_dict_it_was_stored_as():
    stored = {"kind": "builder", "alt": None, "folder": "/a", "tags": ["x"], "link": "L1"}
    target = targets.Target.from_dict(stored)
    assert (target.kind, dict(target.params), target.link) == ("builder", {"alt": None, "folder": "/a",
                                                                          "tags": ["x"]}, "L1")
    assert target.as_dict() == stored
    assert targets.Target.from_dict({}).as_dict() == {"kind": "uploads"}  # an upload that named none


def test_a_target_that_is_none_is_400_invalid_target_naming_every_kind():
    with pytest.raises(BadRequest) as refused:
        targets.parse(None, {"target": "library"}, None)  # type: ignore[arg-type]  # refused before either
    assert refused.value.code == "invalid_target"
    assert refused.value.message == "target is one of uploads, builder, temp, product."


def test_parse_checks_a_kinds_fields_once_as_its_route_does():
    target = targets.parse(None, {"visibility": "public"}, None)  # type: ignore[arg-type]
    assert target == targets.Target("uploads", {"visibility": "public"})
    with pytest.raises(BadRequest) as refused:
        targets.parse(None, {"target": "builder", "folder": "a//b", "tags": 7}, None)  # type: ignore[arg-type]
    assert refused.value.code == "invalid_tags"


def test_a_link_opens_every_kind_but_temp():
    assert targets.LINKABLE == ("uploads", "builder", "product")


def test_the_zip_imports_words_are_kinds_of_the_one_vocabulary():
    assert {word: rule.kind for word, rule in zip_import.RULES.items()} == {"library": "builder",
                                                                            "products": "product"}
    assert {rule.bucket for rule in zip_import.RULES.values()} == {targets.KIND["builder"].bucket,
                                                                  targets.KIND["product"].bucket}


def _multipart_route(kind: str) -> tuple[tuple[str, ...], str]:
    """The roles and the audit action of the multipart route that stores into ``kind``: the
    view of its blueprint that calls the kind's store call (read from the source)."""
    (module, call), = [key for key, stored in STORES.items() if stored == kind]
    tree = ast.parse((AVENUE / module.split(".")[1] / "views.py").read_text())
    for view in tree.body:
        if isinstance(view, ast.FunctionDef) and any(
                isinstance(node, ast.Attribute) and node.attr == call
                and getattr(node.value, "id", "") == "service" for node in ast.walk(view)):
            roles = next(tuple(arg.value for arg in d.args if isinstance(arg, ast.Constant))
                         for d in view.decorator_list
                         if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "require_role")
            action = next(node.args[0].value for node in ast.walk(view)
                          if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                          and node.func.attr == "log" and getattr(node.func.value, "id", "") == "audit"
                          and isinstance(node.args[0], ast.Constant))
            return roles, action
    raise AssertionError(f"no view of {module} calls {call}")


@pytest.mark.parametrize("kind", list(targets.KIND))
def test_each_kinds_row_states_the_roles_and_audit_action_of_its_multipart_route(kind):
    # The multipart routes sit below this module and cannot read the rows: the two must agree.
    row = targets.KIND[kind]
    assert _multipart_route(kind) == (row.roles, row.audit_action)
