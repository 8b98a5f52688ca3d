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
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainValidator, ValidationInfo, model_validator
from pydantic.json_schema import SkipJsonSchema
from pymongo.database import Database

from avenue import targets
from avenue.errors import AvenueError, BadRequest, Forbidden
from avenue.links import store
from avenue.media import AppMedia, Resumables
from avenue.shapes import Answer, ObjectIdText, Shape, described_by, refused
from avenue.tus.service import TusProgress, TusTarget, progress_of

MAX_USES = 1000
MAX_LABEL = 200


@dataclasses.dataclass(frozen=True)
class Rules:
    """What the configuration allows a link."""

    max_upload_bytes: int
    default_seconds: int
    max_seconds: int


@dataclasses.dataclass(frozen=True)
class Checks:
    """What checking a create body needs beyond the body (the validation's context): the
    configured bounds, and the database and upload settings its target is checked with."""

    db: Database[Any]
    rules: Rules
    settings: targets.Settings


def _checks(info: ValidationInfo) -> Checks:
    if not isinstance(info.context, Checks):
        raise TypeError("LinkBody is parsed with Checks as its context")
    return info.context


def _whole(name: str, why: str, low: int, high: Callable[[Rules], int]) -> BeforeValidator:
    """A whole number from ``low`` to ``high`` (the configuration's, as the context has it)."""
    def check(value: Any, info: ValidationInfo) -> Any:
        top = high(_checks(info).rules)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
            raise refused(BadRequest(f"{name} is a whole number from {low:,} to {top:,} ({why}).",
                                     code=f"invalid_{name}", minimum=low, maximum=top))
        return value
    return BeforeValidator(check)


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


def _target(raw: Any, info: ValidationInfo) -> targets.Target:
    """The target checked as its upload route checks it: 400, or 404 / 422 for a product that
    does not exist or is full."""
    checks = _checks(info)
    try:
        return targets.parse(checks.db, _target_fields(raw), checks.settings)
    except AvenueError as error:
        raise refused(error) from None


def _label(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_LABEL):
        raise refused(BadRequest(f"label is text of at most {MAX_LABEL} characters.", code="invalid_label"))
    return " ".join(value.split()) or None if isinstance(value, str) else None


class LinkBody(Shape):
    """A new upload link: its target, a label, and its limits (left out: the configured ones)."""

    # Parsed with Checks as its context (@takes(LinkBody, context=...)): the bounds of max_bytes
    # and expires_in are the configuration's, and the target is checked as its upload route
    # checks it. Each refusal is the domain's own, in this order: unknown fields, the target,
    # the label, the numbers.

    target: Annotated[targets.Target, PlainValidator(_target), described_by("LinkTarget")]
    label: Annotated[Annotated[str, Field(max_length=MAX_LABEL)] | None, BeforeValidator(_label)] = None
    # Left out: the configured default (null is refused as the number it is not).
    max_bytes: Annotated[Annotated[int, Field(ge=1)] | SkipJsonSchema[None], Field(
        description="Per file; at most (and by default) AVENUE_MAX_UPLOAD_BYTES."),
        _whole("max_bytes", "bytes per file, at most the upload limit", 1,
               lambda rules: rules.max_upload_bytes)] = None
    max_uses: Annotated[Annotated[int, Field(ge=1, le=MAX_USES)] | SkipJsonSchema[None], Field(
        description="Files it takes (1)."),
        _whole("max_uses", "files the link takes", 1, lambda rules: MAX_USES)] = None
    expires_in: Annotated[Annotated[int, Field(ge=60)] | SkipJsonSchema[None], Field(
        description="Seconds (AVENUE_UPLOAD_LINK_DEFAULT_SECONDS; at most AVENUE_UPLOAD_LINK_MAX_SECONDS)."),
        _whole("expires_in", "seconds the link lives", 60, lambda rules: rules.max_seconds)] = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, body: Any) -> Any:
        """Unknown fields first, then a missing target, as the domain words them."""
        unknown = sorted(set(body) - set(cls.model_fields)) if isinstance(body, dict) else []
        try:
            if unknown:
                raise BadRequest(f"Unknown field(s): {', '.join(unknown)}.", code="unknown_field")
            if isinstance(body, dict) and "target" not in body:
                _target_fields(None)  # refused as a target that is not an object is
        except AvenueError as error:
            raise refused(error) from None
        return body


@dataclasses.dataclass(frozen=True)
class Request:
    """A checked create body, the configured defaults filled in."""

    target: targets.Target
    label: str | None
    max_bytes: int
    max_uses: int
    lifetime_seconds: int


def check_request(body: LinkBody, rules: Rules) -> Request:
    """A parsed create body (:class:`LinkBody`) with the configured defaults of what it left out."""
    return Request(target=body.target, label=body.label,
                   max_bytes=rules.max_upload_bytes if body.max_bytes is None else body.max_bytes,
                   max_uses=1 if body.max_uses is None else body.max_uses,
                   lifetime_seconds=rules.default_seconds if body.expires_in is None else body.expires_in)


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


def store_file(media: AppMedia, link: store.Link, filename: str | None, data: bytes,
               settings: targets.Settings) -> targets.Completed:
    """A holder's file stored into the link's target by that target's own service call: it
    only adds (an image already there keeps its folder, tags and alt text, an image in the
    trash stays there)."""
    return targets.store(media, target_of(link), filename, data, owner=owner_of(link),
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


class HolderTusUpload(TusProgress):
    """A link's tus upload as its holder's GET shows it: what its owner's GET shows
    (:class:`avenue.tus.service.TusUpload`), but the target as its kind alone and the image as
    :class:`HolderImage`: the link's folder, tags, alt text and sku are its creator's words, as
    the image's labels are."""

    image: Annotated[HolderImage | None, Field(
        description="Once done: the image as a holder's multipart upload answers it.")]


def holder_upload(upload: Resumables.Resumable, image: HolderImage | None) -> HolderTusUpload:
    """``upload`` as its holder sees it, with ``image``, what it became (None: not done, or
    gone since)."""
    kind = TusTarget(kind=targets.Target.from_dict(upload.target).kind)
    return HolderTusUpload(**{**progress_of(upload), "target": kind}, image=image)
