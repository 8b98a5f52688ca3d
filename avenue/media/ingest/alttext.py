"""Alt text suggested from what Avenue already knows about an image, without a model.

Pure and deterministic: :func:`suggest_alt` takes an :class:`AltContext` (what the owner of
the documents using the image knows: a product's name and SKU and the photo's position, or
the pages using a library image, their titles and block types; and what the image carries:
its file name, folder, tags and dominant colour) and answers up to :data:`MAX_SUGGESTIONS`
distinct texts, best first, each at most :data:`MAX_ALT_SUGGESTION` characters.

Colours are named by the nearest of the :data:`COLOUR_NAMES` in CIELAB (D65, CIE76 distance):
18 plain names a shopper would use, not a designer's palette.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeAlias

from pydantic import ConfigDict, Field, model_validator

from avenue.errors import BadRequest
from avenue.shapes import Absent, Answer, Omittable, OneOf, Refuse, Shape, cleaned, described_by, refused

MAX_ALT_LENGTH = 500  # what an image's alt text may hold (the library's and a product photo's)
MAX_ALT_SUGGESTION = 125  # what screen-reader guidance suggests an alt text stays under
MAX_SUGGESTIONS = 5

# The plain colour names and the sRGB colour each stands for (CSS's where it has one).
COLOUR_NAMES: tuple[tuple[str, str], ...] = (
    ("black", "#000000"), ("white", "#ffffff"), ("grey", "#808080"), ("light grey", "#c8c8c8"),
    ("red", "#d32f2f"), ("dark red", "#800000"), ("orange", "#ff8c00"), ("yellow", "#ffd700"),
    ("olive", "#808000"), ("green", "#2e8b57"), ("teal", "#008080"), ("blue", "#2050e0"),
    ("light blue", "#8ec5f0"), ("navy", "#000080"), ("purple", "#800080"), ("pink", "#ffb6c1"),
    ("brown", "#8b4513"), ("beige", "#e8d8b8"),
)
# C0 and C1 controls, and the bidirectional overrides and isolates (U+202A-202E, U+2066-2069).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HEX = re.compile(r"#?([0-9a-fA-F]{6})")
# Words a camera, phone or tool puts in a file name, which say nothing about the picture.
NOISE = frozenset({
    "img", "image", "images", "dsc", "dscn", "dscf", "dcim", "pxl", "photo", "pic", "picture", "screenshot",
    "screen", "shot", "copy", "final", "edit", "edited", "scan", "untitled", "file", "download", "upload",
    "whatsapp", "mvimg", "burst", "cover", "jpeg", "jpg", "png", "webp", "heic", "gif", "avif", "tiff",
    "raw", "min", "large", "small", "thumb", "thumbnail", "retina", "x", "px", "the", "and", "or", "of",
    "at", "on", "in", "with", "for", "to", "by", "from",
})
HASHLIKE = re.compile(r"[0-9a-fA-F]+")
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SPLIT = re.compile(r"[\s_\-.+,;()\[\]{}]+")
CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


@dataclass(frozen=True)
class AltContext:
    """What is known about one image where it is used (every field optional)."""

    filename: str = ""
    colour: str | None = None  # "#rrggbb": the dominant colour (placeholder colour or palette's first)
    title: str | None = None  # a product's name
    sku: str | None = None
    position: int | None = None  # a product photo's place, 1 = the main photo
    pages: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (page title, block type) per use
    folder: str | None = None  # a library folder, "/" when none
    tags: Sequence[str] = field(default_factory=tuple)


def clean_alt(alt: str | None) -> str | None:
    """Alt text as stored: whitespace collapsed, at most 500 characters, no control characters
    (a screen reader would read them out or reorder the text); None when not given."""
    if alt is None:
        return None
    alt = " ".join(alt.split())
    if len(alt) > MAX_ALT_LENGTH:
        raise BadRequest(f"alt is at most {MAX_ALT_LENGTH} characters.", code="invalid_alt")
    if CONTROL.search(alt):
        raise BadRequest("alt holds a control character.", code="invalid_alt")
    return alt


def _lab(hex_colour: str) -> tuple[float, float, float]:
    """An sRGB ``rrggbb`` colour in CIELAB (D65)."""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(hex_colour[i:i + 2], 16)) for i in (0, 2, 4))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


_TABLE = tuple((name, _lab(hex_colour[1:])) for name, hex_colour in COLOUR_NAMES)


def colour_name(colour: str | None) -> str | None:
    """The plain name nearest to a ``#rrggbb`` colour in CIELAB; None for anything else."""
    if not isinstance(colour, str):
        return None
    found = HEX.fullmatch(colour.strip())
    if found is None:
        return None
    lab = _lab(found.group(1))
    return min(_TABLE, key=lambda entry: math.dist(lab, entry[1]))[0]


