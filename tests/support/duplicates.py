"""Exact twins as the duplicate tests upload them to the builder's library: PNGs of the same
pixels in other bytes, a picture and one a dot apart, a group linked on the thumb alone."""

from __future__ import annotations

import functools
import io

from bson import ObjectId
from PIL import PngImagePlugin

from avenue.media import Buckets
from tests.support.client import MEDIA, uploaded
from tests.support.fixtures import scene
from tests.support.records import images

DUPLICATES = f"{MEDIA}/duplicates"
OWED = {"metadata.exact_pending": True}


@functools.cache  # the same bytes every call: the PNG encode was a tenth of this module's CPU
def png(seed: int, note: str = "") -> bytes:
    """A PNG of ``scene(seed)``; ``note``: a text chunk, so the bytes differ and the pixels do not."""
    info = PngImagePlugin.PngInfo()
    if note:
        info.add_text("Comment", note)
    out = io.BytesIO()
    scene((600, 400), seed).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def media(client, headers, data: bytes, name: str) -> dict:
    return uploaded(client, headers, data=data, filename=name, to=MEDIA)


def groups(client, headers, url: str = DUPLICATES) -> list[dict]:
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["items"]


def twins(client, editor) -> tuple[dict, dict]:
    first = media(client, editor, png(1), "first.png")
    second = media(client, editor, png(1, "saved again"), "second.png")
    assert first["id"] != second["id"]  # other bytes: two images
    return first, second


def encoded(picture, note: str = "") -> bytes:
    info = PngImagePlugin.PngInfo()
    if note:
        info.add_text("Comment", note)
    out = io.BytesIO()
    picture.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def dotted_pair():
    """A 600 px picture and the same with one pixel one level lighter: one thumb pixel averages
    9 of the picture's, so their 200 px thumbs are the same; their full-size pixels are not."""
    base = scene((600, 400), 7)
    dotted = base.copy()
    dotted.putpixel((300, 200), tuple(min(255, v + 1) for v in base.getpixel((300, 200))))
    return base, dotted


def linked_on_the_thumb(client, editor, db) -> tuple[dict, dict, dict]:
    """A picture, one differing from it in a dot, and a re-save of the first: one group as
    linked before the full-resolution key (the thumb's alone)."""
    base, dotted = dotted_pair()
    first = media(client, editor, encoded(base), "label.png")
    other = media(client, editor, encoded(dotted), "label-dotted.png")
    again = media(client, editor, encoded(base, "saved again"), "label-again.png")
    ids = [ObjectId(i["id"]) for i in (first, other, again)]
    images(db, Buckets.BUILDER).update_many({"_id": {"$in": ids}}, {
        "$set": {"metadata.exact_group": ids[0]}, "$unset": {"metadata.pixels_full_sha256": ""}})
    return first, other, again
