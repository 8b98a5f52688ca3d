"""A media file's path: what the serving code resolves and the CDN purge outbox names.

Both the route (:mod:`avenue.media.serve`) and the purge outbox (:mod:`avenue.media.effects`)
spell the same paths; they live here, below both, so effects need not import serve.
"""

from __future__ import annotations

from typing import Any

from avenue.media.buckets import ALIASES

VERSION_MARK = "~"


def media_path(bucket: str, file_id: Any, version: str = "") -> str:
    """``/media/<alias>/<id>``, or ``/media/<alias>/<id>~<version>`` for an image replaced in
    place: new bytes, new URLs (every one is cached as immutable)."""
    token = f"{file_id}{VERSION_MARK}{version}" if version else str(file_id)
    return f"/media/{ALIASES[bucket]}/{token}"


def named_path(bucket: str, file_id: Any, version: str, name: str, ext: str) -> str:
    """``/media/<alias>/<id>[~<version>]/name/<name>.<ext>``: the original under its readable
    name (avenue/media/names.py)."""
    return f"{media_path(bucket, file_id, version)}/name/{name}.{ext}"
