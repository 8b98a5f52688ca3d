"""What the tests of a format turned off (AVENUE_DISABLED_FORMATS) share: the setting, decoders
that raise if they read a file, a WebP and a PNG of the same pixels, the builder's library."""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

from tests.helpers import Auth
from tests.support.client import MEDIA, uploaded
from tests.support.records import IMAGE, images

SETTING = "AVENUE_DISABLED_FORMATS"


def forbid_decoders(monkeypatch) -> Callable[..., list[str]]:
    """``forbid("HEIF", ...)``: from then on, Pillow's opener of each named plugin (where its
    C library first reads the file: pillow-heif's libheif, Pillow's libavif) records the call
    and raises; the list of those calls is returned, so a test that finds it empty proves the
    decoder never ran."""
    calls: list[str] = []

    def install(*plugins: str) -> list[str]:
        for plugin in plugins:
            def opened(self, plugin=plugin):
                calls.append(plugin)
                raise AssertionError(f"the {plugin} decoder read the file")

            monkeypatch.setattr(Image.OPEN[plugin][0], "_open", opened)
        return calls

    return install


def webp_and_png_twin(seed: int) -> tuple[bytes, bytes]:
    """A lossy WebP and a PNG of the very pixels it decodes to (exact twins by pixels)."""
    from tests.support.fixtures import scene

    webp = io.BytesIO()
    scene((600, 400), seed).save(webp, "WEBP", quality=80)
    png = io.BytesIO()
    with Image.open(io.BytesIO(webp.getvalue())) as decoded:
        decoded.convert("RGB").save(png, "PNG")
    return webp.getvalue(), png.getvalue()


def to_library(app, data: bytes, filename: str, expect: tuple[int, ...] = (201,)) -> dict:
    """``data`` uploaded to the builder's library of ``app`` by an editor; the answer's JSON."""
    return uploaded(app.test_client(), Auth(app).token("editor"), data=data, filename=filename, to=MEDIA,
                    expect=expect)


def originals(db) -> dict[str, dict]:
    from avenue.media import Buckets

    originals = images(db, Buckets.BUILDER).find(IMAGE)
    return {str(d["_id"]): d["metadata"] for d in originals}
