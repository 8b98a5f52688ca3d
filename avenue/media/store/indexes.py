"""The indexes the media package relies on: every bucket's, and the deletions log's.

Our own GridFS writer (:mod:`avenue.media.store.storage`) never runs the driver's per-upload "does
this bucket need indexes?" probe (an unfiltered find_one that scans the whole collection on
some servers), so this start-up step is what guarantees the chunk index GridFS readers and
the unique dedupe key depend on.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

from avenue.indexes import create_missing
from avenue.media.buckets import BUILDER, RENDITIONS, STORED, TRASH
from avenue.media.effects import facets, purge, uploads
from avenue.media.effects.invalidation import DELETIONS, DELETIONS_TTL_SECONDS
from avenue.media.records import Document, images_name
from avenue.media.store import renditions, resumable, undrawable

#: "Mostly close to a colour", newest first: the library's colour list hints it (library.page).
COLOUR_INDEX = "colour_cells_newest"

def chunks_indexes() -> list[IndexModel]:
    """The GridFS spec's unique ``{files_id, n}`` chunk index."""
    return [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True, name="files_id_1_n_1")]


def gridfs_indexes() -> list[IndexModel]:
    """What the media package queries a bucket's GridFS files by, as files."""
    return [
        # The GridFS spec's own index (filename, uploadDate).
        IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)], name="filename_1_uploadDate_1"),
        # Content-addressed dedupe: originals are keyed by source hash (+ scope), variants by
        # original id + name. Unique, so concurrent identical uploads store one file.
        IndexModel([("metadata.key", ASCENDING)], unique=True, name="metadata_key_unique"),
        IndexModel([("metadata.original_id", ASCENDING)], name="variant_of"),
        # The counters' walk of one role's files between dates on the embedded database
        # (effects/counters.walk_role): a window is one bound of this index.
        IndexModel([("metadata.role", ASCENDING), ("uploadDate", DESCENDING), ("_id", DESCENDING)],
                   name="role_newest"),
    ]


def image_indexes() -> list[IndexModel]:
    """What the media package queries a bucket's image records by (fields only they carry)."""
    return [
        IndexModel([("metadata.key", ASCENDING)], unique=True, name="metadata_key_unique"),
        # Bytes shared by reference: an upload finds an image of another scope holding the same
        # bytes (store/originals.py's _twin_bytes) and points at its file instead of a copy.
        IndexModel([("metadata.sha256", ASCENDING)], name="bytes_sha256"),
        # Lists newest first (library.NEWEST_FIRST): equality keys, then the whole sort, so a
        # page is one index walk with no in-memory sort, at any depth with a cursor.
        IndexModel([("metadata.role", ASCENDING), ("uploadDate", DESCENDING), ("_id", DESCENDING)],
                   name="role_newest"),
        IndexModel([("metadata.owner", ASCENDING), ("metadata.role", ASCENDING), ("uploadDate", DESCENDING),
                    ("_id", DESCENDING)], name="owner_role_newest"),
        # Filename search: word starts (originals.name_prefixes), newest first: a word and a
        # window of dates are one index bound (avenue/embedded/fences.py).
        IndexModel([("metadata.name_prefixes", ASCENDING), ("uploadDate", DESCENDING), ("_id", DESCENDING)],
                   name="name_prefixes_newest"),
        # Near-duplicates and colours (avenue/media/store/near_duplicates.py): a lookup is one $in on
        # the hash's bands; groups are walked by label; "mostly close to a colour" is one $in
        # on CIELAB cells, newest first like the other lists.
        IndexModel([("metadata.phash_bands", ASCENDING)], name="phash_bands"),
        IndexModel([("metadata.near_group", ASCENDING), ("_id", ASCENDING)], name="near_group", sparse=True),
        # Exact duplicates (store/exact.py): an upload looks its pixel hash up; groups by label.
        IndexModel([("metadata.pixels_sha256", ASCENDING)], name="pixels_sha256", sparse=True),
        IndexModel([("metadata.exact_group", ASCENDING), ("_id", ASCENDING)], name="exact_group",
                   sparse=True),
        IndexModel([("metadata.colour_cells", ASCENDING), ("uploadDate", DESCENDING), ("_id", DESCENDING)],
                   name=COLOUR_INDEX),
        IndexModel([("metadata.expires_at", ASCENDING)], name="expires_at", sparse=True),
    ]


def files_indexes() -> list[IndexModel]:
    """Every index of a bucket's files collection while it holds the image records too (the
    benches create these on a bucket of their own)."""
    return gridfs_indexes() + image_indexes()


