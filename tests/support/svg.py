"""What the SVG tests in tests/api and tests/media share: an SVG around a vector, its upload
by form, and what its URLs serve."""

from __future__ import annotations

import io

SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
OPEN = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="64" height="64">')
SHAPE = '<rect width="64" height="40" fill="#0a7"/>'


def doc(inner: str, head: str = "") -> bytes:
    """An SVG that draws a shape beside ``inner`` (the vector)."""
    return f"{head}{OPEN}{SHAPE}{inner}</svg>".encode()


def post(client, headers, to: str, data: bytes, filename: str, content_type: str, field: str = "file"):
    form = {field: (io.BytesIO(data), filename, content_type)}
    return client.post(to, data=form, headers=headers, content_type="multipart/form-data")


def served(client, url: str) -> tuple[int, dict, bytes]:
    response = client.get(url, headers={"Accept": "image/avif,image/webp,*/*"})
    return response.status_code, dict(response.headers), response.get_data()
