"""Images the tests make rather than read: distinct photos for the process tests."""

from __future__ import annotations

import io
import os
import uuid

from PIL import Image


def photo(index: int, side: int = 1100) -> bytes:
    """A distinct ~1-3 MB JPEG (noise compresses like a detailed photo)."""
    image = Image.effect_noise((side, side), 40 + index % 20).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, comment=f"fault test {index} {uuid.uuid4().hex}".encode())
    return buffer.getvalue()


def noise_jpeg(width: int = 3000, height: int = 2250) -> bytes:
    """A JPEG of random pixels: about 6 MB, more than a socket's largest send buffer (4 MB)
    holds, so its answer cannot be handed to the kernel in one go."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "JPEG", quality=90)
    return out.getvalue()