def library_indexes() -> list[IndexModel]:
    """The builder library's own: lists by folder and by tag, newest first (only its
    originals carry ``folder``/``tags``, so the other buckets do without them)."""
    return [
        IndexModel([("metadata.role", ASCENDING), ("metadata.folder", ASCENDING), ("uploadDate", DESCENDING),
                    ("_id", DESCENDING)], name="role_folder_newest"),
        IndexModel([("metadata.role", ASCENDING), ("metadata.tags", ASCENDING), ("uploadDate", DESCENDING),
                    ("_id", DESCENDING)], name="role_tags_newest"),
        # The other orders (library.ORDERS): by name and by size, alone, in a folder, with a tag.
        IndexModel([("metadata.role", ASCENDING), ("filename", ASCENDING), ("_id", ASCENDING)],
                   name="role_name"),
        IndexModel([("metadata.role", ASCENDING), ("metadata.folder", ASCENDING), ("filename", ASCENDING),
                    ("_id", ASCENDING)], name="role_folder_name"),
        IndexModel([("metadata.role", ASCENDING), ("metadata.tags", ASCENDING), ("filename", ASCENDING),
                    ("_id", ASCENDING)], name="role_tags_name"),
        IndexModel([("metadata.role", ASCENDING), ("length", DESCENDING), ("_id", DESCENDING)],
                   name="role_size"),
        IndexModel([("metadata.role", ASCENDING), ("metadata.folder", ASCENDING), ("length", DESCENDING),
                    ("_id", DESCENDING)], name="role_folder_size"),
        IndexModel([("metadata.role", ASCENDING), ("metadata.tags", ASCENDING), ("length", DESCENDING),
                    ("_id", DESCENDING)], name="role_tags_size"),
    ]


def trash_indexes() -> list[IndexModel]:
    """The trash bucket's own (avenue/media/store/trash.py), beside every bucket's: the list, per
    source bucket (what an editor sees), the dedupe lookup of an upload, and gc's purge."""
    return [
        IndexModel([("metadata.role", ASCENDING), ("metadata.trash.deleted_at", DESCENDING),
                    ("_id", DESCENDING)], name="trash_newest"),
        IndexModel([("metadata.trash.from", ASCENDING), ("metadata.role", ASCENDING),
                    ("metadata.trash.deleted_at", DESCENDING), ("_id", DESCENDING)],
                   name="trash_from_newest"),
        IndexModel([("metadata.trash.from", ASCENDING), ("metadata.trash.key", ASCENDING)], name="trash_key"),
        IndexModel([("metadata.trash.purge_after", ASCENDING)], name="trash_purge", sparse=True),
    ]


def records_only_indexes() -> set[str]:
    """The names of the indexes only image records have (none a files collection keeps)."""
    kept = {model.document["name"] for model in gridfs_indexes()}
    return {model.document["name"] for model in image_indexes() + library_indexes() + trash_indexes()} - kept


# Replaced by the indexes above (they end in the list order): dropped when found.
OBSOLETE_FILES_INDEXES = ("role_uploaded", "owner_uploaded", "name_prefixes")


def ensure_indexes(db: Database[Document]) -> None:
    """Create every bucket's indexes and the deletions log's TTL index (idempotent); drop the
    indexes these replaced."""
    create_missing(db[DELETIONS], [
        IndexModel([("at", ASCENDING)], expireAfterSeconds=DELETIONS_TTL_SECONDS, name="ttl"),
        # gc asks whether a file was deleted lately (a temp image just claimed).
        IndexModel([("file_ids", ASCENDING)], name="file_ids"),
    ])
    # The purge outbox's, with or without a hook: which app has one is its Media's to say
    # (core.Purges), not this process's; on an empty collection they cost nothing.
    create_missing(db[purge.OUTBOX], purge.outbox_indexes())
    create_missing(db[facets.FACETS], facets.indexes())
    uploads.start_counting(db)  # uploads per hour: from when an app that counts them first ran
    for bucket in STORED:
        create_missing(db[f"{bucket}.chunks"], chunks_indexes())
        own = library_indexes() if bucket == BUILDER else trash_indexes() if bucket == TRASH else []
        # The files' indexes, and the image records' in their own collection.
        wanted: dict[str, list[IndexModel]] = {}
        wanted.setdefault(f"{bucket}.files", []).extend(gridfs_indexes())
        wanted.setdefault(images_name(bucket), []).extend(image_indexes() + own)
        for name, models in wanted.items():
            present = set(create_missing(db[name], models))
            # A store migrated from layout 1 kept the records' indexes on its files: no use
            # there now, and each one costs every write of a file an entry.
            moved = records_only_indexes() if name == f"{bucket}.files" else set()
            for obsolete in present & (set(OBSOLETE_FILES_INDEXES) | moved):
                db[name].drop_index(obsolete)
    # Renditions on request: their own files indexes (no dedupe key, no lists).
    create_missing(db[f"{RENDITIONS}.chunks"], chunks_indexes())
    create_missing(db[f"{RENDITIONS}.files"], renditions.indexes())
    # Their claims: a stored rendition's is left to lapse (renditions.py, step 4), then removed.
    create_missing(db[renditions.CLAIMS], renditions.claims_indexes())
    # SVG draws that ran past the deadline, remembered for a day (undrawable.py).
    create_missing(db[undrawable.COLLECTION], undrawable.indexes())
    # Resumable uploads (tus): their state and the bytes received so far.
    resumable.ensure_indexes(db)
