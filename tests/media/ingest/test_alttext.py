"""Alt text suggested without a model (avenue/media/ingest/alttext.py): colour names, file names,
ranking, limits, and the bulk body's checks."""

from __future__ import annotations

import time

import pytest

from avenue.errors import BadRequest
from avenue.media import Alt
from avenue.media.ingest.alttext import (
    COLOUR_NAMES,
    MAX_ALT_BATCH,
    MAX_ALT_SUGGESTION,
    MAX_SUGGESTIONS,
    colour_name,
    filename_words,
)


@pytest.mark.parametrize(("colour", "name"), [
    ("#ff0000", "red"), ("#0000ff", "blue"), ("#FFFFFF", "white"), ("000000", "black"),
    ("#7f7f7f", "grey"), ("#ffa500", "orange"), ("#ffff00", "yellow"), ("#006400", "green"),
    ("#ffc0cb", "pink"), ("#8b4513", "brown"), ("#000080", "navy"), ("#f5f5dc", "beige"),
])
def test_a_colour_is_named_by_the_nearest_plain_name(colour, name):
    assert colour_name(colour) == name


def test_every_name_of_the_table_names_its_own_colour():
    assert [colour_name(hex_colour) for _, hex_colour in COLOUR_NAMES] == [name for name, _ in COLOUR_NAMES]


@pytest.mark.parametrize("colour", [None, "", "red", "#ff00", "#gg0000", "#ff0000ff", 12])
def test_anything_but_a_hex_colour_has_no_name(colour):
    assert colour_name(colour) is None


@pytest.mark.parametrize(("filename", "words"), [
    ("red-leather-boot_side.jpg", "red leather boot side"),
    ("IMG_2043.jpg", ""),
    ("DSC00012.JPG", ""),
    ("PXL_20240101_123456789.jpg", ""),
    ("3f9a2b7c1d5e.webp", ""),
    ("Screenshot 2024-05-01 at 10.22.13.png", ""),
    ("summerSale2024_hero.png", "summer sale hero"),
    ("800x600-banner.webp", "banner"),
    ("../../etc/passwd", "passwd"),
    ("", ""),
])
def test_a_file_name_gives_the_words_a_person_chose(filename, words):
    assert filename_words(filename) == words


def test_a_product_photo_is_described_by_its_product_place_file_name_and_colour():
    context = Alt.Context(filename="red-leather-boot_side.jpg", colour="#1e5bd6", title="Chelsea boot",
                          sku="AV-1", position=1)
    assert Alt.suggest(context) == [
        "Chelsea boot: red leather boot side in blue",
        "Chelsea boot in blue",
        "Chelsea boot, main photo",
        "Chelsea boot (AV-1)",
        "Red leather boot side in blue",
    ]


def test_a_gallery_photo_with_a_camera_name_is_described_by_its_product():
    context = Alt.Context(filename="IMG_2043.jpg", colour="#d32f2f", title="Wool scarf", sku="S-9",
                          position=3)
    assert Alt.suggest(context) == ["Wool scarf in red", "Wool scarf, gallery photo 3", "Wool scarf (S-9)"]


def test_a_colour_the_text_already_names_is_not_added_again():
    context = Alt.Context(filename="IMG_1.jpg", colour="#800000", title="Red dress", position=1)
    assert Alt.suggest(context)[0] == "Red dress"


def test_a_library_image_is_described_by_its_tags_folder_and_the_pages_using_it():
    context = Alt.Context(filename="IMG_2043.jpg", colour="#ffd700", pages=[("Summer sale", "hero")],
                          folder="/campaigns/summer", tags=("beach", "sun hat"))
    assert Alt.suggest(context) == [
        "Beach, sun hat in yellow", "Beach, sun hat on Summer sale", "Campaigns summer in yellow"]


def test_a_library_image_known_only_by_its_page_is_named_by_the_page_and_block_type():
    context = Alt.Context(filename="IMG_2043.jpg", pages=[("Summer sale", "hero"), ("Home", "gallery_item")])
    assert Alt.suggest(context) == ["Summer sale: hero image", "Home: gallery item image"]


def test_an_image_nothing_is_known_about_gets_no_suggestion_rather_than_a_bad_one():
    assert Alt.suggest(Alt.Context(filename="IMG_2043.jpg", colour="#ff0000")) == []