def filename_words(filename: str | None) -> str:
    """The words of a file name a person chose (``red-leather-boot_side.jpg`` gives "red
    leather boot side"); "" when it has none (``IMG_2043.jpg``, a hash, a date)."""
    if not isinstance(filename, str):
        return ""
    stem = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    words = []
    for token in SPLIT.split(CAMEL.sub(" ", stem)):
        if len(token) >= 6 and HASHLIKE.fullmatch(token) and any(ch.isdigit() for ch in token):
            continue  # a hash or an id
        for word in WORD.findall(token):  # counters, dates and sizes (800x600) fall out here
            word = word.lower()
            if len(word) > 1 and word not in NOISE and len(word) <= 30:
                words.append(word)
    return " ".join(words)


def _phrase(text: str) -> str:
    """Whitespace collapsed, the first letter capital, cut at a word within the limit."""
    text = " ".join(text.split())
    if len(text) > MAX_ALT_SUGGESTION:
        cut = text[:MAX_ALT_SUGGESTION + 1].rsplit(" ", 1)[0]
        text = (cut if cut else text)[:MAX_ALT_SUGGESTION].rstrip(" ,:;-")
    return text[:1].upper() + text[1:]


def _with_colour(text: str, colour: str | None) -> str:
    if colour is None or colour.split()[-1] in text.lower().split():
        return text
    return f"{text} in {colour}"


def _folder_words(folder: str | None) -> str:
    if not folder:
        return ""
    return " ".join(filename_words(part) for part in folder.split("/") if part).strip()


def suggest_alt(context: AltContext) -> list[str]:
    """Alt texts for an image, best first: distinct (ignoring case), non-empty, each at most
    :data:`MAX_ALT_SUGGESTION` characters, at most :data:`MAX_SUGGESTIONS` of them."""
    words = filename_words(context.filename)
    colour = colour_name(context.colour)
    tags = ", ".join(" ".join(t.split()) for t in context.tags if isinstance(t, str) and t.strip())
    folder = _folder_words(context.folder)
    title = " ".join((context.title or "").split())
    candidates: list[str] = []
    if title:
        if words and words not in title.lower():
            candidates.append(_with_colour(f"{title}: {words}", colour))
        candidates.append(_with_colour(title, colour))
        if context.position == 1:
            candidates.append(f"{title}, main photo")
        elif context.position is not None:
            candidates.append(f"{title}, gallery photo {context.position}")
        if context.sku:
            candidates.append(f"{title} ({context.sku})")
    subject = words or tags or folder
    if subject:
        candidates.append(_with_colour(subject, colour))
    for page_title, kind in context.pages:
        page_title = " ".join(page_title.split())
        if page_title and subject:
            candidates.append(f"{subject} on {page_title}")
        elif page_title:
            kind_words = filename_words(kind)
            candidates.append(f"{page_title}: {kind_words} image" if kind_words else f"{page_title}: image")
    if tags and tags != subject:
        candidates.append(_with_colour(tags, colour))
    if folder and folder != subject:
        candidates.append(_with_colour(folder, colour))
    seen: set[str] = set()
    out: list[str] = []
    for candidate in candidates:
        text = _phrase(candidate)
        key = text.casefold()
        if text and key not in seen:
            seen.add(key)
            out.append(text)
        if len(out) == MAX_SUGGESTIONS:
            break
    return out


MAX_ALT_BATCH = 100  # images one bulk alt-text request may set


