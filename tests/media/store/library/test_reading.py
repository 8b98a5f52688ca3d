"""A library's reads (avenue/media/store/library/reading.py): which lister a page is read with,
and what it asks before."""

from __future__ import annotations

from avenue import paging
from avenue.embedded import listing
from avenue.media import Buckets, Library, Media
from avenue.media.store.library import reading
from avenue.paging import Window


def test_a_library_whose_kept_size_is_small_asks_no_hints_for_its_page(db, monkeypatch):
    """Where whole reads cost (the embedded database), a library list without fences reads
    its dates' hints for its first windows; one whose kept size (its counters' originals)
    says it is small is one read, and asks for none (one read of the counters less a page)."""
    monkeypatch.setattr(reading, "lister", lambda _db: listing.fetch)
    asked: list[str] = []
    monkeypatch.setattr(reading, "upload_dates", lambda *args: asked.append("hints") or
                        paging.DateHints(None, None, 0))
    library = Library(db, Buckets.BUILDER, Media())
    monkeypatch.setattr(reading.counters, "originals", lambda *_: 3)
    library.page(Window(per_page=20))
    assert asked == []  # small by its kept size: not asked
    monkeypatch.setattr(reading.counters, "originals", lambda *_: listing.FIRST_WALK_FROM + 1)
    library.page(Window(per_page=20))
    assert asked == ["hints"]  # large, no fences: asked
