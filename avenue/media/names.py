"""Readable names in public media URLs: the rule a name follows, no Flask, no database.

An image may carry one readable name, an ASCII slug (lower-case letters and digits in words
joined by single hyphens, at most :data:`MAX_NAME_LENGTH` characters). Its public URLs then
include ``/media/<alias>/<id>[~<version>]/name/<name>.<ext>``: a fourth segment after the
literal ``name``, so a name can never be read as a variant (``thumb``) or a rendition
(``w_320``, a preset), whose URLs have three segments (avenue/media/serve/http.py
``resolve_named``).

:func:`slug_name` turns what a person typed into the name: Unicode folded to ASCII by NFKD
(``Café`` gives ``cafe``, fullwidth ``ｂｏｏｔ`` gives ``boot``), anything else that is not a
letter or digit a hyphen. It refuses (400 ``invalid_name``) rather than guesses: path
characters (``/``, ``\\``, ``%``), control characters, letters with no ASCII spelling
(a Cyrillic ``а`` that looks like a Latin ``a``), and a name that slugs to nothing.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import Field

from avenue.errors import BadRequest
from avenue.shapes import Refuse, Shape, cleaned

MAX_NAME_LENGTH = 80  # the slug's
MAX_NAME_INPUT = 200  # what a person may type (longer is refused, not cut)
NAME_SEGMENT = "name"  # the URL segment before a readable name
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_PATH = re.compile(r"[/\\%]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


class InvalidName(BadRequest):
    """A readable name that cannot be one."""

    code = "invalid_name"


def is_slug(name: str) -> bool:
    """Whether ``name`` is a readable name as stored (what a URL's name segment must be)."""
    return len(name) <= MAX_NAME_LENGTH and SLUG.fullmatch(name) is not None


def slug_name(raw: object) -> str:
    """The readable name for what a person typed, or ``InvalidName`` saying why not."""
    if not isinstance(raw, str):
        raise InvalidName("name is a string.")
    if len(raw) > MAX_NAME_INPUT:
        raise InvalidName(f"name is at most {MAX_NAME_INPUT} characters.")
    if _PATH.search(raw):
        raise InvalidName("name holds a path character ('/', '\\' or '%').")
    if _CONTROL.search(raw):
        raise InvalidName("name holds a control or invisible character.")
    folded = unicodedata.normalize("NFKD", raw)
    kept = []
    for ch in folded:
        if unicodedata.combining(ch):
            continue  # the accent of a decomposed letter
        if ch.isalnum() and not ch.isascii():
            raise InvalidName(f"name holds {ch!r} (U+{ord(ch):04X}), a character with no ASCII spelling; "
                              "write it in Latin letters.")
        kept.append(ch.lower() if ch.isascii() and ch.isalnum() else "-")
    slug = "-".join(part for part in "".join(kept).split("-") if part)
    if len(slug) > MAX_NAME_LENGTH:
        slug = slug[:MAX_NAME_LENGTH + 1].rsplit("-", 1)[0] if "-" in slug[:MAX_NAME_LENGTH] \
            else slug[:MAX_NAME_LENGTH]
    if not slug:
        raise InvalidName("name has no letter or digit.")
    return slug


class NameBody(Shape):
    """A rename's body, ``{"name": "..."}`` (``null``: no name): ``name`` holds the slug."""

    refusal = Refuse("invalid_name", 'Send {"name": "..."}; null removes the name.')

    name: Annotated[str | None, Field(max_length=MAX_NAME_INPUT, description=(
        f"Any text: folded to an ASCII slug (NFKD; lower-case letters, digits, single hyphens, at most "
        f"{MAX_NAME_LENGTH} characters). Refused: path characters (/ \\ %), control and invisible "
        "characters, letters with no ASCII spelling (Cyrillic look-alikes), nothing left. null removes "
        "the name.")),
        cleaned(lambda raw: None if raw is None else slug_name(raw)),
        Refuse("invalid_name", f"name is at most {MAX_NAME_INPUT} characters.", when=("string_too_long",)),
        Refuse("invalid_name", "name is a string.", when=("string_type",))]
