"""A zip archive of images checked before anything in it is read, and read within caps.

Pure: a seekable binary source in (the request body held in memory, or the operator's file
for the CLI), typed errors and entries out; no Flask, no database. Python's ``zipfile`` reads
the central directory (the table of contents at the end of the archive) without
decompressing anything, so every check of the whole archive runs first, on that table alone:

- the number of entries (``max_entries``), the declared total size of the images
  (``max_total_bytes``) and each entry's compression ratio (``max_ratio``, for entries over
  ``RATIO_FLOOR``): a zip bomb is refused from its table, in milliseconds, before one byte is
  inflated;
- names that would escape a folder (absolute, ``..``, backslashes, drive letters, NUL),
  symbolic links, encrypted entries, two entries of the same name and nested archives, each
  refusing the whole archive (a client that sends one is broken or hostile; importing the
  rest would hide it).

Then entries are read one at a time (:meth:`Archive.read`) with a hard cap on the bytes
actually inflated, whatever the header says: ``zipfile`` stops at the declared size and
checks the CRC, and the cap stops a read past ``max_entry_bytes`` even so.
"""

from __future__ import annotations

import posixpath
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from avenue.errors import BadRequest, ImageTooLarge, UnprocessableContent
from avenue.media import IMAGE_FACTS

# The registry's upload formats (.svg too: the library takes SVG logos, sanitised; onto a
# product one is refused like its upload).
IMAGE_EXTENSIONS = IMAGE_FACTS.upload_extensions
ARCHIVE_EXTENSIONS = frozenset({".zip", ".jar", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst"})
# Entries smaller than this are not held to the ratio: a small flat file compresses well and
# harms nobody; a bomb needs size.
RATIO_FLOOR = 1024 * 1024
READ_PIECE = 256 * 1024
# What one entry's record in the central directory may take on average (46 bytes and its name,
# extra fields and comment): a directory larger than the entries allowed could fill is refused
# before it is parsed (a 100 MB table of two million tiny records would take ``zipfile``
# seconds and a gigabyte to read).
DIRECTORY_BYTES_PER_ENTRY = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
# Files archivers add beside the real content (macOS resource forks, Windows thumbnails).
_CLUTTER = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)")


@dataclass(frozen=True)
class ZipLimits:
    """What an archive may hold; the app builds one from its configuration."""

    max_entries: int = 1000
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    max_ratio: int = 100
    max_entry_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One file of the archive, as its central directory describes it."""

    name: str
    size: int  # declared, uncompressed
    compressed: int
    info: zipfile.ZipInfo = field(repr=False, compare=False)

    @property
    def extension(self) -> str:
        return posixpath.splitext(self.name)[1].lower()

    @property
    def folder(self) -> str:
        """The entry's folder inside the archive (``""`` at its root)."""
        return posixpath.dirname(self.name)

    @property
    def basename(self) -> str:
        return posixpath.basename(self.name)


@dataclass(frozen=True)
class Skipped:
    """An entry that is not imported, and why (reported, never fatal)."""

    name: str
    reason: str


class EntryTooLarge(ImageTooLarge):
    """An entry that inflates past the per-image limit (reported for that entry)."""

    code = "file_too_large"


class EntryUnreadable(UnprocessableContent):
    """An entry whose bytes do not match its header (bad CRC, truncated, lying sizes)."""

    code = "corrupt_entry"


def _refuse_zip(status: int, code: str, message: str, **details: object) -> Exception:
    kind = {400: BadRequest, 413: ImageTooLarge}.get(status, UnprocessableContent)
    return kind(message, code=code, **details)


def unsafe_name(name: str) -> bool:
    """Whether an entry's name would leave the folder it is extracted into (or hides a NUL)."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    return any(part == ".." for part in name.split("/"))


def _check_end_record(stream: BinaryIO, limits: ZipLimits) -> None:
    """Refuse an archive whose end record announces more entries, or a larger central
    directory, than ``limits`` allow, before ``zipfile`` parses that directory.

    ``zipfile._EndRecData`` is the stdlib's own reader of the end record (zip64 included),
    private but unchanged since Python 2; reading it here keeps ``zipfile`` the only parser
    of the format. No end record: ``zipfile`` says so next (400 ``invalid_zip``)."""
    try:
        end = zipfile._EndRecData(stream)  # type: ignore[attr-defined]
    except OSError:
        return
    if not end:
        return
    entries, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > limits.max_entries or directory > limits.max_entries * DIRECTORY_BYTES_PER_ENTRY:
        raise _refuse_zip(413, "zip_too_many_entries",
                          f"The archive has {entries:,} entries ({directory:,} bytes of table); at most "
                          f"{limits.max_entries:,} are taken.", entries=entries, limit=limits.max_entries)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


class Archive:
    """A zip archive whose central directory passed every check (:meth:`open`)."""

    def __init__(self, zf: zipfile.ZipFile, images: list[Entry], skipped: list[Skipped],
                 limits: ZipLimits) -> None:
        self._zf = zf
        self.images = images
        self.skipped = skipped
        self.limits = limits
        self.inflated = 0  # bytes actually decompressed so far, over every read

    @classmethod
    def open(cls, source: BinaryIO | str, limits: ZipLimits) -> Archive:
        """Read and check the central directory of ``source``; nothing is decompressed.

        The end record is read first: too many entries, or too large a table, are refused
        before the table is parsed. Raises 400 ``invalid_zip`` (not a zip), 413 ``zip_too_many_entries`` /
        ``zip_too_large`` / ``zip_ratio_too_high``, 422 ``zip_unsafe_name`` / ``zip_symlink`` /
        ``zip_encrypted`` / ``zip_duplicate_name`` / ``zip_nested``."""
        if isinstance(source, str):
            with open(source, "rb") as stream:
                _check_end_record(stream, limits)
        else:
            _check_end_record(source, limits)
        try:
            zf = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as exc:
            raise _refuse_zip(400, "invalid_zip", f"This is not a readable zip archive ({exc}).") from None
        try:
            return cls(zf, *cls._check(zf.infolist(), limits), limits)
        except BaseException:
            zf.close()
            raise

    @staticmethod
    def _check(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> tuple[list[Entry], list[Skipped]]:
        if len(infos) > limits.max_entries:
            raise _refuse_zip(413, "zip_too_many_entries",
                              f"The archive has {len(infos):,} entries; at most {limits.max_entries:,} "
                              "are taken.", entries=len(infos), limit=limits.max_entries)
        seen: set[str] = set()
        images: list[Entry] = []
        skipped: list[Skipped] = []
        total = 0
        for info in infos:
            name = info.filename
            if unsafe_name(name):
                raise _refuse_zip(422, "zip_unsafe_name", f"The entry {name[:200]!r} names a path outside "
                                  "the archive (absolute, '..', '\\' or a drive).", entry=name[:200])
            if _is_symlink(info):
                raise _refuse_zip(422, "zip_symlink", f"The entry {name[:200]!r} is a symbolic link.",
                                  entry=name[:200])
            if info.flag_bits & 0x1:
                raise _refuse_zip(422, "zip_encrypted", f"The entry {name[:200]!r} is encrypted.",
                                  entry=name[:200])
            key = name.rstrip("/").casefold()
            if key in seen:  # two entries that would land on one file (case-insensitively, as on macOS)
                raise _refuse_zip(422, "zip_duplicate_name", f"Two entries are named {name[:200]!r}.",
                                  entry=name[:200])
            seen.add(key)
            ratio = info.file_size // max(info.compress_size, 1)
            if info.file_size >= RATIO_FLOOR and ratio > limits.max_ratio:
                raise _refuse_zip(413, "zip_ratio_too_high",
                                  f"The entry {name[:200]!r} inflates {ratio:,} times its size; at most "
                                  f"{limits.max_ratio} times is taken.", entry=name[:200], ratio=ratio,
                                  limit=limits.max_ratio)
            entry = Entry(name, info.file_size, info.compress_size, info)
            if entry.extension in ARCHIVE_EXTENSIONS:
                raise _refuse_zip(422, "zip_nested", f"The entry {name[:200]!r} is an archive; send its "
                                  "images in one archive.", entry=name[:200])
            if info.is_dir():
                continue
            if _CLUTTER.search(name):
                skipped.append(Skipped(name, "archiver_metadata"))
            elif entry.extension not in IMAGE_EXTENSIONS:
                skipped.append(Skipped(name, "not_an_image"))
            else:
                total += info.file_size
                images.append(entry)
        if total > limits.max_total_bytes:
            raise _refuse_zip(413, "zip_too_large",
                              f"The archive's images inflate to {total:,} bytes; at most "
                              f"{limits.max_total_bytes:,} are taken.", total_bytes=total,
                              limit=limits.max_total_bytes)
        return images, skipped

    def read(self, entry: Entry) -> bytes:
        """One entry's bytes, inflating at most ``max_entry_bytes`` + 1 whatever its header says.

        Raises :class:`EntryTooLarge` (413) past the cap and :class:`EntryUnreadable` (422)
        when its bytes do not match its header."""
        cap = self.limits.max_entry_bytes
        if entry.size > cap:
            raise EntryTooLarge(f"The file is larger than the {cap // (1024 * 1024)} MB limit.",
                                limit_bytes=cap)
        pieces: list[bytes] = []
        got = 0
        try:
            with self._zf.open(entry.info) as stream:
                while True:
                    piece = stream.read(min(READ_PIECE, cap + 1 - got))
                    if not piece:
                        break
                    got += len(piece)
                    self.inflated += len(piece)
                    pieces.append(piece)
                    if got > cap:
                        raise EntryTooLarge(f"The file is larger than the {cap // (1024 * 1024)} MB limit.",
                                            limit_bytes=cap)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
            raise EntryUnreadable(f"The entry cannot be read: {exc}.") from None
        return b"".join(pieces)

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.images)
