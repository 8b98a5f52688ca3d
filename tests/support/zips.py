"""Zip archives made in memory for the zip import's tests and benchmark: well-formed ones, and
the hostile kinds (bombs, lying headers, symlinks, encrypted or duplicated entries)."""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile

Entries = list[tuple[str, bytes]] | dict[str, bytes]


def make_zip(entries: Entries, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``entries`` (name, bytes), in order; a name may repeat (a duplicate entry)."""
    items = list(entries.items()) if isinstance(entries, dict) else list(entries)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name, which a test wants
        for name, data in items:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def with_entry(entries: Entries, info: zipfile.ZipInfo, data: bytes) -> bytes:
    """A zip of ``entries`` plus one entry described by ``info`` (flags, attributes)."""
    out = io.BytesIO(make_zip(entries))
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr(info, data)
    return out.getvalue()


def symlink_info(name: str) -> zipfile.ZipInfo:
    """An entry that unzips as a symbolic link (Unix mode S_IFLNK)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def flagged_encrypted(data: bytes) -> bytes:
    """``data`` (a zip) with its last entry flagged as encrypted (general purpose bit 0) in its
    local header and the central directory (zipfile writes no encrypted entries itself)."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = patched.rindex(signature) + offset
        struct.pack_into("<H", patched, at, struct.unpack_from("<H", patched, at)[0] | 0x1)
    return bytes(patched)


def lying_sizes(data: bytes, declared: int) -> bytes:
    """``data`` (a one-entry zip) with the entry's uncompressed size rewritten to ``declared``
    in both its local header and the central directory: a header that understates what the
    entry really inflates to."""
    patched = bytearray(data)
    local = patched.index(b"PK\x03\x04")
    struct.pack_into("<I", patched, local + 22, declared)
    central = patched.index(b"PK\x01\x02")
    struct.pack_into("<I", patched, central + 24, declared)
    return bytes(patched)
