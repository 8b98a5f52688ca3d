"""A library's delete leases (avenue/media/store/library/deleting.py): given back when a delete
is refused, and lapsed after ``DELETE_LEASE`` when its deleter never finished."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId

from avenue.media import Buckets
from avenue.media.store.library import DELETE_LEASE
from tests.support.builder import media_block, put_page
from tests.support.client import media_upload as upload


def test_a_refused_delete_releases_its_lease_and_a_stale_lease_expires(client, editor, db):
    media = upload(client, editor, "good/alpha.png").get_json()["id"]
    put_page(client, editor, "home", [media_block(media)])
    assert client.delete(f"/api/builder/media/{media}", headers=editor).status_code == 409
    assert "deleting_at" not in db[f"{Buckets.BUILDER}.files"].find_one({"_id": ObjectId(media)})["metadata"]
    assert put_page(client, editor, "about", [media_block(media)]).status_code == 200

    stale = dt.datetime.now(dt.UTC) - DELETE_LEASE - dt.timedelta(seconds=5)
    db[f"{Buckets.BUILDER}.files"].update_one({"_id": ObjectId(media)},
                                              {"$set": {"metadata.deleting_at": stale}})
    assert put_page(client, editor, "other", [media_block(media)]).status_code == 200
    fresh = dt.datetime.now(dt.UTC)
    db[f"{Buckets.BUILDER}.files"].update_one({"_id": ObjectId(media)},
                                              {"$set": {"metadata.deleting_at": fresh}})
    assert put_page(client, editor, "fourth", [media_block(media)]).status_code == 422