def test_suggestions_are_distinct_ignoring_case_limited_in_number_and_length():
    title = "Boot " * 60
    context = Alt.Context(filename="boot.jpg", title=title, sku="x" * 200, position=2,
                          pages=[("Boot", "image")] * 10, tags=("boot",), folder="/BOOT")
    found = Alt.suggest(context)
    assert 0 < len(found) <= MAX_SUGGESTIONS
    assert all(0 < len(text) <= MAX_ALT_SUGGESTION for text in found)
    assert len({text.casefold() for text in found}) == len(found)
    assert all(not text.endswith((" ", ",", ":")) for text in found)


def test_suggestions_are_deterministic_and_cheap():
    context = Alt.Context(filename="red-leather-boot_side.jpg", colour="#a02020", title="Chelsea boot",
                          sku="AV-1", position=2, pages=[("Boots", "gallery")], tags=("leather",))
    first = Alt.suggest(context)
    started = time.perf_counter()
    for _ in range(200):
        assert Alt.suggest(context) == first
    # Generous: about 30 µs each on the development machine; a model would take milliseconds.
    assert (time.perf_counter() - started) / 200 < 0.005


def test_a_bulk_body_gives_each_image_its_text_or_its_suggestion():
    changes = Alt.Changes.parse({"images": [{"id": "a", "alt": "  A  red boot "},
                                            {"id": "b", "suggestion": 1}, {"id": "c", "alt": None}]}).images
    assert [(change.id, change.alt, change.suggestion) for change in changes] == [
        ("a", "A red boot", None), ("b", None, 1), ("c", "", None)]
    assert all(isinstance(change, Alt.Change) for change in changes)
    assert Alt.chosen(changes[1], ["first", "second"]) == "second"
    assert Alt.chosen(changes[1], ["only one"]) is None
    assert Alt.chosen(changes[0], []) == "A red boot"


@pytest.mark.parametrize(("body", "code"), [
    ([], "invalid_alt_changes"),
    ({}, "invalid_alt_changes"),
    ({"images": []}, "invalid_alt_changes"),
    ({"images": "x"}, "invalid_alt_changes"),
    ({"images": [{"id": str(n), "alt": "x"} for n in range(MAX_ALT_BATCH + 1)]}, "invalid_alt_changes"),
    ({"images": ["a"]}, "invalid_alt_changes"),
    ({"images": [{"id": "a"}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "alt": "x", "suggestion": 0}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "alt": "x", "owner": "me"}]}, "invalid_alt_changes"),
    ({"images": [{"id": 5, "alt": "x"}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a" * 10_000, "alt": "x"}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "alt": "x"}, {"id": "a", "alt": "y"}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "suggestion": True}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "suggestion": -1}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "suggestion": MAX_SUGGESTIONS}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "suggestion": "0"}]}, "invalid_alt_changes"),
    ({"images": [{"id": "a", "alt": 7}]}, "invalid_alt"),
    ({"images": [{"id": "a", "alt": "x" * 10_000}]}, "invalid_alt"),
    ({"images": [{"id": "a", "alt": "bell\x07"}]}, "invalid_alt"),
    ({"images": [{"id": "a", "alt": "nul\x00"}]}, "invalid_alt"),
    ({"images": [{"id": "a", "alt": "reversed \u202egpj.exe"}]}, "invalid_alt"),
    ({"images": [{"id": "a", "suggestion": None}]}, "invalid_alt_changes"),
    ({"images": None}, "invalid_alt_changes"),
])
def test_a_bad_bulk_body_is_refused_whole(body, code):
    with pytest.raises(BadRequest) as refused:
        Alt.Changes.parse(body)
    assert refused.value.code == code


def test_a_bad_entry_is_named_by_its_index():
    with pytest.raises(BadRequest) as refused:
        Alt.Changes.parse({"images": [{"id": "a", "alt": "x"}, {"id": "b", "alt": 7}]})
    assert (refused.value.code, refused.value.details["index"]) == ("invalid_alt", 1)
    with pytest.raises(BadRequest) as twice:
        Alt.Changes.parse({"images": [{"id": "a", "alt": "x"}, {"id": "a", "suggestion": 0}]})
    assert (twice.value.code, twice.value.details["index"]) == ("invalid_alt_changes", 1)
