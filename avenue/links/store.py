"""One-time upload links as stored: ``media_upload_links``, owned by this module alone.

A link lets whoever holds its secret upload into one target (``uploads``, ``builder`` with a
folder and tags, or ``product`` by SKU) up to ``max_uses`` files of at most ``max_bytes``
each until ``expires_at``, unless revoked. Only the SHA-256 of the secret is stored (as API
tokens are, avenue/auth/service.py): the secret is shown once, in the create answer, and a
database dump cannot upload anything. Every state lives in this one document, so any worker
of any instance answers the same.

Write order, and why concurrent holders are safe without transactions:

1. **A use is taken by one conditional update** (:func:`take_use`): ``find_one_and_update``
   on ``{_id, revoked_at: null, expires_at > now, remaining > 0}`` with ``$inc {remaining: -1,
   uses: 1}``. MongoDB applies it to one document atomically, so of two uploads racing for the
   last use exactly one matches; the other finds ``remaining: 0`` and is refused (410
   ``upload_link_used_up``). A counter of what is left is kept next to ``uses`` because
   ``uses < max_uses`` compares two fields, which needs ``$expr`` (not every backend this
   runs on has it); ``remaining`` is set to ``max_uses`` on creation and only ever moved
   with ``uses``, in the same update.
2. **A refused file gives its use back** (:func:`give_back`): the upload path takes the use
   before it stores anything (so the race above is decided first) and, when the file is then
   refused (not an image, over the size, a full product), ``$inc {remaining: 1, uses: -1,
   refused: 1}`` conditional on ``uses > 0``. A bad file never burns a single-use link. A
   worker that dies between the two keeps the use taken (the safe side: never more files than
   allowed). The refused files count toward a bound of their own, :data:`MAX_REFUSED`: step
   1's filter also wants ``refused`` below it, so a link through which that many files were
   refused takes no more (410 ``upload_link_refused_out``): each refused file cost the server
   its checks (an SVG's draws among them), and a given-back use would otherwise let one
   single-use link carry any number of them.
3. **Revoking** sets ``revoked_at`` once (conditional on it being null); a use taken before it
   finishes its upload, later ones are refused by step 1's filter.
4. **Expiry** is ``expires_at``: step 1's filter refuses an expired link at once, whatever
   the clock of the worker that wrote it. The first reader that sees a link expired (a holder's
   attempt, a list) marks ``expiry_noted`` by one conditional update, so the audit gets one
   ``upload_link_expired`` entry per link. A TTL index on ``purge_at`` (``expires_at`` plus
   :data:`KEPT_DAYS`) removes the document afterwards on the server's own sweep; until then it
   stays in the list as expired.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from bson import ObjectId
from pydantic import Field, WithJsonSchema
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.database import Database

from avenue.clock import as_utc, isoformat, now
from avenue.dialect import lister
from avenue.errors import AvenueError, NotFound
from avenue.indexes import create_missing
from avenue.paging import Page, Window
from avenue.shapes import Absent, Answer, ObjectIdText
from avenue.targets import LINKABLE

COLLECTION = "media_upload_links"
SECRET_PREFIX = "avl_"
# How long an expired, revoked or used-up link stays listed before the TTL index removes it.
KEPT_DAYS = 30
NEWEST = [("created_at", DESCENDING), ("_id", DESCENDING)]
#: Files a link may have refused (each gives its use back) before it takes no more: enough for
#: a holder's few wrong files, not for a stream of costly ones through one single-use link.
MAX_REFUSED = 10


class LinkGone(AvenueError):
    """A real link that no longer takes uploads: revoked, expired or used up (the holder has
    the secret, so saying which leaks nothing)."""

    status = 410


TIME = Field(json_schema_extra={"format": "date-time"})
State = Literal["live", "used_up", "expired", "revoked"]


class LinkTarget(Answer):
    """The target a link opens and the fields its upload route takes."""

    kind: Annotated[str, WithJsonSchema({"enum": list(LINKABLE)})]
    visibility: Absent[Annotated[Literal["public", "private"], Field(description="uploads")]] = None
    folder: Absent[Annotated[str, Field(max_length=600, description="/name/name…, at most 8 names.")]] = None
    tags: Absent[list[Annotated[str, Field(min_length=1, max_length=40)]]] = None
    alt: Absent[str] = None
    sku: Absent[Annotated[str, Field(description="product: the product the photos go onto")]] = None


class LinkCreator(Answer):
    """Who created the link."""

    id: Absent[str] = None
    email: Absent[str] = None


class UploadLink(Answer):
    """An upload link as the API shows it (never its secret)."""

    id: ObjectIdText
    label: str | None
    target: LinkTarget
    max_bytes: Annotated[int, Field(ge=1)]
    max_uses: Annotated[int, Field(ge=1)]
    uses: Annotated[int, Field(ge=0, description="Files stored through it (a refused file gives its use "
                                                 "back).")]
    refused: Annotated[int, Field(ge=0, description=f"Files refused through it: at {MAX_REFUSED} the link "
                                                    "takes no more (state used_up).")]
    state: State
    created_by: LinkCreator
    created_at: Annotated[str | None, TIME]
    expires_at: Annotated[str | None, TIME]
    revoked_at: Annotated[str | None, TIME]


@dataclass(frozen=True)
class Link:
    """One upload link as stored (never its secret)."""

    id: ObjectId
    target: dict[str, Any]
    label: str | None
    max_bytes: int
    max_uses: int
    uses: int
    remaining: int
    created_by: dict[str, Any]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    expiry_noted: bool
    refused: int = 0  # files refused through it (a link made before the count: none counted)

    def state(self, at: dt.datetime | None = None) -> State:
        """``revoked``, ``expired``, ``used_up`` or ``live``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (at or now()):
            return "expired"
        return "used_up" if self.remaining <= 0 or self.refused >= MAX_REFUSED else "live"

    def shown(self) -> UploadLink:
        """The link as the API shows it."""
        return UploadLink(id=str(self.id), label=self.label,
                          target=LinkTarget(**{key: value for key, value in self.target.items()
                                               if value is not None}),
                          max_bytes=self.max_bytes, max_uses=self.max_uses, uses=self.uses,
                          refused=self.refused, state=self.state(), created_by=LinkCreator(**self.created_by),
                          created_at=isoformat(self.created_at), expires_at=isoformat(self.expires_at),
                          revoked_at=isoformat(self.revoked_at))

    def to_dict(self) -> dict[str, Any]:
        """The link as the API shows it, as JSON."""
        return self.shown().answer()


