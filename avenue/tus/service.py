"""What a resumable upload's Upload-Metadata says: its target (avenue/targets.py, the one
vocabulary of where an upload lands), and the client's file name and type.

A tus upload names its target in its metadata when it is created (``target``, and that
kind's fields: ``visibility``; ``alt``, ``folder``, ``tags``; ``sku``), checked then as the
multipart route of that target checks its form; once every byte arrived, the target's own
service call stores it (:func:`avenue.targets.store`, from avenue/tus/protocol.py). The
upload's bytes and state are the media package's (``avenue.media.resumable``).
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Annotated, Any, Literal, cast

from pydantic import ConfigDict, Field, WithJsonSchema

from avenue.errors import BadRequest
from avenue.media import Resumables
from avenue.shapes import Answer, described_by
from avenue.targets import KIND

MAX_METADATA_BYTES = 4096


def parse_metadata(header: str | None) -> dict[str, str]:
    """The Upload-Metadata header: comma-separated ``key base64value`` pairs (a key may come
    alone); 400 ``invalid_metadata`` when malformed."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise BadRequest(f"Upload-Metadata is at most {MAX_METADATA_BYTES} bytes.", code="invalid_metadata")
    found: dict[str, str] = {}
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2 or parts[0] in found:
            raise BadRequest("Upload-Metadata is 'key base64value' pairs separated by commas, each key "
                             "once.", code="invalid_metadata")
        try:
            found[parts[0]] = b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata {parts[0]!r} is not base64 of UTF-8 text.",
                             code="invalid_metadata") from None
    return found


def filename_of(metadata: dict[str, str]) -> str | None:
    """The client's file name (tus-js-client and tuspy send ``filename``, Uppy ``name``)."""
    return metadata.get("filename") or metadata.get("name") or None


def filetype_of(metadata: dict[str, str]) -> str | None:
    return metadata.get("filetype") or metadata.get("type") or None


State = Literal["open", "completing", "done"]


class TusTarget(Answer):
    """Where the upload lands: its kind and that kind's fields as the metadata named them."""

    model_config = ConfigDict(extra="allow")

    kind: Annotated[str, WithJsonSchema({"enum": list(KIND)})]


class TusProgress(Answer):
    """What a resumable upload's GET shows besides the image it became: its owner's
    (:class:`TusUpload`) and an upload link holder's (avenue/links/service.py)."""

    id: Annotated[str, Field(pattern="^[A-Za-z0-9_-]{24}$")]
    offset: Annotated[int, Field(ge=0)]
    length: Annotated[int, Field(ge=1)]
    state: State
    target: TusTarget
    filename: str | None
    expires_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    created: Annotated[bool | None, Field(
        description="Once done: false when the same image was already there (dedupe).")]


class TusUpload(TusProgress):
    """A resumable upload as GET /api/tus/{id} shows it."""

    image: Annotated[Annotated[dict[str, Any], described_by("Image")] | None, Field(
        description="Once done: the image object its target's multipart upload answers.")]


def progress_of(upload: Resumables.Resumable) -> dict[str, Any]:
    """``upload``'s fields of :class:`TusProgress`, as its owner sees them."""
    return {"id": upload.id, "offset": upload.offset, "length": upload.length,
            "state": cast(State, upload.state),  # checked by the model
            "target": TusTarget(**{key: value for key, value in upload.target.items() if value is not None}),
            "filename": upload.filename, "expires_at": upload.expires_at.isoformat(),
            "created": upload.result.get("created") if upload.result else None}


def upload_answer(upload: Resumables.Resumable, image: dict[str, Any] | None) -> TusUpload:
    """``upload`` as the API shows it, with ``image``, the image object it became (None: not
    done, or gone since)."""
    return TusUpload(**progress_of(upload), image=image)
