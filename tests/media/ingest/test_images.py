"""Uploads validated, stripped and named (avenue/media/ingest/images.py): what is accepted and
refused, the limits, the metadata strippers, and the served original's bytes walked by
checks of their own; pure functions, no database, no HTTP."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import pytest
from PIL import Image, ImageCms

from avenue.errors import CorruptImage, EmptyFile, ImageTooLarge, UnsupportedImage
from avenue.media.ingest.images import (
    Limits,
    prepare,
    read_limited,
    sanitize_filename,
    strip_gif,
    strip_jpeg,
    strip_png,
    strip_webp,
)
from tests.helpers import GOOD_NAMES, IMAGES, REFUSED, image_bytes

GOOD = sorted(p.name for p in (IMAGES / "good").iterdir())
UNSUPPORTED = sorted(p.name for p in (IMAGES / "unsupported").iterdir())
# file -> statuses the fixtures README allows
BAD = {path.split("/", 1)[1]: statuses for path, statuses in REFUSED.items() if path.startswith("bad/")}
GPS_IFD = 0x8825
EXPECTED_DISPLAY = {
    "photo_exif_rotated.jpg": (800, 1200),
    "photo_12mp.jpg": (4000, 3000),
    "panorama.jpg": (8000, 500),
    "tiny_1x1.png": (1, 1),
}


def open_served(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_every_bad_file_is_named_in_the_table():
    assert set(BAD) == {p.name for p in (IMAGES / "bad").iterdir()}


@pytest.mark.parametrize("name", GOOD)
def test_it_accepts_every_good_image_and_serves_bytes_without_location_data(name):
    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    served = open_served(prepared.data)
    exif = served.getexif()
    assert GPS_IFD not in exif
    assert not {0x010F, 0x0110, 0xA431, 0x9003} & set(exif)  # make, model, serial, date
    assert b"GPS" not in prepared.data[:65536]
    assert prepared.content_type.startswith("image/")
    displayed = (served.height, served.width) if exif.get(0x0112, 1) >= 5 else served.size
    assert displayed == (prepared.width, prepared.height)
    if name in EXPECTED_DISPLAY:
        assert (prepared.width, prepared.height) == EXPECTED_DISPLAY[name]


def test_a_rotated_photo_keeps_only_its_orientation_so_browsers_show_it_upright():
    original = image_bytes("good/photo_exif_rotated.jpg")
    prepared = prepare(original, Limits())
    exif = open_served(prepared.data).getexif()
    assert dict(exif) == {0x0112: 6}
    assert prepared.first_frame.size == (800, 1200)
    # The compressed pixels are untouched: only metadata segments changed.
    assert original.count(b"\xff\xda") == prepared.data.count(b"\xff\xda")


def test_heic_becomes_a_jpeg_every_browser_can_show():
    prepared = prepare(image_bytes("good/phone.heic"), Limits())
    assert prepared.content_type == "image/jpeg"
    assert open_served(prepared.data).format == "JPEG"


@pytest.mark.parametrize("name", ["animated.gif", "animated.webp"])
def test_an_animation_keeps_its_frames(name):
    prepared = prepare(image_bytes(f"good/{name}"), Limits())
    assert prepared.frames == 4
    assert getattr(open_served(prepared.data), "n_frames", 1) == 4


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_valid_images_of_other_formats_are_refused_with_the_accepted_list(name):
    with pytest.raises(UnsupportedImage) as refused:
        prepare(image_bytes(f"unsupported/{name}"), Limits())
    assert refused.value.status == 415
    assert "JPEG, PNG, WebP, GIF, AVIF, HEIC" in refused.value.message


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_are_refused_with_the_right_status(name):
    with pytest.raises((EmptyFile, UnsupportedImage, CorruptImage, ImageTooLarge)) as refused:
        prepare(image_bytes(f"bad/{name}"), Limits())
    assert refused.value.status in BAD[name]


@pytest.mark.parametrize("name", ["bomb_50000x50000.png", "bomb_screen.gif"])
def test_a_decompression_bomb_is_refused_without_allocating_its_pixels(name):
    data = image_bytes(f"bad/{name}")
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLarge):
            prepare(data, Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # the pixels would be gigabytes


def _gif(frames: int, size=(20, 20)) -> bytes:
    images = [Image.new("RGB", size, color=(i * 7 % 256, i * 13 % 256, 90)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=10)
    return out.getvalue()


def test_too_many_frames_are_refused():
    with pytest.raises(ImageTooLarge) as refused:
        prepare(_gif(12), Limits(max_frames=10))
    assert refused.value.code == "too_many_frames"


def test_pixels_summed_over_frames_are_limited():
    with pytest.raises(ImageTooLarge) as refused:
        prepare(_gif(5, (100, 100)), Limits(max_total_pixels=40_000))
    assert refused.value.code == "too_many_pixels"


def test_the_pixel_limit_is_checked_from_the_header():
    with pytest.raises(ImageTooLarge) as refused:
        prepare(image_bytes("good/photo_12mp.jpg"), Limits(max_pixels=10_000_000))
    assert refused.value.status == 413


def test_reading_stops_one_byte_past_the_limit():
    class Stream(io.BytesIO):
        requested: list[int] = []

        def read(self, size=-1):
            self.requested.append(size)
            return super().read(size)

    stream = Stream(b"x" * 5000)
    with pytest.raises(ImageTooLarge):
        read_limited(stream, 1000)
    assert stream.requested == [1001]


def _jpeg_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 1
    exif.get_ifd(GPS_IFD)[2] = (52.0, 21.0, 0.0)
    out = io.BytesIO()
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (64, 48), "red").save(out, "JPEG", exif=exif.tobytes(), icc_profile=icc,
                                            comment=b"secret comment")
    return out.getvalue() + b"<html>trailing</html>"


def test_jpeg_stripping_drops_exif_comment_and_trailing_bytes_but_keeps_icc():
    stripped = strip_jpeg(_jpeg_with_metadata())
    im = open_served(stripped)
    assert not im.getexif()
    assert im.info.get("icc_profile")
    assert b"secret comment" not in stripped and b"<html>" not in stripped
    assert stripped.endswith(b"\xff\xd9")


def test_png_stripping_drops_text_chunks():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "someone@example.com")
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    stripped = strip_png(out.getvalue() + b"garbage")
    assert b"someone@example.com" not in stripped and not stripped.endswith(b"garbage")
    assert open_served(stripped).size == (8, 8)


def test_webp_stripping_drops_exif():
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD)[2] = (52.0, 21.0, 0.0)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "WEBP", exif=exif.tobytes())
    stripped = strip_webp(out.getvalue())
    assert b"EXIF" not in stripped
    assert not open_served(stripped).getexif().get_ifd(GPS_IFD)


def test_gif_stripping_drops_comments_and_data_after_the_trailer():
    data = _gif(3)
    im = Image.open(io.BytesIO(data))
    out = io.BytesIO()
    im.save(out, "GIF", save_all=True, comment=b"private note")
    stripped = strip_gif(out.getvalue() + b"<script>alert(1)</script>")
    assert b"private note" not in stripped and b"<script>" not in stripped
    assert Image.open(io.BytesIO(stripped)).n_frames == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("line\nbreak\x00.png", "linebreak.png"),
        ("", "image"),
        ("   ", "image"),
    ],
)
def test_filenames_are_sanitized(raw, expected):
    assert sanitize_filename(raw) == expected


def test_long_filenames_are_cut_keeping_the_extension():
    name = sanitize_filename("a" * 1000 + ".jpg")
    assert len(name) == 120 and name.endswith(".jpg")


def test_the_decode_reservation_is_kept_only_with_working_and_given_back_on_failure():
    from avenue.media.ingest.images import _reserved, decode_budget

    limits = Limits(decode_budget_bytes=10_000_019)  # a budget of its own
    budget = decode_budget(limits.decode_budget_bytes)
    with _reserved(limits, 1000, None, (10, 10), (10, 10)) as kept:
        assert budget.in_use == 1000
    assert kept is None and budget.in_use == 0

    with _reserved(limits, 1000, lambda decoded, shown: 400, (10, 10), (10, 10)) as kept:
        pass
    assert kept is not None and budget.in_use == 1400  # held for the caller's canvases
    kept.release()
    assert budget.in_use == 0

    with pytest.raises(CorruptImage), _reserved(limits, 1000, lambda d, s: 400, (10, 10), (10, 10)):
        raise CorruptImage("broken")
    assert budget.in_use == 0


# --- served originals carry only what displays the image ----------------------------------------
# Pixels, the ICC profile, the orientation fix and what animation needs. Nothing else: no
# EXIF/GPS, XMP, IPTC/Photoshop, comments, text, thumbnails, private or unknown chunks and boxes.
# The structure walkers below are written for these tests, independently of the strippers in
# avenue/media/ingest/images.py, so a stripper cannot vouch for itself. Every fixture and a
# crafted file per format (carrying every kind of metadata at once) go through ``prepare()``,
# which produces the bytes the media route serves.

SECRET = b"GPS-48.8584N-SERIAL-12345"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>' + SECRET + b"</rdf:RDF></x:xmpmeta>"
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

JPEG_KEEP_APP = {(0xE0, b"JFIF\x00"), (0xE2, b"ICC_PROFILE\x00"), (0xEE, b"Adobe")}
PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
            b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL", b"fdAT"}
WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


# --- independent walkers -----------------------------------------------------------------


def jpeg_problems(data: bytes) -> list[str]:
    problems = []
    pos = 2
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: entropy data follows; markers after it are coding
            tail = data[data.rfind(b"\xff\xd9"):]
            if tail != b"\xff\xd9":
                problems.append("bytes after the end of the image")
            break
        length = struct.unpack(">H", data[pos + 2: pos + 4])[0]
        body = data[pos + 4: pos + 2 + length]
        if 0xE0 <= marker <= 0xEF:
            if marker == 0xE1:
                exif = Image.Exif()
                exif.load(body[6:] if body.startswith(b"Exif\x00\x00") else body)
                if set(exif) - {0x0112} or exif.get_ifd(0x8825) or exif.get_ifd(0x8769):
                    problems.append(f"EXIF beyond orientation: {sorted(exif)}")
            elif not any(marker == m and body.startswith(p) for m, p in JPEG_KEEP_APP):
                problems.append(f"APP{marker - 0xE0} {body[:12]!r}")
        elif marker == 0xFE:
            problems.append("comment")
        pos += 2 + length
    return problems


def png_problems(data: bytes) -> list[str]:
    problems, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos: pos + 8])
        if kind not in PNG_KEEP:
            problems.append(kind.decode("latin-1"))
        pos += 12 + length
        if kind == b"IEND":
            break
    if pos != len(data):
        problems.append("bytes after IEND")
    return problems


def webp_problems(data: bytes) -> list[str]:
    problems, pos = [], 12
    while pos + 8 <= len(data):
        kind = data[pos: pos + 4]
        length = struct.unpack("<I", data[pos + 4: pos + 8])[0]
        if kind not in WEBP_KEEP:
            problems.append(kind.decode("latin-1"))
        if kind == b"VP8X" and data[pos + 8] & 0x0C:
            problems.append("VP8X announces EXIF or XMP")
        pos += 8 + length + (length & 1)
    return problems


def gif_problems(data: bytes) -> list[str]:
    problems = []
    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)

    def skip(at: int) -> int:
        while data[at]:
            at += data[at] + 1
        return at + 1

    while pos < len(data) and data[pos] != 0x3B:
        if data[pos] == 0x21:
            label = data[pos + 1]
            if label == 0xFF:
                app = data[pos + 3: pos + 14]
                if app not in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                    problems.append(f"application extension {app!r}")
            elif label != 0xF9:
                problems.append(f"extension 0x{label:02x}")
            pos = skip(pos + 2)
        else:  # image descriptor
            local = data[pos + 9]
            pos = skip(pos + 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1)
    return problems


def isobmff_problems(data: bytes) -> list[str]:
    problems = []

    def boxes(start: int, end: int):
        while start + 8 <= end:
            size, kind = struct.unpack(">I4s", data[start: start + 8])
            header = 8
            if size == 1:
                size, header = struct.unpack(">Q", data[start + 8: start + 16])[0], 16
            size = size or end - start
            yield kind, start + header, start + size
            start += size

    for kind, start, end in boxes(0, len(data)):
        if kind not in (b"ftyp", b"meta", b"mdat", b"moov"):
            problems.append(f"top-level box {kind!r}")
        if kind == b"meta":
            for child, c_start, c_end in boxes(start + 4, end):
                if child == b"iinf":
                    count_size = 2 if data[c_start] == 0 else 4
                    for _, e_start, _ in boxes(c_start + 4 + count_size, c_end):
                        id_size = 2 if data[e_start] == 2 else 4
                        item = data[e_start + 4 + id_size + 2: e_start + 4 + id_size + 6]
                        if item not in (b"av01", b"grid", b"iovl"):
                            problems.append(f"item {item!r}")
    return problems


def problems(data: bytes) -> list[str]:
    if SECRET in data:
        return ["the secret is still in the bytes"]
    if data.startswith(b"\xff\xd8"):
        return jpeg_problems(data)
    if data.startswith(b"\x89PNG"):
        return png_problems(data)
    if data[8:12] == b"WEBP":
        return webp_problems(data)
    if data.startswith(b"GIF"):
        return gif_problems(data)
    if data[4:8] == b"ftyp":
        return isobmff_problems(data)
    return ["unknown format"]


# --- files carrying every kind of metadata -------------------------------------------------


def picture(mode: str = "RGB", size=(64, 48)) -> Image.Image:
    im = Image.new(mode, size, (200, 80, 30) if mode == "RGB" else None)
    im.paste((20, 90, 200) if mode == "RGB" else 5, (10, 10, 40, 30))
    return im


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = SECRET.decode()  # Software
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)  # GPSLatitude
    return exif


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def crafted_jpeg() -> bytes:
    out = io.BytesIO()
    picture().save(out, "JPEG", exif=exif_with_gps(), icc_profile=ICC, comment=SECRET, xmp=XMP)
    data = out.getvalue()
    photoshop = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(SECRET)) + SECRET
    jfxx = b"JFXX\x00\x10" + SECRET
    extra = (b"\xff\xed" + struct.pack(">H", len(photoshop) + 2) + photoshop
             + b"\xff\xe0" + struct.pack(">H", len(jfxx) + 2) + jfxx
             + b"\xff\xeb" + struct.pack(">H", len(SECRET) + 2) + SECRET)  # a vendor's APP11
    return data[:2] + extra + data[2:] + SECRET  # and bytes after the end of the image


def crafted_png() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_text("Author", SECRET.decode(), zip=True)
    out = io.BytesIO()
    picture().save(out, "PNG", pnginfo=info, exif=exif_with_gps(), icc_profile=ICC, dpi=(300, 300))
    data = out.getvalue()
    iend = data.rfind(b"IEND") - 4
    private = png_chunk(b"prIv", SECRET) + png_chunk(b"tIME", b"\x07\xe9\x01\x01\x00\x00\x00") + \
        png_chunk(b"bKGD", b"\x00\x00\x00\x00\x00\x00")
    return data[:iend] + private + data[iend:] + SECRET


def crafted_webp() -> bytes:
    out = io.BytesIO()
    picture().save(out, "WEBP", exif=exif_with_gps(), xmp=XMP, icc_profile=ICC, quality=90)
    data = out.getvalue()
    unknown = b"XYZW" + struct.pack("<I", len(SECRET)) + SECRET + (b"\x00" if len(SECRET) & 1 else b"")
    body = data[8:] + unknown
    return b"RIFF" + struct.pack("<I", len(body)) + body


def crafted_gif() -> bytes:
    frames = [picture("P"), picture("P").transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=0, duration=80,
                   comment=SECRET)
    data = out.getvalue()
    xmp = b"\x21\xff\x0bXMP DataXMP" + bytes([len(SECRET)]) + SECRET + b"\x00"
    plain_text = b"\x21\x01\x0c" + b"\x00" * 12 + bytes([len(SECRET)]) + SECRET + b"\x00"
    at = data.index(b"\x21\xf9")  # before the first graphic control extension
    return data[:at] + xmp + plain_text + data[at:]


def crafted_avif() -> bytes:
    out = io.BytesIO()
    picture().save(out, "AVIF", exif=exif_with_gps(), xmp=XMP, icc_profile=ICC, quality=80)
    return out.getvalue()


def crafted_avif_with_a_private_box() -> bytes:
    out = io.BytesIO()
    picture().save(out, "AVIF", icc_profile=ICC, quality=80)
    return out.getvalue() + struct.pack(">I", 8 + 16 + len(SECRET)) + b"uuid" + b"\x11" * 16 + SECRET


CRAFTED = {"jpeg": crafted_jpeg, "png": crafted_png, "webp": crafted_webp, "gif": crafted_gif,
           "avif": crafted_avif, "avif-private-box": crafted_avif_with_a_private_box}


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_every_fixture_is_served_with_nothing_but_what_displays_it(name):
    served = prepare(image_bytes(f"good/{name}"), Limits()).data
    assert problems(served) == []
    Image.open(io.BytesIO(served)).load()


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_every_kind_of_metadata_is_stripped_and_the_image_still_displays_the_same(kind):
    original = CRAFTED[kind]()
    assert SECRET in original or b"SecretCam" in original  # the fixture really carries it
    prepared = prepare(original, Limits())
    served = prepared.data
    assert problems(served) == []
    assert b"SecretCam" not in served
    shown = Image.open(io.BytesIO(served))
    source = Image.open(io.BytesIO(original))
    assert shown.size == source.size
    assert getattr(shown, "n_frames", 1) == getattr(source, "n_frames", 1)
    if kind != "gif":  # GIF has no ICC profile
        assert shown.info.get("icc_profile") == ICC


def test_the_walkers_see_metadata_in_the_unstripped_files():
    """The checks above can fail: on the raw crafted files they find what was planted."""
    for kind, make in CRAFTED.items():
        assert problems(make()) != [], kind
