"""Readable names in public media URLs (avenue/media/names.py): what a typed name becomes,
what is refused, and what a URL's name segment must be."""

from __future__ import annotations

import pytest

from avenue.errors import BadRequest
from avenue.media.names import MAX_NAME_LENGTH as MAX_IMAGE_NAME
from avenue.media.names import InvalidName, NameBody, is_slug, slug_name


@pytest.mark.parametrize(("typed", "slug"), [
    ("Red Leather Boot", "red-leather-boot"),
    ("  red   leather -- boot!  ", "red-leather-boot"),
    ("Café au lait", "cafe-au-lait"),
    ("ｂｏｏｔ ２", "boot-2"),  # fullwidth letters and digits fold to ASCII
    ("Ångström", "angstrom"),
    ("thumb", "thumb"),  # a name, not the variant: it lives under /name/
    ("w_320", "w-320"),  # options hold an underscore, names never do
    ("IMG_2043.JPG", "img-2043-jpg"),
])
def test_a_typed_name_becomes_an_ascii_slug(typed, slug):
    assert slug_name(typed) == slug
    assert is_slug(slug)


def test_a_long_name_is_cut_at_a_word_within_the_limit():
    slug = slug_name("word " * 30)
    assert len(slug) <= MAX_IMAGE_NAME and slug.endswith("word") and is_slug(slug)
    assert len(slug_name("a" * 150)) == MAX_IMAGE_NAME


@pytest.mark.parametrize("typed", [
    "a" * 10_000, "../etc/passwd", "a/b", "a\\b", "a%2Fb", "%2e%2e", "", "   ", "---", "!!!",
    "p\u0430ge",  # Cyrillic а
    "\u0440\u0430\u0443",  # all Cyrillic
    "Øre",  # a letter without an ASCII decomposition
    "bell\x07", "nul\x00", "new\nline", "zero\u200bwidth", "\u202egnp.exe", None, 12, ["a"],
])
def test_what_cannot_be_a_name_is_refused_with_a_reason(typed):
    with pytest.raises(InvalidName) as refused:
        slug_name(typed)
    assert refused.value.code == "invalid_name" and refused.value.status == 400
    assert refused.value.message


@pytest.mark.parametrize("segment", ["", "Red", "red_boot", "red--boot", "-red", "red-", "a" * 81, "röd",
                                     "a.b"])
def test_only_a_stored_slug_is_a_url_name(segment):
    assert not is_slug(segment)


def test_a_rename_body_is_one_name_or_null():
    assert NameBody.parse({"name": "Red boot"}).name == "red-boot"
    assert NameBody.parse({"name": None}).name is None
    for body in ({}, {"name": "a", "alt": "b"}, [], "red", {"Name": "a"}, {"name": 5}, {"name": "a" * 201},
                 {"name": "a/b"}):
        with pytest.raises(BadRequest) as refused:
            NameBody.parse(body)
        assert refused.value.code == "invalid_name", body
