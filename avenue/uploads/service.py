"""General uploads (bucket uploads): any logged-in user's images, public or private.

The files document of the original is the record: ``metadata.owner`` is the uploader's user
id, ``metadata.visibility`` "public" or "private". Uploads are deduplicated per owner and
visibility, so one user's identical files share storage and nobody else's ever do.
Anyone but the owner (or an admin) gets the same 404 as for an id that does not exist.
"""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING
from pymongo.database import Database

from avenue.errors import BadRequest, NotFound
from avenue.media import UPLOADS, Limits, StoreResult, UrlSigner, delete_image, image_object, store

FILES = f"{UPLOADS}.files"
VISIBILITIES = ("public", "private")


def parse_visibility(value: str | None) -> str:
    """``public`` or ``private`` (the default when not sent); 400 for anything else."""
    if value is None or value == "":
        return "private"
    if value not in VISIBILITIES:
        raise BadRequest("visibility must be 'public' or 'private'.", code="invalid_visibility")
    return value


def upload(db: Database, stream, *, filename: str | None, owner: str, visibility: str,
           limits: Limits) -> StoreResult:
    """Store one image for ``owner``; an identical earlier upload (same owner and visibility)
    is returned instead of a copy."""
    return store(db, UPLOADS, stream, filename=filename, owner=owner, limits=limits, kind="upload",
                 scope=f"{owner}:{visibility}", visibility=visibility)


def list_uploads(db: Database, *, user_id: str, is_admin: bool, owner: str | None = None,
                 page: int = 1, per_page: int = 20) -> tuple[list[dict], int]:
    """A user's own uploads, newest first; admins see everyone's, optionally one ``owner``'s."""
    query: dict = {"metadata.role": "original"}
    if not is_admin:
        query["metadata.owner"] = user_id
    elif owner:
        query["metadata.owner"] = owner
    total = db[FILES].count_documents(query)
    docs = list(db[FILES].find(query).sort([("uploadDate", DESCENDING), ("_id", DESCENDING)])
                .skip((page - 1) * per_page).limit(per_page))
    return docs, total


def get_upload(db: Database, upload_id: str, *, user_id: str, is_admin: bool) -> dict:
    """The files document of an upload the user may see; 404 otherwise (no existence leak)."""
    try:
        oid = ObjectId(str(upload_id))
    except (InvalidId, TypeError):
        oid = None
    query: dict = {"_id": oid, "metadata.role": "original"}
    if not is_admin:
        query["metadata.owner"] = user_id
    doc = db[FILES].find_one(query) if oid else None
    if doc is None:
        raise NotFound("No upload with this id.", code="upload_not_found")
    return doc


def delete_upload(db: Database, upload_id: str, *, user_id: str, is_admin: bool) -> dict:
    """Delete an upload the user may see (with its variants); returns its files document."""
    doc = get_upload(db, upload_id, user_id=user_id, is_admin=is_admin)
    delete_image(db, UPLOADS, doc)
    return doc


def upload_object(doc: dict, signer: UrlSigner) -> dict:
    """The image object of an upload (signed, expiring URLs when private), with its owner."""
    obj = image_object(doc, UPLOADS, signer)
    obj["owner"] = doc["metadata"].get("owner")
    return obj
