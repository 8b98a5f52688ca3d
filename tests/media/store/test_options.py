"""What an upload is stored as travels as one record (avenue/media/store/options.py), from the
library to the original's files document."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest

from avenue.media import Buckets, Library, Media
from avenue.media.store.options import UploadOptions
from tests.helpers import image_bytes
from tests.support.records import record


def test_only_the_labels_given_are_kept_in_their_order_tags_as_a_list():
    assert UploadOptions().labels() == {}
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    labels = UploadOptions(tags=("red", "shoes"), folder="/a", alt="", expires_at=at).labels()
    assert list(labels) == ["alt", "expires_at", "folder", "tags"]
    assert labels == {"alt": "", "expires_at": at, "folder": "/a", "tags": ["red", "shoes"]}


def test_the_record_cannot_be_changed_on_its_way():
    with pytest.raises(dataclasses.FrozenInstanceError):
        UploadOptions().owner = "someone"  # type: ignore[misc]


def test_the_library_stores_an_upload_as_its_options_say(db):
    options = UploadOptions(owner="u1", kind="builder", scope="u1", visibility="private", alt="a lamp",
                            folder="/lamps", tags=("red",))
    upload = Library.Upload("lamp.png", io.BytesIO(image_bytes("good/alpha.png")))
    [stored] = Library(db, Buckets.BUILDER, Media()).storing.store_with([upload], options)
    meta = record(db, Buckets.BUILDER, stored.image.id)["metadata"]
    assert stored.created
    assert {k: meta[k] for k in ("owner", "kind", "visibility", "alt", "folder", "tags")} == \
        {"owner": "u1", "kind": "builder", "visibility": "private", "alt": "a lamp", "folder": "/lamps",
         "tags": ["red"]}
    assert meta["key"].startswith("u1:") and "expires_at" not in meta


def test_the_keywords_of_store_are_the_same_record(db):
    library = Library(db, Buckets.BUILDER, Media())
    by_keywords = library.store(Library.Upload("a.png", io.BytesIO(image_bytes("good/alpha.png"))),
                                owner="u2", kind="builder", scope="u2", folder="/f", tags=["t"])
    options = UploadOptions(owner="u2", kind="builder", scope="u2", folder="/f", tags=("t",))
    upload = Library.Upload("b.png", io.BytesIO(image_bytes("good/alpha.png")))
    again = library.storing.store_with([upload], options)
    assert not again[0].created and again[0].image.id == by_keywords.image.id  # same scope, same bytes
