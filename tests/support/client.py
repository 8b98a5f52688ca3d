"""The one API client the tests share: ``upload()`` through the Flask test client, the same
through a real server's socket, and the one multipart encoder that body needs."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

UPLOADS = "/api/uploads"
MEDIA = "/api/builder/media"
DEFAULT = "good/progressive.jpg"


def multipart(fields: dict[str, str], name: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with ``fields`` and one file; returns (body, content type)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(client, headers, name: str = DEFAULT, *, to: str = UPLOADS, data: bytes | None = None,
           filename: str | None = None, **fields: Any):
    """POST the fixture image ``name`` (or ``data``, as ``filename``) to ``to`` with the form
    ``fields`` (those given as None are left out) through a Flask test client; the response."""
    from tests.helpers import image_bytes

    file = (io.BytesIO(image_bytes(name) if data is None else data), filename or name.split("/")[-1])
    form = {"file": file,
            **{key: value for key, value in fields.items() if value is not None}}
    return client.post(to, data=form, headers=headers, content_type="multipart/form-data")


def uploaded(client, headers, name: str = DEFAULT, *, expect: tuple[int, ...] = (200, 201),
             **kwargs: Any) -> dict:
    """:func:`upload`, which must be accepted (201, or 200 for bytes already there; ``expect``
    narrows that); its JSON."""
    answer = upload(client, headers, name, **kwargs)
    assert answer.status_code in expect, answer.get_json()
    return answer.get_json()


def media_upload(client, headers, name: str = DEFAULT, **kwargs: Any):
    """:func:`upload` to the builder's media library."""
    return upload(client, headers, name, to=MEDIA, **kwargs)


def upload_to(server, headers: dict[str, str], data: bytes, filename: str, *, timeout: float = 60,
              visibility: str = "public") -> tuple[int, dict]:
    """POST ``data`` to a real server's /api/uploads (``server.request``); (status, JSON body or {})."""
    body, content_type = multipart({"visibility": visibility}, "file", filename, data)
    status, raw = server.request("POST", UPLOADS, body=body, timeout=timeout,
                                 headers={**headers, "Content-Type": content_type})
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {}
