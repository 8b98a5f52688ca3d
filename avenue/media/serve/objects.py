"""The contract's image object (URLs, sizes, variants) for a stored image or a stored reference."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import Field

from avenue.clock import isoformat
from avenue.media.formats import EXTENSIONS, OFFERED, fallback
from avenue.media.ingest.likeness import NEAR
from avenue.media.ingest.variants import VARIANT_NAMES
from avenue.media.paths import media_path, named_path
from avenue.media.records import SOURCE, Image, Near
from avenue.media.serve import signing
from avenue.media.transform import Spec, ladder_for
from avenue.shapes import Answer, ObjectIdText


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


def _formats(ref: dict[str, Any], name: str) -> list[str]:
    """The formats stored for variant ``name`` (WebP for references made before they were
    recorded: every variant has it)."""
    recorded = (ref.get("variant_formats") or {}).get(name)
    return [fmt for fmt in recorded if fmt in EXTENSIONS] if recorded else ["webp"]


def _srcsets(urls: dict[str, dict[str, str]], sizes: dict[str, dict[str, int]]) -> dict[str, str]:
    """``srcset`` values per format over the fitted variants (``og`` is a crop, not a size)."""
    by_format: dict[str, list[str]] = {}
    for name in ("thumb", "card", "gallery"):
        for ext, url in urls.get(name, {}).items():
            by_format.setdefault(ext, []).append(f"{url} {sizes[name]['width']}w")
    return {ext: ", ".join(entries) for ext, entries in by_format.items()}


#: The width of the ``<img src>`` fallback (for browsers without ``srcset``): this ladder step,
#: or the image's own width when it is narrower.
FALLBACK_SRC_WIDTH = 800


def _renditions(ref: dict[str, Any], bucket: str, signer: UrlSigner, private: bool) -> dict[str, Any] | None:
    """``srcset`` values per format over the width ladder (renditions on request), for one
    ``<picture>``; None when the width is unknown. Public URLs are on the allow-list and
    carry no signature; a private image's are signed like its other URLs, in one window."""
    width = ref.get("width")
    if not isinstance(width, int) or width < 1:
        return None
    file_id, version = str(ref["id"]), ref.get("version") or ""
    # Transparency shows in the variants' fallback format (as MediaDoc.transparent reads it).
    transparent = any("png" in formats for formats in (ref.get("variant_formats") or {}).values())
    # A rendition ``srcset`` offers OFFERED, best first, then the fallback for browsers that show
    # none of them (PNG instead of JPEG for an image with transparency, as its variants).
    last = fallback(transparent)
    formats = (*OFFERED, last)
    steps = ladder_for(width)
    now = time.time()
    urls = {step: signer.rendition_urls(bucket, file_id, Spec(width=step), formats, version=version,
                                        private=private, now=now, public_sig=False) for step, _ in steps}
    srcset = {EXTENSIONS[fmt]: ", ".join(f"{urls[step][fmt]} {shown}w" for step, shown in steps)
              for fmt in formats}
    src_step = max((step for step, _ in steps if step <= FALLBACK_SRC_WIDTH), default=steps[0][0])
    return {"widths": [shown for _, shown in steps], "srcset": srcset, "fallback": EXTENSIONS[last],
            "src": urls[src_step][last]}


def image_ref(doc: dict[str, Any]) -> dict[str, Any]:
    """The reference a product stores for the original whose files document is ``doc``."""
    return Image.from_files_doc("", doc).ref()


