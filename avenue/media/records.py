"""Typed records of stored images: what the rest of the app gets instead of files documents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database

from avenue.clock import as_utc, maybe_utc
from avenue.media.buckets import SIGNED_ONLY

# The variant name an edited image lists its unedited original under (media/ingest/edits.py).
SOURCE = "source"

# A MongoDB document as pymongo returns it (the app's client uses plain dicts).
Document = dict[str, Any]

# Where a bucket's image records live, named in this one place. An image's record (its id,
# names, versions, edits, variants, folder, tags: shaped as a files document, role "original")
# is in ``<bucket>.images``, apart from the GridFS files of ``<bucket>.files`` (its bytes, its
# variants), so every document there is a whole GridFS file and stock tools read each one.
IMAGE: dict[str, Any] = {"metadata.role": "original"}  # every record's role


def images_name(bucket: str) -> str:
    """The name of the collection holding ``bucket``'s image records."""
    return f"{bucket}.images"


def images(db: Database[Document], bucket: str) -> Collection[Document]:
    """The collection holding ``bucket``'s image records."""
    return db[images_name(bucket)]


def is_image(doc: Mapping[str, Any] | None) -> bool:
    """Whether ``doc`` is an image's record (not a variant's files document, nor missing)."""
    return doc is not None and (doc.get("metadata") or {}).get("role") == "original"


@dataclass(frozen=True)
class MediaDoc:
    """What serving an original or its variants needs from the files document."""

    file_id: object
    length: int
    chunk_size: int
    sha256: str
    content_type: str
    upload_date: dt.datetime
    filename: str
    format: str
    visibility: str
    variants: dict[str, Any]
    # Replaced in place (media/store/replace.py): the file holding the original's bytes now, the
    # version its URLs carry, and until when each earlier version's URLs redirect here.
    content_id: object = None
    version: str = ""
    versions: dict[str, dt.datetime] = field(default_factory=dict)
    # The earlier versions its history keeps (media/store/history.py): a restore or an undo can
    # make one current again, so the route never refuses their URLs ahead (MediaCache.refuse).
    history: frozenset[str] = frozenset()
    # Where the subject is, (x, y) in 0..1: what renditions on request crop around.
    focal: tuple[float, float] = (0.5, 0.5)
    # Named crops (media/ingest/edits.py): name -> (x, y, width, height) in 0..1.
    crops: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    # The picture's size as displayed (None: not recorded): a rendition wider than it is the
    # picture at its own width, stored once (avenue/media/transform.py clamp).
    width: int | None = None
    height: int | None = None
    # Its readable name (avenue/media/names.py), in its public named URL; None: it has none.
    name: str | None = None

    @property
    def private(self) -> bool:
        """Served only with a valid signature, and never cached by shared caches."""
        return self.visibility == "private"

    @property
    def transparent(self) -> bool:
        """Whether the image has transparency: its fallback variants are PNG, not JPEG."""
        return any("png" in formats for name, formats in self.variants.items() if name != SOURCE)

    @property
    def bytes_id(self) -> object:
        """The file whose chunks hold the original's bytes (its own, until it is replaced): as
        :func:`bytes_of` says of the record it was read from."""
        return self.content_id if self.content_id is not None else self.file_id

    @classmethod
    def from_files_doc(cls, bucket: str, doc: dict[str, Any]) -> MediaDoc:
        """The original whose files document is ``doc``, of ``bucket`` (a bucket of
        :data:`~avenue.media.buckets.SIGNED_ONLY` makes it private)."""
        meta = doc.get("metadata") or {}
        content = meta.get("content") or {}
        return cls(
            file_id=doc["_id"],
            length=content.get("length", doc["length"]),
            chunk_size=content.get("chunk_size", doc["chunkSize"]),
            sha256=meta.get("sha256", ""),
            content_type=meta.get("content_type", "application/octet-stream"),
            # Last-Modified: when these bytes arrived (a replace keeps the upload date, which
            # orders the lists, and records its own).
            upload_date=meta.get("replaced_at") or doc["uploadDate"],
            filename=meta.get("filename") or doc.get("filename") or "image",
            format=meta.get("format", ""),
            visibility=_visibility(bucket, meta),
            variants=meta.get("variants") or {},
            content_id=content.get("id"),
            version=meta.get("version") or "",
            versions={entry["v"]: as_utc(entry["until"]) for entry in meta.get("versions") or []
                      if isinstance(entry, dict) and "until" in entry},
            history=frozenset(str(item["v"]) for item in meta.get("history") or []
                              if isinstance(item, dict) and item.get("v")),
            focal=_focal(meta.get("focal_point")),
            crops=_crops(meta.get("crops")),
            width=_size(meta.get("width")),
            height=_size(meta.get("height")),
            name=meta.get("name") if isinstance(meta.get("name"), str) else None,
        )


