"""A product shot in several colours and its re-saves: what the near-duplicate tests and
bench/near_colour.py compare (a look-alike must agree in colour, avenue/media/ingest/near_hash.py)."""

from __future__ import annotations

import colorsys
import io

from PIL import Image, ImageDraw

RED = (200, 32, 40)
BACKDROP = (236, 234, 228)


def hue_rotated(colour: tuple[int, int, int], degrees: float) -> tuple[int, int, int]:
    """``colour`` turned ``degrees`` round the hue circle (lightness and saturation kept)."""
    hue, light, saturation = colorsys.rgb_to_hls(*(channel / 255 for channel in colour))
    red, green, blue = colorsys.hls_to_rgb((hue + degrees / 360) % 1, light, saturation)
    return round(red * 255), round(green * 255), round(blue * 255)


# The variants one shop photographs: the same mug in other hues, and in shades of its red.
VARIANTS = {"green": hue_rotated(RED, 120), "blue": hue_rotated(RED, 240)}
SHADES = {"dark red": (150, 24, 32), "crimson": (180, 20, 60)}


def product_shot(colour: tuple[int, int, int] = RED, size: tuple[int, int] = (1200, 900)) -> Image.Image:
    """A mug of ``colour`` on a table against a pale backdrop, with its shadow: the mug and its
    handle cover about 15 % of the picture."""
    width, height = size
    im = Image.new("RGB", size, BACKDROP)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, int(height * .72), width, height), fill=(196, 186, 170))
    draw.ellipse((int(width * .30), int(height * .66), int(width * .72), int(height * .78)),
                 fill=(150, 142, 130))  # its shadow
    draw.rounded_rectangle((int(width * .36), int(height * .22), int(width * .62), int(height * .72)), 40,
                           fill=colour)
    draw.ellipse((int(width * .58), int(height * .33), int(width * .72), int(height * .55)), outline=colour,
                 width=int(width * .03))
    return im


def encoded(im: Image.Image, format: str = "JPEG", **options: int) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, format, **options)
    return out.getvalue()


def resaves(im: Image.Image) -> dict[str, bytes]:
    """The copies the issue names: JPEG at quality 70, resized to half, cropped by 5 % (2.5 %
    off each side), and saved again as PNG."""
    width, height = im.size
    return {
        "JPEG q70": encoded(im, quality=70),
        "half size": encoded(im.resize((width // 2, height // 2), Image.Resampling.LANCZOS), quality=85),
        "cropped 5 %": encoded(im.crop((int(width * .025), int(height * .025), int(width * .975),
                                        int(height * .975))), quality=85),
        "PNG": encoded(im, "PNG"),
    }
