"""A tus 1.0.0 client for the Flask test client: the requests tus-js-client or tuspy send."""

from __future__ import annotations

from base64 import b64encode
from typing import Any

from tests.support.client import UPLOADS, multipart

TUS = "/api/tus"
VERSION = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"
# The photo the tus tests send, and the fewest bytes a PATCH short of the end brings
# (AVENUE_TUS_MIN_CHUNK_BYTES's default).
PHOTO = "good/photo_12mp.jpg"
PIECE = 256 * 1024


def metadata(**fields: str) -> str:
    """An Upload-Metadata header: ``key base64(value)`` pairs."""
    return ",".join(f"{key} {b64encode(value.encode()).decode()}" for key, value in fields.items())


def create(client, headers: dict, length: int, **fields: str):
    """POST a new upload of ``length`` bytes with metadata ``fields``; the response."""
    sent = {**VERSION, **headers, "Upload-Length": str(length)}
    if fields:
        sent["Upload-Metadata"] = metadata(**fields)
    return client.post(TUS, headers=sent)


def created(client, headers: dict, length: int, **fields: str) -> str:
    """:func:`create`, which must succeed; the upload's path."""
    response = create(client, headers, length, **fields)
    assert response.status_code == 201, response.get_json()
    return path(response.headers["Location"])


def path(location: str) -> str:
    return "/api/tus/" + location.rsplit("/", 1)[-1]


def patch(client, headers: dict, url: str, offset: int, data: bytes, **extra: Any):
    """PATCH ``data`` at ``offset``; the response."""
    return client.patch(url, data=data, headers={**VERSION, **headers, "Upload-Offset": str(offset),
                                                 "Content-Type": OFFSET_TYPE, **extra})


def head(client, headers: dict, url: str):
    return client.head(url, headers={**VERSION, **headers})


def send(client, headers: dict, data: bytes, chunk: int = 4 * 1024 * 1024, **fields: str):
    """A whole upload in PATCHes of ``chunk`` bytes: (its path, the last PATCH's response)."""
    url = created(client, headers, len(data), **fields)
    response = None
    for start in range(0, len(data), chunk):
        response = patch(client, headers, url, start, data[start:start + chunk])
        if response.status_code != 204:
            break
    return url, response


def multipart_upload(client, headers: dict, data: bytes, filename: str, **fields: str):
    """The same bytes as one multipart upload to /api/uploads (the body built here as bytes:
    the test client spools a large multipart ``data`` dict to a temporary file it leaves open)."""
    body, content_type = multipart(fields, "file", filename, data)
    return client.post(UPLOADS, data=body, headers={**headers, "Content-Type": content_type})
