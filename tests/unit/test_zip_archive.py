"""A zip archive's checks (avenue/bulk/archive.py): refused from its table before anything is
inflated, entries read within a cap whatever their headers say, and the naming rule."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from avenue.bulk.archive import Archive, EntryTooLarge, EntryUnreadable, ZipLimits
from avenue.bulk.naming import ProductSlot, library_folder, product_slot
from avenue.errors import AvenueError
from tests.support.zips import flagged_encrypted, lying_sizes, make_zip, symlink_info, with_entry

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(2000)
LIMITS = ZipLimits(max_entries=10, max_total_bytes=5 * 1024 * 1024, max_ratio=100,
                   max_entry_bytes=2 * 1024 * 1024)


@pytest.fixture
def nothing_inflated(monkeypatch):
    """Fails the test if any entry of any archive is opened for reading (inflating)."""
    def refuse(*args, **kwargs):
        raise AssertionError("an entry was opened before the archive was refused")

    monkeypatch.setattr(zipfile.ZipExtFile, "__init__", refuse)


def refusal(data: bytes, limits: ZipLimits = LIMITS) -> AvenueError:
    with pytest.raises(AvenueError) as caught:
        Archive.open(io.BytesIO(data), limits)
    return caught.value


def test_a_high_ratio_entry_is_refused_from_the_table_without_inflating_anything(nothing_inflated):
    bomb = make_zip({"bomb.jpg": bytes(50 * 1024 * 1024)})  # 50 MB of zeros in about 50 KB
    assert len(bomb) < 100 * 1024
    error = refusal(bomb, ZipLimits(max_total_bytes=10**12, max_entry_bytes=10**12))
    assert (error.status, error.code) == (413, "zip_ratio_too_high") and error.details["ratio"] > 100


def test_images_inflating_past_the_total_are_refused_from_the_table(nothing_inflated):
    entries = {f"{n}.jpg": os.urandom(1024 * 1024) for n in range(6)}  # 6 MB, incompressible
    error = refusal(make_zip(entries))
    assert (error.status, error.code) == (413, "zip_too_large")


@pytest.fixture
def table_unread(monkeypatch):
    """Fails the test if ``zipfile`` parses any archive's central directory."""
    def refuse(*args, **kwargs):
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", refuse)


def test_too_many_entries_are_refused_from_the_end_record_before_the_table_is_parsed(table_unread):
    error = refusal(make_zip({f"{n}.txt": b"x" for n in range(11)}))
    assert (error.status, error.code, error.details["limit"]) == (413, "zip_too_many_entries", 10)


def test_a_table_larger_than_its_entries_could_fill_is_refused_before_it_is_parsed(table_unread):
    """Two entries are allowed, but not two with 1,500-character names (a table of 3 KB)."""
    names = [f"{'x' * 1500}{n}.jpg" for n in range(2)]
    error = refusal(make_zip({name: b"x" for name in names}), ZipLimits(max_entries=2))
    assert (error.status, error.code) == (413, "zip_too_many_entries")


@pytest.mark.parametrize("name", ["../evil.jpg", "a/../../evil.jpg", "/etc/evil.jpg", "C:/evil.jpg",
                                  "a\\..\\evil.jpg"])
def test_a_name_leaving_the_folder_is_refused(nothing_inflated, name):
    error = refusal(make_zip({"fine.jpg": JPEG, name: JPEG}))
    assert (error.status, error.code) == (422, "zip_unsafe_name")


def test_a_symbolic_link_is_refused(nothing_inflated):
    error = refusal(with_entry({"fine.jpg": JPEG}, symlink_info("link.jpg"), b"/etc/passwd"))
    assert (error.status, error.code) == (422, "zip_symlink")


def test_an_encrypted_entry_is_refused(nothing_inflated):
    error = refusal(flagged_encrypted(make_zip({"fine.jpg": JPEG, "secret.jpg": JPEG})))
    assert (error.status, error.code) == (422, "zip_encrypted")