def _visibility(bucket: str, meta: Mapping[str, Any]) -> str:
    """An image's visibility: its metadata's, or private in a bucket that serves only signed URLs."""
    return "private" if bucket in SIGNED_ONLY else str(meta.get("visibility", "public"))


def _size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _crops(value: object) -> dict[str, tuple[float, float, float, float]]:
    """Stored named crops as boxes (malformed ones left out)."""
    crops: dict[str, tuple[float, float, float, float]] = {}
    for name, box in (value.items() if isinstance(value, Mapping) else ()):
        if isinstance(box, Mapping):
            numbers = [box.get(k) for k in ("x", "y", "width", "height")]
            if all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
                x, y, w, h = (float(n) for n in numbers)  # type: ignore[arg-type]
                crops[str(name)] = (x, y, w, h)
    return crops


def _focal(value: object) -> tuple[float, float]:
    """A stored focal point as (x, y); the centre when absent or malformed."""
    if isinstance(value, Mapping):
        x, y = value.get("x"), value.get("y")
        if isinstance(x, int | float) and isinstance(y, int | float) and 0 <= x <= 1 and 0 <= y <= 1:
            return float(x), float(y)
    return 0.5, 0.5


@dataclass(frozen=True)
class Image:
    """A stored original, as every part of the app outside the media package sees it.

    Built from the original's files document (:meth:`from_files_doc`); nothing outside
    ``avenue.media`` reads files documents or spells their metadata paths.
    """

    id: ObjectId
    bucket: str
    filename: str
    bytes: int
    uploaded_at: dt.datetime | None
    content_type: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    source_sha256: str | None = None
    frames: int = 1
    visibility: str = "public"
    owner: str | None = None
    kind: str | None = None
    key: str | None = None
    alt: str | None = None
    name: str | None = None  # its readable name in public URLs (media/names.py)
    expires_at: dt.datetime | None = None
    deleting_at: dt.datetime | None = None
    variants: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    placeholder: dict[str, str] | None = None  # {"blurhash", "color"} (media/ingest/placeholders.py)
    focal_point: dict[str, float] | None = None  # {"x", "y"} in 0..1 (media/ingest/focal.py)
    folder: str | None = None  # builder library: one path-like folder ("/" when not set)
    tags: tuple[str, ...] = ()  # builder library: labels to find images by
    version: str = ""  # "" until replaced in place; then in every URL (media/store/replace.py)
    content_id: ObjectId | None = None  # the file holding the bytes, once replaced
    palette: tuple[dict[str, Any], ...] = ()  # [{"color", "share"}] (media/ingest/near_hash.py)
    phash: str | None = None  # 16 hex digits (media/ingest/near_hash.py)
    # Non-destructive edits (media/ingest/edits.py): the normalised edits (None: none) and the
    # named crops, {name: {"x", "y", "width", "height"}} in 0..1 of the edited picture.
    edits: dict[str, Any] | None = None
    crops: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def source(self) -> dict[str, Any]:
        """The unedited original an editor draws on: ``{"width", "height"}`` as it is oriented,
        and ``variant``: the variant name its URL ends in ("" when the image is not edited:
        the original's own URL)."""
        formats = self.variants.get(SOURCE) or {}
        info = next(iter(formats.values()), None)
        if info is None:
            return {"width": self.width, "height": self.height, "variant": ""}
        return {"width": info.get("width"), "height": info.get("height"), "variant": SOURCE}

    @property
    def private(self) -> bool:
        """Served only with a valid signature."""
        return self.visibility == "private"

    @property
    def variant_ids(self) -> list[ObjectId]:
        """The file ids of every rendition the original lists (and of its bytes' own file,
        once replaced)."""
        ids = [info["id"] for formats in self.variants.values() for info in formats.values()]
        return [*ids, self.content_id] if self.content_id is not None else ids

    @classmethod
    def from_files_doc(cls, bucket: str, doc: Mapping[str, Any]) -> Image:
        """The record of the original whose files document is ``doc``."""
        meta = doc.get("metadata") or {}
        content = meta.get("content") or {}
        return cls(
            id=doc["_id"],
            bucket=bucket,
            filename=meta.get("filename") or doc.get("filename") or "image",
            bytes=content.get("length", doc.get("length") or 0),
            uploaded_at=doc.get("uploadDate"),  # as stored: references copy it verbatim
            content_type=meta.get("content_type"),
            format=meta.get("format"),
            width=meta.get("width"),
            height=meta.get("height"),
            sha256=meta.get("sha256"),
            source_sha256=meta.get("source_sha256"),
            frames=meta.get("frames", 1),
            visibility=_visibility(bucket, meta),
            owner=meta.get("owner"),
            kind=meta.get("kind"),
            key=meta.get("key"),
            alt=meta.get("alt"),
            name=meta.get("name") if isinstance(meta.get("name"), str) else None,
            expires_at=maybe_utc(meta.get("expires_at")),
            deleting_at=maybe_utc(meta.get("deleting_at")),
            variants=meta.get("variants") or {},
            placeholder=meta.get("placeholder"),
            focal_point=meta.get("focal_point"),
            folder=meta.get("folder"),
            tags=tuple(meta.get("tags") or ()),
            version=meta.get("version") or "",
            content_id=content.get("id"),
            palette=tuple(meta.get("palette") or ()),
            phash=meta.get("phash"),
            edits=meta.get("edits") or None,
            crops=dict(meta.get("crops") or {}),
        )

    def ref(self) -> dict[str, Any]:
        """What a document that uses this image (a product) stores about it: enough to answer
        with the image object without reading GridFS. ``id`` is the original's ObjectId."""
        ref: dict[str, Any] = {
            "id": self.id,
            "filename": self.filename,
            "content_type": self.content_type,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "frames": self.frames,
            "visibility": self.visibility,
            "uploaded_at": self.uploaded_at,
            "variant_sizes": {
                name: {"width": info["webp"]["width"], "height": info["webp"]["height"]}
                for name, info in self.variants.items() if "webp" in info and name != SOURCE
            },
            "variant_formats": {name: sorted(info) for name, info in self.variants.items() if name != SOURCE},
            "source": self.source,
        }
        if self.edits:
            ref["edits"] = dict(self.edits)
        if self.crops:
            ref["crops"] = {name: dict(box) for name, box in self.crops.items()}
        if self.expires_at is not None:
            ref["expires_at"] = self.expires_at
        if self.alt is not None:
            ref["alt"] = self.alt
        if self.name is not None:
            ref["name"] = self.name
        if self.placeholder:
            ref["placeholder"] = dict(self.placeholder)
        if self.focal_point:
            ref["focal_point"] = dict(self.focal_point)
        if self.version:
            ref["version"] = self.version
        return ref


