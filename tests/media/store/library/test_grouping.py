"""A library's grouping (avenue/media/store/library/grouping.py) when the decode budget refuses
its full-resolution decodes: a candidate is stored and owes its link, a group linked on the
thumb is left as it is, and the backfill leaves a link owed while the stored image's format is
turned off."""

from __future__ import annotations

import pytest
from bson import ObjectId

from avenue.media import Buckets
from tests.support.duplicates import OWED, groups, linked_on_the_thumb, media, png
from tests.support.formats import SETTING, forbid_decoders, originals, to_library, webp_and_png_twin
from tests.support.records import images


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


def refuse_decodes(monkeypatch) -> None:
    """The library's decode budget refuses every full-resolution decode (full), until
    ``monkeypatch.undo()``."""
    from avenue.errors import ServerBusy
    from avenue.media.store.library import Grouping

    def refused(self, decoding, working):
        raise ServerBusy("the decode budget is full")

    monkeypatch.setattr(Grouping, "_hold", refused)


# As in the builder's duplicates: answers wait for their near-duplicate lookups (tests/conftest.py).
@pytest.mark.usefixtures("answers_wait_for_lookups")
def test_a_candidate_the_decode_budget_refuses_is_stored_and_left_unlinked(client, editor, db, runner,
                                                                           monkeypatch):
    """The full-resolution key never fails the upload that asked for it: a budget that refuses
    the decode (too small, or full) leaves the twins unlinked, and the upload is a 201; the
    link stays owed, and ``flask near-duplicates`` makes it once the budget allows."""
    refuse_decodes(monkeypatch)
    first = media(client, editor, png(4), "first.png")
    second = media(client, editor, png(4, "saved again"), "second.png")  # uploaded() asserts the 201
    assert groups(client, editor) == []
    # Refused is not "no twin": it still owes its link, and the backfill makes it once it can.
    assert [str(d["_id"]) for d in images(db, Buckets.BUILDER).find(OWED)] == [second["id"]]
    monkeypatch.undo()
    assert runner.invoke(args=["near-duplicates"]).exit_code == 0
    [group] = groups(client, editor)
    assert [image["id"] for image in group["images"]] == [first["id"], second["id"]]
    assert images(db, Buckets.BUILDER).count_documents(OWED) == 0


# As in the builder's duplicates: answers wait for their near-duplicate lookups (tests/conftest.py).
@pytest.mark.usefixtures("answers_wait_for_lookups")
def test_the_backfill_leaves_a_group_as_it_is_while_the_decode_budget_refuses_a_member(
        client, editor, db, runner, monkeypatch):
    """A member the budget cannot decode now is not unreadable: its group is not split (nor its
    twins parted) until a run can decode every member, and that run splits it as above."""
    first, other, again = linked_on_the_thumb(client, editor, db)
    ids = [ObjectId(i["id"]) for i in (first, other, again)]
    refuse_decodes(monkeypatch)
    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    assert '"split": 0' in result.output
    assert [sorted(i["id"] for i in g["images"]) for g in groups(client, editor)] == \
        [sorted(str(i) for i in ids)]
    monkeypatch.undo()
    assert '"split": 1' in runner.invoke(args=["near-duplicates", "--json"]).output
    assert [[i["id"] for i in g["images"]] for g in groups(client, editor)] == [[first["id"], again["id"]]]
