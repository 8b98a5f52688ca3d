"""What the tests of refused media URLs share (tests/api/test_refused_urls.py,
tests/media/serve/test_route.py): an image's wrong URLs."""

from __future__ import annotations


def wrong_urls(url: str, thumb: str) -> list[str]:
    """Wrong URLs of the image whose original is at ``url`` (``.jpg``) and whose thumb at
    ``thumb``: four that no write can make a file (another format's extension, an extension
    of no format, for the original and the thumb), three of versions it never had and one of
    a variant format it lacks (a repair can add one: ``store/regenerate.py``)."""
    base = url[url.index("/media/"):].rsplit(".", 1)[0]
    thumb = thumb[thumb.index("/media/"):].rsplit(".", 1)[0]
    return [f"{base}.gif", f"{base}~0123abcd.xyz", f"{thumb}.gif", f"{thumb}.xyz",
            f"{base}~00000000.jpg", f"{base}~0123abcd.jpg", f"{base}~0123abcd/thumb", f"{thumb}.png"]
