"""A picture whose corner shows what an edit did, uploaded to the library and read back: for
the tests of edits, crops and the renditions they make."""

from __future__ import annotations

import io

from PIL import Image as PILImage

from tests.support.client import uploaded

KEY = "test-secret-key-for-avenue"  # the key conftest's apps sign with
RED, GREY = (220, 20, 30), (128, 128, 128)
WIDTH, HEIGHT = 400, 200  # landscape: a 90 degree turn shows in the size


def cornered(width: int = WIDTH, height: int = HEIGHT, fmt: str = "PNG") -> bytes:
    """A grey picture whose top-left quarter (of each side) is red: where it ends up shows a
    rotate or a flip."""
    im = PILImage.new("RGB", (width, height), GREY)
    im.paste(RED, (0, 0, width // 4, height // 4))
    out = io.BytesIO()
    im.save(out, fmt)
    return out.getvalue()


def picture(client, url: str) -> PILImage.Image:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    return PILImage.open(io.BytesIO(answer.data)).convert("RGB")


def is_red(pixel) -> bool:
    return pixel[0] > 170 and pixel[1] < 80 and pixel[2] < 80


def red_corner(im: PILImage.Image) -> str:
    """Which corner of ``im`` is red: tl, tr, bl or br."""
    w, h = im.width - 1, im.height - 1
    corners = {"tl": (1, 1), "tr": (w - 1, 1), "bl": (1, h - 1), "br": (w - 1, h - 1)}
    red = [name for name, xy in corners.items() if is_red(im.getpixel(xy))]
    assert len(red) == 1, red
    return red[0]


def media(client, editor, data: bytes | None = None) -> dict:
    return uploaded(client, editor, to="/api/builder/media", data=data or cornered(), filename="corner.png")
