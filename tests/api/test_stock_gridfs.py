"""Reading the images with stock tools alone (docs/operations.md, "Reading an image's bytes
without the app"): after any change in place (avenue/media/store/replace.py) the rule "read
``<bucket>.images`` → ``metadata.content.id``, else the file with the image's id" gives the
bytes the app serves, the documented pymongo snippet included, and every file of every bucket
is a whole GridFS file that stock GridFS reads by its ``_id`` (issue 75: no record in ``.files``)."""

from __future__ import annotations

import datetime as dt
import re
from hashlib import sha256
from pathlib import Path

import gridfs
from bson import ObjectId

from avenue.clock import now
from avenue.media import AppMedia, Buckets
from avenue.media.maintenance import Figures
from tests.helpers import form, library_upload
from tests.support.gridfs_read import current_bytes, own_file_bytes, stock_gridfs
from tests.support.gridfs_spec import invalid_files
from tests.support.records import images

OTHER = "good/grayscale.jpg"
STORED = (*Buckets.BY_ALIAS.values(), Figures.TRASH)  # every bucket of images, the trash's too
MEDIA = "/api/builder/media"
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


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
    # Every image record of every bucket, the trash's copies of earlier versions included: the
    # rule gives the bytes its record names.
    for bucket in STORED:
        for record in images(db, bucket).find():
            found = current_bytes(db, bucket, record["_id"])
            assert sha256(found).hexdigest() == record["metadata"]["sha256"], (bucket, record["_id"])
    # The earlier versions of the replaced image and of the restored one (both of its switches).
    assert images(db, Figures.TRASH).count_documents({}) == 3


def documented_snippet() -> str:
    """The pymongo snippet of docs/operations.md's "Reading an image's bytes without the app"."""
    text = OPERATIONS.read_text()
    section = text[text.index("### Reading an image's bytes without the app"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("\n```", start)]


def test_the_documented_snippet_reads_what_the_app_serves(client, db, editor):
    made = every_kind_of_image(client, editor)
    snippet = documented_snippet()
    # On the test's database and each image, the rest as written: the client's line and the id's.
    snippet = re.sub(r"^db = .*$", "db = DB", snippet, flags=re.M)
    snippet = re.sub(r'ObjectId\("[0-9a-f]{24}"\)', "ObjectId(IMAGE_ID)", snippet)
    assert "DB" in snippet and "IMAGE_ID" in snippet
    for how, media in made.items():
        scope = {"DB": db, "IMAGE_ID": media["id"]}
        with stock_gridfs(db):
            exec(snippet, scope)  # noqa: S102 - the documentation's own code, on the test's database
        assert scope["data"] == served(client, media), how


def test_every_file_reads_whole_by_its_id_and_a_naive_read_never_fails_half_way(client, db, editor):
    made = every_kind_of_image(client, editor)
    # Every files document of every bucket is a whole GridFS file: stock GridFS reads it by _id.
    assert invalid_files(db) == []
    for bucket in STORED:
        with stock_gridfs(db):
            grid = gridfs.GridFSBucket(db, bucket_name=bucket)
            for doc in db[f"{bucket}.files"].find():
                data = grid.open_download_stream(doc["_id"]).read()
                assert len(data) == doc["length"], (bucket, doc["_id"])
        assert db[f"{bucket}.files"].count_documents({"metadata.role": "original"}) == 0, bucket
    own = {"uploaded", "focal_point"}  # the bytes never moved: the file with the image's id holds them
    for how, media in made.items():
        image_id, body = ObjectId(media["id"]), served(client, media)
        record = images(db, Buckets.BUILDER).find_one({"_id": image_id})
        assert record["length"] == len(body) == media["bytes"], how  # what the record says is the truth
        if how in own:
            assert own_file_bytes(db, Buckets.BUILDER, image_id) == body, how
            continue
        # A changed image: the file with its id is an earlier version's bytes, or none; whole either way.
        try:
            earlier = own_file_bytes(db, Buckets.BUILDER, image_id)
        except gridfs.errors.NoFile:
            continue
        assert earlier != body, how


def test_the_changed_images_stay_whole_through_gc_and_fsck_and_the_counters(client, db, editor, media_core):
    made = every_kind_of_image(client, editor)
    # An image's record (no chunks) and the files its bytes moved to are not garbage to gc.
    later = now() + dt.timedelta(hours=2)
    assert AppMedia.on(db, media_core).maintenance.collect_garbage(grace_seconds=0, now=later).removed == []
    assert AppMedia.on(db).maintenance.fsck().findings == []
    recounted = Figures(db).recount_media()
    for bucket in STORED:
        assert recounted[bucket]["drift"] == {"files": 0, "originals": 0, "bytes": 0, "chunks": 0}
    for how, media in made.items():
        assert current_bytes(db, Buckets.BUILDER, ObjectId(media["id"])) == served(client, media), how
