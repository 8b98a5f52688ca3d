"""The image formats' registry (avenue/media/formats.py): its facts agree with Pillow, and the
tables the rest of the code reads are derived from it.

JPEG XL's entry in the format registry (avenue/media/formats.py): its renditions, stored once."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from avenue.apidoc import document
from avenue.errors import BadRequest
from avenue.media import formats
from avenue.media.buckets import RENDITIONS
from avenue.media.formats import FORMATS, save_options
from avenue.media.transform import parse
from tests.helpers import image_bytes
from tests.support.renditions import jxl_pixels as pixels
from tests.support.renditions import put, url

ENCODED = [fmt for fmt in FORMATS if fmt.save is not None and fmt.engine == "pillow"]


@pytest.mark.parametrize("fmt", ENCODED, ids=lambda fmt: fmt.name)
def test_every_encoded_format_round_trips_through_pillow_as_declared(fmt):
    spec, options = save_options(fmt.name)
    out = io.BytesIO()
    Image.new("RGBA" if fmt.alpha else "RGB", (8, 8), (10, 20, 30, 128)).save(out, spec.pillow, **options)
    with Image.open(io.BytesIO(out.getvalue())) as back:
        assert back.format == fmt.pillow and Image.MIME[back.format] == fmt.mime
        # alpha: declared, and kept (a half-transparent pixel stays half-transparent)
        assert (back.convert("RGBA").getpixel((0, 0))[3] == 128) is fmt.alpha


def test_every_accepted_format_is_one_pillow_identifies_with_its_declared_type():
    Image.init()
    for fmt in FORMATS:
        # HEIC is never served (stored as JPEG): pillow-heif names it image/heif, messages HEIC.
        if fmt.original and fmt.stored and not fmt.vector:
            assert Image.MIME[fmt.pillow] == fmt.mime, fmt.name
    assert formats.ACCEPTED["MPO"] == "image/jpeg"  # an iPhone photo with a depth map is a JPEG


def test_a_format_the_house_does_not_encode_is_refused_by_name():
    with pytest.raises(ValueError, match="cannot encode 'gif': one of jpeg, png, webp, avif, jxl"):
        save_options("gif")


def test_the_tables_are_the_registrys():
    assert formats.EXTENSIONS == {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "avif": "avif",
                                  "svg": "svg"}
    assert formats.VARIANT_BY_EXTENSION == {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
    assert formats.RENDITION_BY_EXTENSION == {"jpg": "jpeg", "png": "png", "webp": "webp", "avif": "avif",
                                              "jxl": "jxl"}
    assert formats.opt_ins({}) == frozenset() and formats.opt_ins({"AVENUE_JPEG_XL": True}) == {"jxl"}
    assert formats.ACCEPTED_LABEL == "JPEG, PNG, WebP, GIF, AVIF, HEIC"
    assert formats.ACCEPTED_WITH_VECTOR_LABEL == "JPEG, PNG, WebP, GIF, AVIF, HEIC, SVG"
    assert formats.VECTOR.mime == "image/svg+xml" and "" not in formats.ACCEPTED  # Pillow never opens SVG
    assert set(formats.OFFERED) <= set(formats.RENDITION_TYPES)
    assert {formats.fallback(False), formats.fallback(True)} <= set(formats.VARIANT_TYPES)
    # The zip import's images are the registry's upload formats, by extension.
    from avenue.bulk import archive

    assert archive.IMAGE_EXTENSIONS is formats.UPLOAD_EXTENSIONS == {
        ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".heic", ".heif", ".svg"}


def test_a_rendition_url_takes_each_rendition_formats_extension_and_no_other():
    for ext, name in formats.RENDITION_BY_EXTENSION.items():
        assert parse(f"w_320.{ext}").format == name
    wanted = "unknown rendition format 'gif': use one of jpg, png, webp, avif, jxl"
    with pytest.raises(BadRequest, match=wanted):
        parse("w_320.gif")


def test_the_openapi_document_lists_the_registrys_rendition_formats():
    renditions = document()["components"]["schemas"]["Renditions"]["properties"]
    assert set(renditions["srcset"]["properties"]) == {"jpg", "png", "webp", "avif"}  # no jxl: opt-in
    assert renditions["srcset"]["required"] == ["avif", "webp"]
    assert renditions["fallback"]["enum"] == ["jpg", "png"]


def test_jpeg_xl_is_encoded_by_libjxl_with_its_alpha():
    import imagecodecs

    from avenue.media.ingest.variants import encode_image

    data = encode_image(Image.new("RGBA", (8, 8), (10, 20, 30, 128)), "jxl", None)
    decoded = imagecodecs.jpegxl_decode(data)
    assert decoded.shape == (8, 8, 4) and abs(int(decoded[0, 0, 3]) - 128) <= 2


def test_negotiation_follows_the_registrys_order_and_its_opt_ins():
    """A rendition without a format is answered in the first of ``NEGOTIATED`` the client
    takes, an opt-in one only when on: the order is the registry's, not the route's."""
    from types import SimpleNamespace

    from avenue.media.serve.http import negotiate

    assert all(formats.BY_NAME[name].rendition for name in formats.NEGOTIATED)
    every = ", ".join(formats.BY_NAME[name].mime for name in reversed(formats.NEGOTIATED))
    opaque, clear = SimpleNamespace(transparent=False), SimpleNamespace(transparent=True)
    on = frozenset(fmt.name for fmt in FORMATS if fmt.opt_in)
    assert negotiate(every, opaque, on) == formats.NEGOTIATED[0]
    for index, name in enumerate(formats.NEGOTIATED):
        later = ", ".join(formats.BY_NAME[other].mime for other in formats.NEGOTIATED[index:])
        expected = name if not formats.BY_NAME[name].opt_in else (
            formats.NEGOTIATED[index + 1] if index + 1 < len(formats.NEGOTIATED) else "jpeg")
        assert negotiate(later, opaque, on) == name
        assert negotiate(later, opaque, frozenset()) == expected
    assert negotiate("*/*", opaque) == "jpeg" and negotiate("*/*", clear) == "png"


@pytest.fixture
def jxl_app(app_factory):
    return app_factory(AVENUE_JPEG_XL=True)


def test_on_a_jxl_url_is_a_jpeg_xl_of_the_asked_width_stored_once(jxl_app, db):
    client = jxl_app.test_client()
    doc = put(jxl_app, image_bytes("good/progressive.jpg"), "p.jpg")
    first = client.get(url(doc, "w_320.jxl"))
    assert first.status_code == 200, first.get_data()[:300]
    assert first.headers["Content-Type"] == "image/jxl"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Vary" not in first.headers
    height, width, channels = pixels(first.get_data()).shape
    meta = doc["metadata"]
    assert (width, channels) == (320, 3) and height == round(320 * meta["height"] / meta["width"])
    again = client.get(url(doc, "w_320.jxl"))
    assert again.get_data() == first.get_data()
    kept = db[f"{RENDITIONS}.files"].find_one({"metadata.format": "jxl"})
    assert kept is not None and kept["metadata"]["spec"] == "w_320"
