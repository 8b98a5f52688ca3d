"""The zip import's naming rule: which product (and place) or library folder an entry goes to.

Onto products (``target=products``), an entry's name names the product by its sku:

- ``SKU_N.ext`` at the archive's root: product ``SKU``, in place ``N`` (digits);
- ``SKU.ext`` at the root: product ``SKU``, place 0 (before its numbered photos);
- ``SKU/anything.ext``: product ``SKU`` (the folder), in the order of the file names.

The sku is everything before the last ``_N``, so ``LAMP_RED_2.jpg`` is place 2 of
``LAMP_RED``. A product's photos from one archive are added in order of place, then name,
after the photos it already has. A name that fits none of these is reported, not guessed.

Into the library (``target=library``), every image keeps its folder: ``summer/beach/a.jpg``
goes to folder ``/summer/beach``, an image at the root to ``/``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from avenue.bulk.archive import Entry

SKU = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NUMBERED = re.compile(rf"^(?P<sku>{SKU})_(?P<place>\d{{1,6}})$")
_PLAIN = re.compile(rf"^(?P<sku>{SKU})$")
_FOLDER = re.compile(rf"^{SKU}$")


@dataclass(frozen=True)
class ProductSlot:
    """Where an entry goes on a product."""

    sku: str
    place: int


def product_slot(entry: Entry) -> ProductSlot | None:
    """The product and place an entry's name names, or None when it fits no rule."""
    parts = entry.name.split("/")
    if len(parts) == 2 and _FOLDER.match(parts[0]) and parts[1]:
        return ProductSlot(parts[0], 0)
    if len(parts) != 1:
        return None
    stem = posixpath.splitext(parts[0])[0]
    numbered = _NUMBERED.match(stem)
    if numbered:
        return ProductSlot(numbered["sku"], int(numbered["place"]))
    plain = _PLAIN.match(stem)
    return ProductSlot(plain["sku"], 0) if plain else None


def library_folder(entry: Entry) -> str:
    """The library folder an entry goes to: its folder in the archive, ``/`` at the root."""
    return "/" + entry.folder if entry.folder else "/"