def _record(doc: dict[str, Any]) -> Link:
    revoked = doc.get("revoked_at")
    return Link(id=doc["_id"], target=dict(doc["target"]), label=doc.get("label"), max_bytes=doc["max_bytes"],
                max_uses=doc["max_uses"], uses=doc["uses"], remaining=doc["remaining"],
                refused=doc.get("refused", 0),
                created_by=dict(doc.get("created_by") or {}), created_at=as_utc(doc["created_at"]),
                expires_at=as_utc(doc["expires_at"]), revoked_at=as_utc(revoked) if revoked else None,
                expiry_noted=bool(doc.get("expiry_noted")))


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def indexes() -> list[IndexModel]:
    """The holder's lookup (unique hash), the two lists (everyone's for admins, a creator's
    own), and the TTL that removes a link :data:`KEPT_DAYS` after it expired."""
    return [IndexModel([("secret_hash", ASCENDING)], unique=True, name="secret_hash_unique"),
            IndexModel(NEWEST, name="newest"),
            IndexModel([("created_by.id", ASCENDING), *NEWEST], name="creator_newest"),
            IndexModel([("purge_at", ASCENDING)], expireAfterSeconds=0, name="purge_ttl")]


def ensure_indexes(db: Database[Any]) -> None:
    create_missing(db[COLLECTION], indexes())


