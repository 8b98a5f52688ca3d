"""``flask --app avenue near-duplicates``: give every image stored before near-duplicate detection its
perceptual hash and palette, and link it to its near-duplicates.

First the originals hashed before the colour shares existed (no ``metadata.colour_shares``:
a near-duplicate must agree in colour too, ingest/near_hash.py) get them from their thumb,
in the same ``$set`` as a cleared group label and ``near_pending``: their group was made by
the grey hash alone (a product's red, blue and green shots in one group), so each is grouped
again by the owed step below, once every image of the bucket has its shares.

Then the originals without ``metadata.phash`` are walked as ``placeholders`` walks its own
(``thumbs_lacking``, avenue/media/upkeep/backfill.py: a keyset, one batch in memory, a rerun starts
over cheaply). Each gets its hash and
palette from its WebP thumb (read from GridFS; a few KB) in one single-document ``$set``, then
is linked to the near-duplicates already hashed (``Library.link_near_duplicates``: the
group labels only ever fill in what is missing, so running it twice changes nothing), and,
its exact-duplicate key coming in the same ``$set``, to its exact twins.

Then the originals that owe a grouping (``metadata.near_pending``: hashed at upload or
replace, but their lookup failed, or their process stopped before it ran, or their colour
shares came just now) are linked the same way, which clears the flag.

Then the originals hashed before the exact-duplicate key existed (no
``metadata.pixels_sha256``, store/exact.py) get it from the same thumb, one ``$set`` each, and
are put in their exact group (``Library.link_exact_duplicates``, which also only fills in).
Then the originals that owe their exact link (``metadata.exact_pending``: an upload or a
replace found candidates and left the full-resolution check for after its answer, and its
worker died first, or the decode budget refused it) are linked the same way, which clears
the flag (a refusal again leaves it for the next run).
Groups linked before the full-resolution key existed are checked at full resolution: a member
whose pixels differ leaves its group (``Library.recheck_exact_groups``, ``split``).

Originals whose thumb is missing or unreadable are counted and left (``fsck --repair``
renders lost variants again; run this afterwards).

A format turned off (``AVENUE_DISABLED_FORMATS``) is never decoded here either: with WebP off no
thumb is read, and an original of a format off is not decoded for its exact key, so its link
stays owed (``exact.Refused``); run this again once the format is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.db import Document
from avenue.media.buckets import BUCKETS
from avenue.media.core import Media
from avenue.media.ingest.near_hash import compute as compute_near_hash
from avenue.media.store.exact import PENDING_FIELD as EXACT_PENDING
from avenue.media.store.library import Library
from avenue.media.store.near_duplicates import NEAR_GROUP
from avenue.media.store.near_duplicates import PENDING_FIELD as NEAR_PENDING
from avenue.media.store.scan import set_metadata as set_file_metadata
from avenue.media.upkeep.backfill import (
    ProgressFn,
    computed_for_lacking,
    originals_flagged_ids,
    thumbs_lacking,
)


@dataclass
class NearDuplicatesReport:
    """What a run did, per bucket."""

    computed: dict[str, int] = field(default_factory=dict)
    linked: int = 0
    colours: dict[str, int] = field(default_factory=dict)  # hashed images given their colour shares
    pixels: dict[str, int] = field(default_factory=dict)  # images given their exact-duplicate key
    exact: int = 0  # of those and of the owed ones, the ones with an exact duplicate
    exact_owed: dict[str, int] = field(default_factory=dict)  # images whose exact link was owed
    split: int = 0  # members of groups linked on the thumb alone whose full pixels differ: unlinked
    owed: dict[str, int] = field(default_factory=dict)  # hashed images whose grouping was owed
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"computed": self.computed, "colours": self.colours, "owed": self.owed, "linked": self.linked,
                "pixels": self.pixels, "exact_owed": self.exact_owed, "exact": self.exact,
                "split": self.split,
                "unreadable": self.unreadable}

    def summary_line(self) -> str:
        total = sum(self.computed.values())
        return (f"near-duplicates: {total} images given a hash and palette, "
                f"{sum(self.colours.values())} their colour shares, {sum(self.owed.values())} grouped "
                f"after a failed lookup or again by colour, {self.linked} with near-duplicates, "
                f"{sum(self.pixels.values())} given a pixel hash and {sum(self.exact_owed.values())} "
                f"linked after their upload ({self.exact} with exact duplicates), "
                f"{self.split} out of an exact group their full-size pixels differ from, "
                f"{len(self.unreadable)} without a readable thumb")


def backfill_near_duplicates(db: Database[Document], *, media: Media | None = None,
                             progress: ProgressFn | None = None) -> NearDuplicatesReport:
    """Compute the hash and palette of every original that has none, in every bucket, and link
    each to its near-duplicates (``media``: the app's, ``AppMedia.core``, whose libraries link
    them; none: the defaults)."""
    media = media or Media()
    disabled = media.settings.disabled_formats  # with WebP off no thumb is read (backfill.py)
    report = NearDuplicatesReport()
    for name, bucket in BUCKETS.items():
        report.colours[name] = 0
        # First: the hash pass below links its images at once, against images that must
        # already have their shares (and no group made by the hash alone).
        for original, thumb in thumbs_lacking(db, bucket, "colour_shares", phase=f"Colour shares ({name})",
                                              disabled=disabled, progress=progress, reading=("phash",)):
            if "phash" not in (original.get("metadata") or {}):
                continue  # the hash pass gives it everything
            hashed = compute_near_hash(thumb, disabled) if thumb is not None else None
            if hashed is None or not hashed.shares:
                continue  # its thumb is lost: the hash decides alone (fsck --repair, then again)
            set_file_metadata(db, bucket, original["_id"], {
                "colour_shares": list(hashed.shares), NEAR_GROUP.removeprefix("metadata."): None,
                NEAR_PENDING: True})
            report.colours[name] += 1
        report.computed[name] = 0
        library = Library(db, bucket, media)
        hashes = computed_for_lacking(db, bucket, "phash", compute_near_hash, report.unreadable,
                                      phase=f"Near-duplicate hashes ({name})", disabled=disabled,
                                      progress=progress)
        for original, hashed in hashes:
            set_file_metadata(db, bucket, original["_id"], hashed.as_metadata())
            report.computed[name] += 1
            report.linked += library.grouping.link_near_duplicates(original["_id"]) > 0
            if hashed.pixels:  # its exact key came with the hash: the pass below will not see it
                report.exact += library.grouping.link_exact_duplicates(original["_id"])
        report.owed[name] = 0
        for image_id in originals_flagged_ids(db, bucket, NEAR_PENDING):
            report.owed[name] += 1
            report.linked += library.grouping.link_near_duplicates(image_id) > 0
        report.pixels[name] = 0
        for original, thumb in thumbs_lacking(db, bucket, "pixels_sha256", phase=f"Pixel hashes ({name})",
                                              disabled=disabled, progress=progress):
            hashed = compute_near_hash(thumb, disabled) if thumb is not None else None
            if hashed is None or not hashed.pixels:
                continue  # counted unreadable above when it had no hash either
            set_file_metadata(db, bucket, original["_id"], {"pixels_sha256": hashed.pixels})
            report.pixels[name] += 1
            report.exact += library.grouping.link_exact_duplicates(original["_id"])
        report.exact_owed[name] = 0
        for image_id in originals_flagged_ids(db, bucket, EXACT_PENDING):
            report.exact_owed[name] += 1
            report.exact += library.grouping.link_exact_duplicates(image_id)
        report.split += library.grouping.recheck_exact_groups()
    return report
