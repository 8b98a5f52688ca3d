"""Media URLs as the route reads them: where an original, a variant, a rendition, the unedited
source and a readable name are served, and their signatures (``signing``), built in the one
place that also parses and verifies them. The API's image object (avenue/presentation/) asks
:class:`UrlSigner` for every URL it hands out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from avenue.media.formats import EXTENSIONS
from avenue.media.paths import media_path, named_path
from avenue.media.records import SOURCE
from avenue.media.serve import signing
from avenue.media.transform import Spec, ladder_for


@dataclass(frozen=True)
class UrlSigner:
    """What building media URLs needs: a public base URL, and keys/lifetime for private ones;
    ``sources``: whether the caller may edit the images (and so gets their unedited
    originals' URLs, signed for ``source_ttl_seconds``)."""

    base_url: str = ""
    key: str = ""
    ttl_seconds: int = 3600
    sources: bool = False
    source_ttl_seconds: int = 600

    def media_url(self, bucket: str, file_id: Any, variant: str = "", ext: str = "",
                  private: bool = False, now: float | None = None, version: str = "") -> str:
        path = media_path(bucket, file_id, version)
        if variant:
            path += f"/{variant}"
        if ext:
            path += f".{ext}"
        url = f"{self.base_url}{path}"
        if private:
            expires = self.expiry(time.time() if now is None else now)
            sig = signing.sign(self.key, bucket, str(file_id), variant, expires, version)
            url += "?" + urlencode({"expires": expires, "sig": sig})
        return url

    def rendition_url(self, bucket: str, file_id: Any, spec: Spec, fmt: str = "", *, version: str = "",
                      private: bool = False, now: float | None = None, public_sig: bool = True) -> str:
        """The URL of a rendition of an image version (``fmt``: ``webp``, ``avif``, ``jpeg``,
        ``png``; empty: chosen by ``Accept``). A private image's is signed like its other URLs
        (expiring, over the spec's key); a public image's carries ``sig`` (no expiry), which
        any rendition off the allow-list needs and one on it ignores (``public_sig=False``
        leaves it out, for a spec the caller knows is on the allow-list: a shorter URL, the
        same for every key)."""
        return self.rendition_urls(bucket, file_id, spec, (fmt,), version=version, private=private, now=now,
                                   public_sig=public_sig)[fmt]

    def rendition_urls(self, bucket: str, file_id: Any, spec: Spec, formats: Iterable[str], *,
                       version: str = "", private: bool = False, now: float | None = None,
                       public_sig: bool = True) -> dict[str, str]:
        """:meth:`rendition_url` for several formats of one spec. A public image's signature
        covers the image version and the spec (any format); a private image's covers the
        format too (``<key>.<ext>``, or the key alone for the URL negotiated by ``Accept``), so
        a link handed out for one format opens no other."""
        key = spec.key()
        image = f"{self.base_url}{media_path(bucket, file_id, version)}"
        urls = {}
        expires = self.expiry(time.time() if now is None else now)
        public = signing.sign_rendition(self.key, bucket, str(file_id), version, key) if public_sig else ""
        for fmt in formats:
            named = f"{key}.{EXTENSIONS.get(fmt, fmt)}" if fmt else key
            query = ""
            if private:
                sig = signing.sign(self.key, bucket, str(file_id), named, expires, version)
                query = "?" + urlencode({"expires": expires, "sig": sig})
            elif public:
                query = "?" + urlencode({"sig": public})
            urls[fmt] = f"{image}/{named}{query}"
        return urls

    def source_url(self, bucket: str, file_id: Any, version: str = "", now: float | None = None) -> str:
        """The URL of an image's unedited original (``.../source``), for its editors: signed
        like a private URL whatever the image's visibility, valid for ``source_ttl_seconds``
        (a quarter more at most), served ``private`` (never at a CDN)."""
        path = f"{self.base_url}{media_path(bucket, file_id, version)}/{SOURCE}"
        expires = self.expiry(time.time() if now is None else now, self.source_ttl_seconds)
        sig = signing.sign(self.key, bucket, str(file_id), SOURCE, expires, version)
        return f"{path}?" + urlencode({"expires": expires, "sig": sig})

    def expiry(self, now: float, ttl: int | None = None) -> int:
        """When a private URL handed out at ``now`` expires: the end of the window holding
        ``now + ttl`` (the signer's ``ttl_seconds`` by default). Windows are a quarter of the
        lifetime (at least a minute), so every answer within one window hands out the same
        URL, which browsers and the CDN can cache, and each URL stays valid for at least the
        configured lifetime."""
        ttl = self.ttl_seconds if ttl is None else ttl
        window = max(60, ttl // 4)
        return (int(now + ttl) // window + 1) * window

    def named_url(self, bucket: str, file_id: Any, version: str, name: str, ext: str) -> str:
        """The original's URL under its readable name (avenue/media/names.py)."""
        return f"{self.base_url}{named_path(bucket, file_id, version, name, ext)}"

    def ladder_urls(self, bucket: str, file_id: Any, width: int, formats: Iterable[str], *, version: str = "",
                    private: bool = False, now: float | None = None) -> list[tuple[int, int, dict[str, str]]]:
        """The width ladder's steps worth offering for an image ``width`` px wide (never
        upscaled), each as (step, the width it renders, its rendition URLs in ``formats``):
        every step is on the allow-list, so a public image's URLs carry no signature."""
        formats, now = tuple(formats), time.time() if now is None else now  # one window for all
        return [(step, shown, self.rendition_urls(bucket, file_id, Spec(width=step), formats, version=version,
                                                  private=private, now=now, public_sig=False))
                for step, shown in ladder_for(width)]
