"""One-time upload links: what a new link may be, and what a holder's file becomes.

A link names one target of avenue/targets.py, one a link may open (``uploads`` with
``visibility``, ``builder`` with ``folder``, ``tags``, ``alt``, or ``product`` with ``sku``),
checked when the link is created exactly as that target's upload route checks its form (a
product that does not exist is 404, a full one 422). A holder's file then goes through
:func:`avenue.targets.store`, the same service call as the multipart route of that
target (validation, stripping, dedupe, rendering, references), with the link's creator as the
owner and the link's ``max_bytes`` as the size limit (never above the app's).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field
from pymongo.database import Database

from avenue import targets
from avenue.errors import BadRequest, Forbidden
from avenue.links import store
from avenue.shapes import Answer, ObjectIdText

FIELDS = frozenset({"target", "label", "max_bytes", "max_uses", "expires_in"})
MAX_USES = 1000
MAX_LABEL = 200


@dataclasses.dataclass(frozen=True)
class Rules:
    """What the configuration allows a link."""

    max_upload_bytes: int
    default_seconds: int
    max_seconds: int


@dataclasses.dataclass(frozen=True)
class Request:
    """A checked create body."""

    target: targets.Target
    label: str | None
    max_bytes: int
    max_uses: int
    lifetime_seconds: int


def _whole(body: dict[str, Any], name: str, default: int, low: int, high: int, why: str) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} is a whole number from {low:,} to {high:,} ({why}).",
                         code=f"invalid_{name}", minimum=low, maximum=high)
    return value


def _target_fields(raw: Any) -> dict[str, str]:
    """The target object as the text fields :func:`avenue.targets.parse` reads (tags as a comma
    list)."""
    if not isinstance(raw, dict) or raw.get("kind") not in targets.LINKABLE:
        raise BadRequest(f"target is an object whose kind is one of {', '.join(targets.LINKABLE)}.",
                         code="invalid_target")
    kind = raw["kind"]
    takes = targets.KIND[kind].fields
    unknown = set(raw) - {"kind", *takes}
    if unknown:
        raise BadRequest(f"A {kind} link's target takes {', '.join(takes)} besides kind, "
                         f"not {', '.join(sorted(unknown))}.", code="invalid_target")
    fields = {"target": kind}
    for name in takes:
        value = raw.get(name)
        if value is None:
            continue
        if name == "tags" and isinstance(value, list) and all(isinstance(tag, str) for tag in value):
            value = ",".join(value)
        if not isinstance(value, str):
            raise BadRequest(f"target.{name} is a string.", code="invalid_target")
        fields[name] = value
    return fields


def check_request(db: Database[Any], body: dict[str, Any], rules: Rules,
                  settings: targets.Settings) -> Request:
    """A create body checked: 400 for a bad field, 404 / 422 for a product that does not exist
    or is full (the target is checked as its upload route would check it)."""
    unknown = set(body) - FIELDS
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="unknown_field")
    target = targets.parse(db, _target_fields(body.get("target")), settings)
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
        raise BadRequest(f"label is text of at most {MAX_LABEL} characters.", code="invalid_label")
    label = " ".join(label.split()) or None if isinstance(label, str) else None
    return Request(
        target=target, label=label,
        max_bytes=_whole(body, "max_bytes", rules.max_upload_bytes, 1, rules.max_upload_bytes,
                         "bytes per file, at most the upload limit"),
        max_uses=_whole(body, "max_uses", 1, 1, MAX_USES, "files the link takes"),
        lifetime_seconds=_whole(body, "expires_in", rules.default_seconds, 60, rules.max_seconds,
                                "seconds the link lives"))


def check_same_target(link: store.Link, sent: dict[str, Any]) -> None:
    """403 when a holder's request names another target than the link's (a ``target`` or
    ``sku`` form field or tus metadata): a link opens its own target and nothing else."""
    kind = sent.get("target")
    if kind and kind != link.target["kind"]:
        raise Forbidden(f"This upload link is for {link.target['kind']}, not {kind}.",
                        code="upload_link_wrong_target")
    sku = sent.get("sku")
    if sku and sku != link.target.get("sku"):
        raise Forbidden("This upload link is not for this product.", code="upload_link_wrong_target")


def owner_of(link: store.Link) -> str:
    """Whose the holder's images are: the link's creator's (an upload link's images are listed
    with theirs)."""
    return str(link.created_by["id"])


def settings_for(link: store.Link, settings: targets.Settings) -> targets.Settings:
    """The app's upload settings with the link's size limit (only ever lower)."""
    limits = dataclasses.replace(settings.limits, max_bytes=min(settings.limits.max_bytes, link.max_bytes))
    return dataclasses.replace(settings, limits=limits)


def target_of(link: store.Link) -> targets.Target:
    """The link's target as a holder's upload carries it: naming the link, so the target's
    service call only adds (:func:`avenue.targets.store`)."""
    return dataclasses.replace(targets.Target.from_dict(link.target), link=str(link.id))


def store_file(db: Database[Any], link: store.Link, filename: str | None, data: bytes,
               settings: targets.Settings) -> targets.Completed:
    """A holder's file stored into the link's target by that target's own service call: it
    only adds (an image already there keeps its folder, tags and alt text, an image in the
    trash stays there)."""
    return targets.store(db, target_of(link), filename, data, owner=owner_of(link),
                         settings=settings_for(link, settings))


class HolderImage(Answer):
    """What a holder's answer shows of the image: what the holder's own file tells, and where it
    is served. Never its file name, alt text, owner, folder, tags, edits or near-duplicates: on
    a dedupe hit those are an editor's, not the holder's."""

    id: ObjectIdText
    url: Annotated[str, Field(description="Signed and expiring when private.")]
    variants: dict[str, str]
    content_type: str | None
    width: int | None
    height: int | None
    bytes: int | None
    sha256: str | None
    visibility: Literal["public", "private"]


class LinkUploaded(Answer):
    """A holder's file stored: the image (null: gone since), whether it was new, the uses left."""

    image: HolderImage | None
    created: bool
    uses_left: Annotated[int, Field(ge=0)]


def holder_image(image: dict[str, Any]) -> HolderImage:
    """The image object cut to :class:`HolderImage`'s fields: what a link's answer shows."""
    return HolderImage(**{name: image[name] for name in HolderImage.model_fields if name in image})
