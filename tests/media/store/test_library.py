"""The library's published methods: the Originals protocol, each bound to its collaborator."""

from __future__ import annotations

import inspect

import mongomock

from avenue.media.core import Media
from avenue.media.store.library import Library, Originals


def published() -> list[str]:
    return [name for name, member in vars(Originals).items()
            if inspect.isfunction(member) and not name.startswith("_")]


def test_a_library_publishes_each_method_of_the_protocol_from_the_collaborator_that_has_it():
    library = Library(mongomock.MongoClient().db, "uploads", Media())
    parts = [library.reading, library.labels, library.storing, library.editing, library.grouping,
             library.deleting]
    for name in published():
        method = getattr(library, name)
        assert method.__self__ in parts, name
        declared = inspect.signature(getattr(Originals, name))
        without_self = declared.replace(parameters=list(declared.parameters.values())[1:])
        assert inspect.signature(method) == without_self, name
    assert len(published()) == 28
    # Nothing more is published than the protocol says (the parts, the shelf and its methods).
    assert {name for name in vars(library) if not name.startswith("_")} == {
        *published(), "shelf", "reading", "labels", "storing", "editing", "grouping", "deleting"}


def test_the_collaborators_stand_on_one_shelf():
    library = Library(mongomock.MongoClient().db, "uploads", Media())
    parts = [library.reading, library.labels, library.storing, library.editing, library.grouping,
             library.deleting]
    assert all(part.shelf is library.shelf for part in parts)
    assert library.labels.reading is library.reading and library.storing.deleting is library.deleting
    assert library.editing.grouping is library.grouping is library.storing.grouping