def create(db: Database[Any], *, target: dict[str, Any], label: str | None, max_bytes: int, max_uses: int,
           lifetime_seconds: int, created_by: dict[str, Any], at: dt.datetime | None = None
           ) -> tuple[Link, str]:
    """A new link and its secret (shown this once: only its hash is kept)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    created = at or now()
    expires = created + dt.timedelta(seconds=lifetime_seconds)
    doc: dict[str, Any] = {"_id": ObjectId(), "secret_hash": secret_hash(secret), "target": target,
                           "label": label, "max_bytes": max_bytes, "max_uses": max_uses, "uses": 0,
                           "remaining": max_uses, "refused": 0, "created_by": created_by,
                           "created_at": created,
                           "expires_at": expires, "revoked_at": None, "expiry_noted": False,
                           "purge_at": expires + dt.timedelta(days=KEPT_DAYS)}
    db[COLLECTION].insert_one(doc)
    return _record(doc), secret


def by_secret(db: Database[Any], secret: str) -> Link | None:
    """The link this secret opens, whatever its state (None: no such link)."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
        return None
    wanted = secret_hash(secret)
    doc = db[COLLECTION].find_one({"secret_hash": wanted})
    # Found by the hash's index; compared again in constant time so the answer never depends
    # on how much of a guess matched.
    if doc is None or not hmac.compare_digest(doc["secret_hash"], wanted):
        return None
    return _record(doc)


def get(db: Database[Any], link_id: ObjectId) -> Link:
    doc = db[COLLECTION].find_one({"_id": link_id})
    if doc is None:
        raise NotFound("No upload link with this id.", code="upload_link_not_found")
    return _record(doc)


def refusal(link: Link, at: dt.datetime | None = None) -> LinkGone | None:
    """Why this link takes no upload now (None: it does)."""
    state = link.state(at)
    if state == "revoked":
        return LinkGone("This upload link was revoked.", code="upload_link_revoked")
    if state == "expired":
        return LinkGone("This upload link expired.", code="upload_link_expired",
                        expired_at=isoformat(link.expires_at))
    if state == "used_up" and link.refused >= MAX_REFUSED:
        return LinkGone(f"{link.refused} files sent through this upload link were refused, all it allows; "
                        "ask its creator for a new one.", code="upload_link_refused_out",
                        max_refused=MAX_REFUSED)
    if state == "used_up":
        return LinkGone(f"This upload link was used {link.max_uses} time(s), all it allows.",
                        code="upload_link_used_up")
    return None


def take_use(db: Database[Any], link: Link, at: dt.datetime | None = None) -> Link:
    """One use of the link, taken atomically (write order 1); :class:`LinkGone` when none is left."""
    moment = at or now()
    doc = db[COLLECTION].find_one_and_update(
        {"_id": link.id, "revoked_at": None, "expires_at": {"$gt": moment}, "remaining": {"$gt": 0},
         "refused": {"$not": {"$gte": MAX_REFUSED}}},  # $not: a link made before the count has none
        {"$inc": {"remaining": -1, "uses": 1}}, return_document=ReturnDocument.AFTER)
    if doc is not None:
        return _record(doc)
    why = refusal(get(db, link.id), moment)
    raise why or LinkGone("This upload link has no use left.", code="upload_link_used_up")


def give_back(db: Database[Any], link: Link) -> None:
    """Return a use a refused file took, the refusal counted (write order 2)."""
    db[COLLECTION].update_one({"_id": link.id, "uses": {"$gt": 0}},
                              {"$inc": {"remaining": 1, "uses": -1, "refused": 1}})


def revoke(db: Database[Any], link_id: ObjectId, at: dt.datetime | None = None) -> tuple[Link, bool]:
    """Revoke the link (write order 3): the link, and whether this call revoked it."""
    doc = db[COLLECTION].find_one_and_update({"_id": link_id, "revoked_at": None},
                                             {"$set": {"revoked_at": at or now()}},
                                             return_document=ReturnDocument.AFTER)
    if doc is not None:
        return _record(doc), True
    return get(db, link_id), False


def note_expiry(db: Database[Any], link: Link) -> bool:
    """Whether this call is the one that noted the link's expiry (write order 4: one audit entry)."""
    if link.expiry_noted or link.state() != "expired":
        return False
    result = db[COLLECTION].update_one({"_id": link.id, "expiry_noted": False},
                                       {"$set": {"expiry_noted": True}})
    return result.modified_count == 1


def page(db: Database[Any], window: Window, *, creator: str | None) -> tuple[list[Link], Page]:
    """Links newest first: every link (``creator`` None) or one creator's."""
    query: dict[str, Any] = {} if creator is None else {"created_by.id": creator}
    index = "newest" if creator is None else "creator_newest"
    found = lister(db)(db[COLLECTION], query, NEWEST, window, index=index)
    return [_record(doc) for doc in found.docs], found