@pytest.mark.parametrize("name", ["inner.zip", "photos/more.ZIP", "x.tar.gz"])
def test_a_nested_archive_is_refused(nothing_inflated, name):
    error = refusal(make_zip({"fine.jpg": JPEG, name: make_zip({"a.jpg": JPEG})}))
    assert (error.status, error.code) == (422, "zip_nested")


@pytest.mark.parametrize("second", ["a.jpg", "A.JPG"])
def test_two_entries_of_one_name_are_refused(nothing_inflated, second):
    error = refusal(make_zip([("a.jpg", JPEG), (second, JPEG)]))
    assert (error.status, error.code) == (422, "zip_duplicate_name")


@pytest.mark.parametrize("data", [b"", b"not a zip at all", make_zip({"a.jpg": JPEG})[:-30]])
def test_what_is_not_a_zip_is_refused(nothing_inflated, data):
    error = refusal(data)
    assert (error.status, error.code) == (400, "invalid_zip")


def test_non_images_folders_and_archiver_clutter_are_skipped_not_refused():
    data = make_zip([("shop/", b""), ("shop/a.jpg", JPEG), ("notes.txt", b"hi"), ("__MACOSX/._a.jpg", b"x"),
                     (".DS_Store", b"x"), ("b.PNG", JPEG)])
    with Archive.open(io.BytesIO(data), LIMITS) as archive:
        assert [entry.name for entry in archive.images] == ["shop/a.jpg", "b.PNG"]
        assert {(s.name, s.reason) for s in archive.skipped} == {
            ("notes.txt", "not_an_image"), ("__MACOSX/._a.jpg", "archiver_metadata"),
            (".DS_Store", "archiver_metadata")}
        assert archive.read(archive.images[0]) == JPEG


def test_an_entry_declared_over_the_cap_is_refused_before_it_is_inflated():
    data = make_zip({"big.jpg": os.urandom(3 * 1024 * 1024)})
    limits = ZipLimits(max_total_bytes=10**9, max_entry_bytes=2 * 1024 * 1024)
    with Archive.open(io.BytesIO(data), limits) as archive:
        with pytest.raises(EntryTooLarge):
            archive.read(archive.images[0])
        assert archive.inflated == 0


def test_a_header_that_understates_its_entry_is_read_no_further_than_it_says_and_refused():
    """50 MB of zeros whose header claims 1 KB: the ratio check sees nothing wrong, and the
    read stops at the declared size and fails its CRC instead of inflating 50 MB."""
    data = lying_sizes(make_zip({"bomb.jpg": bytes(50 * 1024 * 1024)}), declared=1024)
    with Archive.open(io.BytesIO(data), LIMITS) as archive:
        with pytest.raises(EntryUnreadable):
            archive.read(archive.images[0])
        assert archive.inflated <= 1024


@pytest.mark.parametrize(("name", "slot"), [
    ("LAMP-1_2.jpg", ProductSlot("LAMP-1", 2)),
    ("LAMP_RED_10.jpeg", ProductSlot("LAMP_RED", 10)),
    ("LAMP-1.png", ProductSlot("LAMP-1", 0)),
    ("LAMP-1/side view.jpg", ProductSlot("LAMP-1", 0)),
    ("a/b/c.jpg", None),
    ("-bad.jpg", None),
    ("two words.jpg", None),
])
def test_the_naming_rule_names_a_product_and_a_place(name, slot):
    data = make_zip({name: JPEG})
    with Archive.open(io.BytesIO(data), LIMITS) as archive:
        assert product_slot(archive.images[0]) == slot


@pytest.mark.parametrize(("name", "folder"), [("a.jpg", "/"), ("summer/beach/a.jpg", "/summer/beach")])
def test_library_entries_keep_their_folder(name, folder):
    with Archive.open(io.BytesIO(make_zip({name: JPEG})), LIMITS) as archive:
        assert library_folder(archive.images[0]) == folder