class AltChange(Shape):
    """One image of a bulk alt-text request: the text given (``alt``; ``""`` or null: none),
    or the index of the suggestion to accept (``suggestion``, when ``alt`` is None)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["alt"]},
                                                           {"required": ["suggestion"]}]})
    refusal = Refuse("invalid_alt_changes", "Each image is an object with id and alt or suggestion.")

    id: Annotated[str, Field(min_length=1, max_length=64),
                  Refuse("invalid_alt_changes", "id is an image id.")]
    alt: Annotated[str | None, Field(description="The text (trimmed); null or empty removes it."),
                   cleaned(lambda alt: clean_alt(alt) or ""),
                   Refuse("invalid_alt", "alt is a string.")] = None
    suggestion: Annotated[Omittable[Annotated[int, Field(ge=0, le=MAX_SUGGESTIONS - 1)]], Field(
        description="Accept this suggestion (its index in the list's suggestions, computed again)."),
        Refuse("invalid_alt_changes", f"suggestion is 0 to {MAX_SUGGESTIONS - 1}.")] = None

    @model_validator(mode="after")
    def _one_of_two(self) -> AltChange:
        if ("alt" in self.model_fields_set) == ("suggestion" in self.model_fields_set):
            raise refused(BadRequest("An image gives alt or suggestion, one of the two.",
                                     code="invalid_alt_changes"))
        return self


def _once(images: list[AltChange]) -> list[AltChange]:
    seen: set[str] = set()
    for index, change in enumerate(images):
        if change.id in seen:
            raise BadRequest(f"images[{index}] names an image twice.", code="invalid_alt_changes",
                             index=index)
        seen.add(change.id)
    return images


class AltChanges(Shape):
    """A bulk alt-text body, ``{"images": [{"id", "alt"} | {"id", "suggestion"}]}``, checked whole
    (400 ``invalid_alt_changes`` or ``invalid_alt`` naming the first bad entry; nothing is set).
    Fields it does not name are left aside."""

    model_config = ConfigDict(extra="ignore")
    refusal = Refuse("invalid_alt_changes", "Send images: a list of {id, alt} or {id, suggestion}.")

    images: Annotated[list[AltChange], Field(min_length=1, max_length=MAX_ALT_BATCH, description=(
        "Each image once; the whole body is checked before anything is set (a bad entry: 400 "
        "invalid_alt_changes or invalid_alt with its index, nothing set).")), cleaned(_once),
        Refuse("invalid_alt_changes", f"At most {MAX_ALT_BATCH} images per request.", when=("too_long",)),
        Refuse("invalid_alt_changes", "Send images: a list of {id, alt} or {id, suggestion}.")]


def chosen_alt(change: AltChange, suggestions: Sequence[str]) -> str | None:
    """The text a change sets (``""``: remove the alt text); None when it accepts a
    suggestion the image does not have."""
    if change.alt is not None:
        return change.alt
    assert change.suggestion is not None
    return suggestions[change.suggestion] if change.suggestion < len(suggestions) else None


#: What a bulk alt-text request did to one image.
ALT_STATUSES = ("set", "unchanged", "not_found", "no_suggestion")

#: Suggested alt texts, as a list of images missing theirs answers them.
Suggestions = Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_ALT_SUGGESTION)]], Field(
    max_length=MAX_SUGGESTIONS, description="Alt texts built without a model from what Avenue knows "
                                            "(docs/media.md, \"Alt text suggestions\"), best first.")]


class AltResult(Answer):
    """What happened to one image of a bulk alt-text request."""

    id: str
    status: Annotated[str, OneOf(ALT_STATUSES), Field(description=(
        "set; unchanged (it had this text); not_found (not this product's photo or this page's image: "
        "nothing changed); no_suggestion (the image has no suggestion at that index: nothing changed)."))]
    # One way, as in the image object: an alt text is there or left out, never null.
    alt: Absent[Annotated[str, Field(description=(
        "set / unchanged: its alt text now; left out when it has none (removed), and for not_found "
        "and no_suggestion."))]] = None


class MissingAlt(Answer):
    """An image shown without alt text, with alt texts suggested for it."""

    image: Annotated[dict[str, Any], described_by("Image")]
    suggestions: Suggestions


class Alt:
    """Alt text's rules as the shop and the builder use them, one name through the library door:
    the bound (``MAX_LENGTH``), the context of a suggestion, a bulk request's changes and
    results, a missing-alt list's item, and the three rules (clean, suggest, chosen)."""

    MAX_LENGTH = MAX_ALT_LENGTH
    Context: TypeAlias = AltContext
    Change: TypeAlias = AltChange
    Changes: TypeAlias = AltChanges
    Result: TypeAlias = AltResult
    Missing: TypeAlias = MissingAlt
    clean = staticmethod(clean_alt)
    suggest = staticmethod(suggest_alt)
    chosen = staticmethod(chosen_alt)
