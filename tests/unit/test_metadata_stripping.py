"""Served originals carry only what displays the image: pixels, the ICC profile, the orientation
fix and what animation needs. Nothing else: no EXIF/GPS, XMP, IPTC/Photoshop, comments, text,
thumbnails, private or unknown chunks and boxes.

The structure walkers below are written for this test, independently of the strippers in
``avenue/media/ingest/images.py``, so a stripper cannot vouch for itself. Every fixture and a crafted
file per format (carrying every kind of metadata at once) go through ``prepare()``, which
produces the bytes the media route serves.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms

from avenue.media.ingest.images import Limits, prepare
from tests.helpers import GOOD_NAMES, image_bytes

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
