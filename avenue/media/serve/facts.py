"""What the media core states about the images it answers with and takes: the facts the API's
image object (avenue/presentation/objects.py) and its schema repeat, and the upload formats'
file name endings, lent through the door as one record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from avenue.media.formats import EXTENSIONS, FALLBACKS, FORMATS, OFFERED, UPLOAD_EXTENSIONS, Format, fallback
from avenue.media.ingest.near_hash import NEAR, PALETTE
from avenue.media.ingest.variants import VARIANT_NAMES
from avenue.media.names import MAX_NAME_LENGTH


@dataclass(frozen=True)
class ImageFacts:
    """``variant_names``: the eager variants, in the order answers list them; ``formats``:
    every format's facts, ``extensions`` the stored ones' URL suffixes; ``offered``: what a
    ``<picture>`` offers before its ``fallbacks``; ``near_distance``: the most bits two
    near-duplicates' hashes differ in; ``palette_colours``: the most dominant colours kept;
    ``max_name_length``: a readable name's; ``upload_extensions``: the file name endings of
    the formats an upload may have (the zip import's images)."""

    variant_names: tuple[str, ...]
    formats: tuple[Format, ...]
    extensions: Mapping[str, str]
    offered: tuple[str, ...]
    fallbacks: tuple[str, ...]
    near_distance: int
    palette_colours: int
    max_name_length: int
    upload_extensions: frozenset[str]

    def fallback(self, transparent: bool) -> str:
        """The format for browsers that show none of ``offered`` (formats.fallback)."""
        return fallback(transparent)


IMAGE_FACTS = ImageFacts(VARIANT_NAMES, FORMATS, EXTENSIONS, OFFERED, FALLBACKS, NEAR, PALETTE,
                         MAX_NAME_LENGTH, UPLOAD_EXTENSIONS)
