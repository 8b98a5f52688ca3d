"""Reading the images with stock GridFS alone (docs/operations.md, "Reading an image's bytes
without the app"): after any change in place (avenue/media/store/replace.py) the rule "the
file named by ``metadata.content.id`` when present, else the image's own file" gives the bytes
the app serves, and a naive read of a changed image's own file fails instead of reading empty."""

from __future__ import annotations

import datetime as dt
from hashlib import sha256

import gridfs
import pytest
from bson import ObjectId

from avenue.clock import now
from avenue.media import AppMedia, Buckets
from avenue.media.maintenance import Figures
from tests.helpers import form, library_upload
from tests.support.gridfs_read import current_bytes, own_file_bytes, stock_gridfs

OTHER = "good/grayscale.jpg"
STORED = (*Buckets.BY_ALIAS.values(), Figures.TRASH)  # every bucket of images, the trash's too
MEDIA = "/api/builder/media"


def changed(client, headers, method: str, path: str, **kwargs) -> dict:
    answer = client.open(path, method=method, headers=headers, **kwargs)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def served(client, media: dict) -> bytes:
    answer = client.get(media["url"])
    assert answer.status_code == 200, media["url"]
    return answer.data


def every_kind_of_image(client, editor) -> dict[str, dict]:
    """One library image per way of coming to its current bytes; each one's media object."""
    made = {"uploaded": library_upload(client, editor)}
    media = library_upload(client, editor, "good/alpha.png")
    made["replaced"] = changed(client, editor, "PUT", f"{MEDIA}/{media['id']}", data=form(OTHER))
    media = library_upload(client, editor, "good/photo_exif_rotated.jpg")
    made["edited"] = changed(client, editor, "PUT", f"{MEDIA}/{media['id']}/edits", json={"rotate": 90})
    media = library_upload(client, editor, "good/png16.png")
    changed(client, editor, "PUT", f"{MEDIA}/{media['id']}/edits", json={"flip_horizontal": True})
    made["edits_undone"] = changed(client, editor, "DELETE", f"{MEDIA}/{media['id']}/edits")
    media = library_upload(client, editor, "good/cmyk.jpg")
    made["focal_point"] = changed(client, editor, "PUT", f"{MEDIA}/{media['id']}/focal-point",
                                  json={"x": 0.2, "y": 0.7})
    media = library_upload(client, editor, "good/tiny_1x1.png")
    first = changed(client, editor, "GET", f"{MEDIA}/{media['id']}/versions")["items"][0]["id"]
    changed(client, editor, "PUT", f"{MEDIA}/{media['id']}", data=form("good/palette_transparent.png"))
    made["restored"] = changed(client, editor, "POST", f"{MEDIA}/{media['id']}/versions/{first}/restore")
    assert len({m["id"] for m in made.values()}) == len(made)
    return made


def test_stock_gridfs_reads_every_images_current_bytes_by_the_documented_rule(client, db, editor):
    made = every_kind_of_image(client, editor)
    for how, media in made.items():
        body = served(client, media)
        assert sha256(body).hexdigest() == media["sha256"], how
        assert current_bytes(db, Buckets.BUILDER, ObjectId(media["id"])) == body, how
    # Every original of every bucket, the trash's copies of earlier versions included: the rule
    # gives the bytes its document records.
    for bucket in STORED:
        for doc in db[f"{bucket}.files"].find({"metadata.role": "original"}):
            found = current_bytes(db, bucket, doc["_id"])
            assert sha256(found).hexdigest() == doc["metadata"]["sha256"], (bucket, doc["_id"])
    # The earlier versions of the replaced image and of the restored one (both of its switches).
    assert db["media_trash.files"].count_documents({"metadata.role": "original"}) == 3


def test_a_naive_read_of_a_changed_images_own_file_fails_instead_of_reading_empty(client, db, editor):
    made = every_kind_of_image(client, editor)
    own = {"uploaded", "focal_point"}  # the bytes never moved: the image's own file holds them
    for how, media in made.items():
        image_id, body = ObjectId(media["id"]), served(client, media)
        with stock_gridfs(db):
            listed = next(iter(gridfs.GridFSBucket(db, bucket_name=Buckets.BUILDER).find({"_id": image_id})))
        assert listed.length == len(body) == media["bytes"], how  # what a listing shows is the truth
        if how in own:
            assert own_file_bytes(db, Buckets.BUILDER, image_id) == body, how
            continue
        with pytest.raises(gridfs.errors.CorruptGridFile):
            own_file_bytes(db, Buckets.BUILDER, image_id)


def test_the_changed_images_stay_whole_through_gc_and_fsck_and_the_counters(client, db, editor, media_core):
    made = every_kind_of_image(client, editor)
    # A document whose length its own chunks do not hold is not an incomplete file to gc.
    later = now() + dt.timedelta(hours=2)
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(grace_seconds=0, now=later).removed == []
    assert AppMedia.on(db).maintenance.fsck().findings == []
    recounted = Figures(db).recount_media()
    for bucket in STORED:
        assert recounted[bucket]["drift"] == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}
    for how, media in made.items():
        assert current_bytes(db, Buckets.BUILDER, ObjectId(media["id"])) == served(client, media), how
