"""A library's grouping (avenue/media/store/library/grouping.py): an exact twin whose full decode
was refused owes its link, which the near-duplicates backfill leaves owed while the stored
image's format is turned off."""

from __future__ import annotations

import pytest
from bson import ObjectId

from tests.support.formats import SETTING, forbid_decoders, originals, to_library, webp_and_png_twin


@pytest.fixture
def forbid(monkeypatch):
    """``forbid("HEIF", ...)``: the named decoders raise if they read a file (tests/support/formats.py)."""
    return forbid_decoders(monkeypatch)


def test_the_near_duplicates_backfill_leaves_a_stored_webp_undecoded_and_its_link_owed_while_webp_is_off(
        app_factory, db, forbid, monkeypatch):
    from avenue.errors import ServerBusy
    from avenue.media.store.library import Grouping

    webp, png = webp_and_png_twin(12)
    before = app_factory()

    def full(self, decoding, working):
        raise ServerBusy("the decode budget is full")

    with monkeypatch.context() as busy:  # the full decodes refused: the twin owes its link
        busy.setattr(Grouping, "_hold", full)
        stored = to_library(before, webp, "a.webp")
        twin = to_library(before, png, "a.png")
    assert originals(db)[twin["id"]]["exact_pending"] is True

    after = app_factory(**{SETTING: "webp"})
    calls = forbid("WEBP")
    result = after.test_cli_runner().invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    assert calls == []
    kept = originals(db)
    assert "pixels_full_sha256" not in kept[stored["id"]]  # its decoder never ran: no key written
    assert kept[stored["id"]].get("exact_group") is None and kept[twin["id"]].get("exact_group") is None
    assert kept[twin["id"]]["exact_pending"] is True  # still owed, not "no twin"

    monkeypatch.undo()
    again = app_factory()
    assert again.test_cli_runner().invoke(args=["near-duplicates"]).exit_code == 0
    kept = originals(db)
    assert kept[stored["id"]]["exact_group"] == kept[twin["id"]]["exact_group"] == ObjectId(stored["id"])
    assert "exact_pending" not in kept[twin["id"]]
