"""The buckets' indexes (avenue/media/store/indexes.py): the records' in <bucket>.images, the
files' in <bucket>.files, and what a store of the older layout kept dropped."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from avenue.media.store.indexes import ensure_indexes


def test_the_records_indexes_a_migrated_store_kept_on_its_files_are_dropped(db):
    """A store of layout 1 had its records (and their indexes) in <bucket>.files: after the
    migration the next start drops those indexes there, and they are on <bucket>.images."""
    files = db["uploads.files"]
    files.create_indexes([IndexModel([("metadata.phash_bands", ASCENDING)], name="phash_bands"),
                          IndexModel([("metadata.trash.purge_after", ASCENDING)], name="trash_purge")])
    ensure_indexes(db)
    kept = set(files.index_information())
    assert "phash_bands" not in kept and "trash_purge" not in kept
    assert {"metadata_key_unique", "variant_of", "role_newest"} <= kept
    assert "phash_bands" in db["uploads.images"].index_information()
