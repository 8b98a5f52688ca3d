"""``--dist loadgroup`` grouping again: the tests of one ``xdist_group`` run on one worker.

pytest-xdist tells its loadgroup scheduler a test's group by the test's node id: on each
worker it appends ``@<group>`` to every grouped item's id (``item._nodeid``, xdist/remote.py),
the ids reach the controller in "collectionfinish", and the scheduler keeps every id with the
same suffix on one worker (xdist/scheduler/loadgroup.py, ``_split_scope``). pytest 9.2 keeps a
node's id in a structured ``NodeId`` (``item._id``, _pytest/nodes.py) and no longer reads
``_nodeid``, so the suffix is lost and loadgroup spreads a group over every worker without a
word (pytest-dev/pytest-xdist#1386): each console browser module then started its Chromium
and server on each worker. Here the suffix is set where pytest 9.2 reads it, after xdist's
hook; where xdist's own mutation took (other versions), the ids already end with it and
nothing changes. tests/unit/test_xdist_groups.py runs a small session to show a group stays
on one worker.
"""

from __future__ import annotations

import pytest
from _pytest.nodeid import NodeId  # pytest's own type for an item's id (no public setter)


def group_suffix(item: pytest.Item) -> str:
    """``@<names>`` as xdist/remote.py builds it from the item's ``xdist_group`` marks, or ''."""
    names = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
             for mark in item.iter_markers("xdist_group")}
    return f"@{'_'.join(sorted(names))}" if names else ""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return  # not an xdist worker of a loadgroup run: no scheduler reads the ids
    for item in items:
        suffix = group_suffix(item)
        if suffix and not item.nodeid.endswith(suffix):
            # parse() keeps the given string as the id's text, which is what xdist sends.
            item._id = NodeId.parse(item.nodeid + suffix)
