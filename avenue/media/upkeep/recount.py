"""Every running total of the media package recounted from the records and files, and replaced where no
write moved it meanwhile: each stored bucket's counters and the renditions' total (the byte
budget evicts by it, avenue/media/effects/counters.py), then the library's facets
(avenue/media/effects/facets.py). The status reconciliation and the sweep's last step ask it.
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from avenue.db import Document
from avenue.media.buckets import RENDITIONS, STORED
from avenue.media.effects.counters import recount as recount_bucket
from avenue.media.effects.facets import recount as recount_facets
from avenue.media.store.scan import has_chunk_index


def recount_media(db: Database[Document]) -> dict[str, Any]:
    """What each recount corrected: per bucket (the renditions' too), and ``library_facets``."""
    return {**{bucket: recount_bucket(db, bucket, chunk_index=has_chunk_index(db, bucket))
               for bucket in (*STORED, RENDITIONS)}, "library_facets": recount_facets(db)}