def ref_object(ref: dict[str, Any], bucket: str, signer: UrlSigner) -> dict[str, Any]:
    """The API's image object for an image reference (see :func:`image_ref`)."""
    private = ref.get("visibility") == "private"
    file_id = str(ref["id"])
    version = ref.get("version") or ""
    sizes = ref.get("variant_sizes") or {}
    obj = {
        "id": file_id,
        "url": signer.media_url(bucket, file_id, ext=EXTENSIONS.get(ref.get("format") or "", ""),
                                private=private, version=version),
        "content_type": ref.get("content_type"),
        "width": ref.get("width"),
        "height": ref.get("height"),
        "bytes": ref.get("bytes"),
        "sha256": ref.get("sha256"),
        "filename": ref.get("filename"),
        "variants": {
            name: signer.media_url(bucket, file_id, name, private=private, version=version)
            for name in VARIANT_NAMES if name in sizes
        },
        # The same variants by explicit format, for <picture> sources and CDNs that do not
        # key on Accept: every format stored for the variant.
        "variant_urls": {
            name: {EXTENSIONS[fmt]: signer.media_url(bucket, file_id, name, EXTENSIONS[fmt], private=private,
                                                     version=version)
                   for fmt in _formats(ref, name)}
            for name in VARIANT_NAMES if name in sizes
        },
        # Rendered sizes, ready for srcset/sizes attributes.
        "variant_sizes": {name: sizes[name] for name in VARIANT_NAMES if name in sizes},
        "frames": ref.get("frames", 1),
        "visibility": ref.get("visibility", "public"),
        "uploaded_at": isoformat(ref.get("uploaded_at")),
    }
    obj["srcset"] = _srcsets(obj["variant_urls"], obj["variant_sizes"])
    # Any width on the ladder, in AVIF, WebP and a fallback: what a storefront's <picture> needs.
    obj["renditions"] = _renditions(ref, bucket, signer, private)
    if ref.get("expires_at"):
        obj["expires_at"] = isoformat(ref["expires_at"])
    if ref.get("alt") is not None:
        obj["alt"] = ref["alt"]
    ext = EXTENSIONS.get(ref.get("format") or "", "")
    if ref.get("name") and not private and ext:
        # Its readable name (avenue/media/names.py) and the original's URL under it.
        obj["name"] = ref["name"]
        obj["named_url"] = f"{signer.base_url}{named_path(bucket, file_id, version, ref['name'], ext)}"
    placeholder = ref.get("placeholder") or {}
    if placeholder.get("blurhash"):
        # What to draw while the image loads: a blurhash and the dominant colour (#rrggbb).
        obj["blurhash"] = placeholder["blurhash"]
        obj["color"] = placeholder.get("color")
    # Where the subject is (0..1 of width and height): crops keep it, clients may too
    # (CSS object-position). Images stored before focal points are centred.
    obj["focal_point"] = ref.get("focal_point") or {"x": 0.5, "y": 0.5}
    # Which bytes the URLs name: "" until the image is replaced in place, then a new value
    # per replace (the id stays; earlier URLs redirect here for a while).
    obj["version"] = version
    # Non-destructive edits (avenue/media/ingest/edits.py): the normalised edits (null: none),
    # the unedited original an editor draws on (its own URL: signed like the others), and the
    # named crops renditions ask for by name (c_<name>). The original is for the image's
    # editors: its URL is signed for a few minutes and given to them only (null for others).
    obj["edits"] = ref.get("edits") or None
    source = ref.get("source") or {"width": ref.get("width"), "height": ref.get("height"), "variant": ""}
    if source.get("variant"):
        source_url = signer.source_url(bucket, file_id, version) if signer.sources else None
    else:
        source_url = obj["url"]
    obj["source"] = {"width": source.get("width"), "height": source.get("height"), "url": source_url}
    obj["crops"] = {name: dict(box) for name, box in sorted((ref.get("crops") or {}).items())}
    return obj


def image_object(image: Image, signer: UrlSigner) -> dict[str, Any]:
    """The API's image object for a stored original."""
    obj = ref_object(image.ref(), image.bucket, signer)
    if image.palette:  # its dominant colours and their shares (avenue/media/ingest/likeness.py)
        obj["palette"] = [dict(colour) for colour in image.palette]
    return obj


class NearDuplicate(Answer):
    """An image that looks like another: its id, URLs, file name and how far its hash is."""

    id: ObjectIdText
    url: str
    thumb: str | None
    filename: str | None
    distance: Annotated[int, Field(ge=0, le=NEAR, description="Bits in which the two 64-bit perceptual "
                                                              "hashes differ.")]


def near_objects(near: Sequence[Near], signer: UrlSigner) -> list[dict[str, Any]]:
    """An answer's ``near_duplicates``: each close match's id, URLs and Hamming distance."""
    listed = []
    for match in near:
        obj = image_object(match.image, signer)
        listed.append(NearDuplicate(id=obj["id"], url=obj["url"], thumb=obj["variants"].get("thumb"),
                                    filename=obj["filename"], distance=match.distance).answer())
    return listed
