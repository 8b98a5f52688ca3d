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

from avenue.errors import BadRequest

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