@dataclass(frozen=True)
class Stored:
    """What storing (or bringing) an image into a bucket gave: the image, and whether this
    call created it (False: identical bytes were there already and are reused)."""

    image: Image
    created: bool
    # Its near-duplicates in the bucket, nearest first (store/near_duplicates.py); None: not known (the
    # lookup failed or did not answer in time: an answer then names none, rather than "none").
    near: tuple[Near, ...] | None = ()


@dataclass(frozen=True)
class Changed:
    """What a replace or an edit gave: the image, whether it changed, and, when its picture
    changed, the near-duplicates its new picture was grouped with (nearest first). ``near`` is
    None when they were not looked up (the same picture, a new focal point): the caller looks
    them up if its answer names them. The group's lookup is the answer's: never run twice."""

    image: Image
    changed: bool
    near: tuple[Near, ...] | None = None


@dataclass(frozen=True)
class Near:
    """A near-duplicate of an image: the other image and the Hamming distance of their hashes."""

    image: Image
    distance: int


@dataclass(frozen=True)
class NearGroup:
    """Near-duplicates of one bucket: the group's label and its images, oldest first."""

    label: ObjectId
    images: list[Image]


@dataclass(frozen=True)
class ExactGroup:
    """Exact duplicates of one bucket: the label, ``bytes`` (one file) or ``pixels`` (files
    decoding to the same pixels), and the images, oldest first."""

    label: ObjectId
    kind: str
    images: list[Image]


