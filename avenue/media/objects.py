"""The contract's image object, built from a GridFS files document."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from avenue.media import signing
from avenue.media.buckets import ALIASES
from avenue.media.variants import VARIANT_NAMES

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "avif": "avif"}


@dataclass(frozen=True)
class UrlSigner:
    """What building media URLs needs: a public base URL, and keys/lifetime for private ones."""

    base_url: str = ""
    key: str = ""
    ttl_seconds: int = 3600

    def media_url(self, bucket: str, file_id, variant: str = "", ext: str = "",
                  private: bool = False, now: float | None = None) -> str:
        path = f"/media/{ALIASES[bucket]}/{file_id}"
        if variant:
            path += f"/{variant}"
        if ext:
            path += f".{ext}"
        url = f"{self.base_url}{path}"
        if private:
            expires = int((time.time() if now is None else now) + self.ttl_seconds)
            sig = signing.sign(self.key, bucket, str(file_id), variant, expires)
            url += "?" + urlencode({"expires": expires, "sig": sig})
        return url


def isoformat(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_object(doc: dict, bucket: str, signer: UrlSigner) -> dict:
    """The API's image object for the original described by ``doc``."""
    meta = doc.get("metadata") or {}
    private = meta.get("visibility") == "private"
    file_id = str(doc["_id"])
    variants = meta.get("variants") or {}
    obj = {
        "id": file_id,
        "url": signer.media_url(bucket, file_id, ext=EXTENSIONS.get(meta.get("format"), ""),
                                private=private),
        "content_type": meta.get("content_type"),
        "width": meta.get("width"),
        "height": meta.get("height"),
        "bytes": doc.get("length"),
        "sha256": meta.get("sha256"),
        "filename": meta.get("filename") or doc.get("filename"),
        "variants": {
            name: signer.media_url(bucket, file_id, name, private=private)
            for name in VARIANT_NAMES if name in variants
        },
        # Rendered sizes, ready for srcset/sizes attributes.
        "variant_sizes": {
            name: {"width": info["webp"]["width"], "height": info["webp"]["height"]}
            for name, info in variants.items() if "webp" in info
        },
        "frames": meta.get("frames", 1),
        "visibility": meta.get("visibility", "public"),
        "uploaded_at": isoformat(doc.get("uploadDate")),
    }
    if meta.get("expires_at"):
        obj["expires_at"] = isoformat(meta["expires_at"])
    if meta.get("alt") is not None:
        obj["alt"] = meta["alt"]
    return obj
