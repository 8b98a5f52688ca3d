"""The near-duplicates backfill (avenue/media/upkeep/backfill_near_duplicates.py): old images
get their hash and groups, and a run cut off resumes where it stopped."""

from __future__ import annotations

import json

import pytest

from avenue.media import Buckets
from avenue.media.upkeep import backfill as walk
from avenue.media.upkeep import backfill_near_duplicates as backfill
from tests.support.client import MEDIA
from tests.support.near import jpeg, media, near_copy, photo, strip_near_hashes
from tests.support.records import images

pytestmark = pytest.mark.usefixtures("answers_wait_for_lookups")


def test_the_backfill_gives_old_images_their_hash_and_groups_and_resumes_where_it_stopped(
        client, editor, db, runner, monkeypatch):
    a = media(client, editor, jpeg(photo(13)), "a.jpg")
    a2 = media(client, editor, near_copy(photo(13)), "a2.jpg")
    media(client, editor, jpeg(photo(14)), "b.jpg")
    strip_near_hashes(db, Buckets.BUILDER)
    assert client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"] == []

    # A run cut off after its first image (a batch of one): that image is done, the rest not.
    monkeypatch.setattr(walk, "BATCH", 1)

    def stop(phase, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill.backfill_near_duplicates(db, progress=stop)
    assert images(db, Buckets.BUILDER).count_documents({"metadata.phash": {"$exists": True}}) == 1

    result = runner.invoke(args=["near-duplicates", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["computed"]["builder"] == 2 and report["unreadable"] == []
    assert report["linked"] == 1  # the copy found the first one, already done
    [group] = client.get(f"{MEDIA}/near-duplicates", headers=editor).get_json()["items"]
    assert {image["id"] for image in group["images"]} == {a["id"], a2["id"]}

    again = json.loads(runner.invoke(args=["near-duplicates", "--json"]).output)
    assert sum(again["computed"].values()) == 0 and again["linked"] == 0