def variant_key(original_id: Any, name: str, fmt: str, version: str = "") -> str:
    """A variant's unique ``metadata.key``: per original, per version once replaced."""
    owner = f"{original_id}~{version}" if version else str(original_id)
    return f"{owner}/{name}.{fmt}"


def own_length(doc: Mapping[str, Any]) -> int:
    """How many bytes a head written before the records moved out of ``.files`` holds in its
    own chunks (a backup's, a store to migrate): its ``length``, but 0 when it was replaced in
    place (``metadata.content``'s file holds its bytes, and its ``length`` is theirs)."""
    if (doc.get("metadata") or {}).get("content"):
        return 0
    return int(doc.get("length") or 0)


class Bytes(NamedTuple):
    """Where an image's bytes are: a GridFS file of its bucket, its length and chunk size."""

    id: Any
    length: int
    chunk_size: int

    def content(self, sha256: str) -> dict[str, Any]:
        """These bytes as a record's ``metadata.content`` names them (another image holding
        the file, shared by reference)."""
        return {"id": self.id, "length": self.length, "chunk_size": self.chunk_size, "sha256": sha256}


def bytes_of(record: Mapping[str, Any]) -> Bytes:
    """The file holding an image's bytes, by its record alone (no look-up: a cold render's
    commands are counted): the file ``metadata.content`` names once the image changed in place
    (or shares another's bytes), else the file under the image's own id. The one place this
    rule is written for the app; docs/operations.md gives it to stock tools."""
    content = (record.get("metadata") or {}).get("content") or {}
    if content.get("id") is None:
        return Bytes(record["_id"], int(record.get("length") or 0), int(record.get("chunkSize") or 0))
    return Bytes(content["id"], int(content.get("length", record.get("length") or 0)),
                 int(content.get("chunk_size", record.get("chunkSize") or 0)))


def content_length(doc: Mapping[str, Any]) -> int:
    """The length of an image's bytes by its record (or a head written before the records
    moved): wherever they are, its own id's file or ``metadata.content``'s."""
    content = (doc.get("metadata") or {}).get("content") or {}
    return int(content.get("length", doc.get("length") or 0))


def variant_ids(doc: Mapping[str, Any]) -> list[Any]:
    """The file ids of every variant an original's files document lists, and of the file
    holding its bytes once it was replaced in place (``metadata.content``)."""
    meta = doc.get("metadata") or {}
    ids = [info["id"] for formats in meta.get("variants", {}).values() for info in formats.values()]
    content = meta.get("content") or {}
    return [*ids, content["id"]] if content.get("id") is not None else ids
