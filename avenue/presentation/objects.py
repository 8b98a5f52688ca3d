"""The contract's image object (URLs, sizes, variants) for a stored image or a stored reference,
shaped from the media core's records (:class:`Image`, :class:`Near`, a product's reference) with
the URLs its :class:`UrlSigner` builds.

The object is a declared answer (:class:`ImageObject`, ``avenue/shapes.py``): the code fills it
and answers its dump, the OpenAPI document's ``Image`` component is its schema. It is built
with ``model_construct`` (no validation): every field comes from stored data the code wrote,
and a library page answers a hundred of them. Its nested values are kept as the plain dicts
they are built as (their models declare their shape for the document; constructing a model
of each would double the cost of a page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from avenue.clock import isoformat
from avenue.media import IMAGE_FACTS, Image, Library, UrlSigner
from avenue.shapes import Absent, Answer, IfSet, ObjectIdText, OneOf

# What the media core states of its images (formats, variants, bounds), as the object uses it.
EXTENSIONS: Mapping[str, str] = IMAGE_FACTS.extensions  # a stored format's URL suffix
VARIANT_NAMES = IMAGE_FACTS.variant_names
FORMATS = IMAGE_FACTS.formats


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
    # A rendition ``srcset`` offers the offered formats, best first, then the fallback for browsers
    # that show none of them (PNG instead of JPEG for an image with transparency, as its variants).
    last = IMAGE_FACTS.fallback(transparent)
    formats = (*IMAGE_FACTS.offered, last)
    steps = signer.ladder_urls(bucket, file_id, width, formats, version=version, private=private)
    srcset = {EXTENSIONS[fmt]: ", ".join(f"{urls[fmt]} {shown}w" for _, shown, urls in steps)
              for fmt in formats}
    fitting = [urls for step, _, urls in steps if step <= FALLBACK_SRC_WIDTH]
    src = (fitting or [steps[0][2]])[-1]  # the widest step up to it (steps ascend), else the narrowest
    return {"widths": [shown for _, shown, _ in steps], "srcset": srcset, "fallback": EXTENSIONS[last],
            "src": src[last]}


class NearDuplicate(Answer):
    """An image that looks like another: its id, URLs, file name and how far its hash is."""

    id: ObjectIdText
    url: str
    thumb: str | None
    filename: str | None
    distance: Annotated[int, Field(ge=0, le=IMAGE_FACTS.near_distance,
                                   description="Bits in which the two 64-bit perceptual hashes differ.")]


class Open(Answer):
    """A part of the image object the document leaves open to further fields."""

    model_config = ConfigDict(extra="ignore")


class VariantSize(Open):
    """A variant's rendered size."""

    width: int
    height: int


_EXTENSION = {fmt.name: fmt.extension for fmt in FORMATS}
_VECTOR = next(fmt for fmt in FORMATS if fmt.vector)
_HEX = "^#[0-9a-f]{6}$"


class Renditions(Answer):
    """Renditions on request over the width ladder, for one ``<picture>``."""

    widths: list[Annotated[int, Field(ge=1)]]
    srcset: Annotated[dict[str, str], Field(json_schema_extra={
        "required": [_EXTENSION[name] for name in IMAGE_FACTS.offered],
        "properties": {_EXTENSION[name]: {"type": "string"}
                       for name in (*IMAGE_FACTS.offered, *IMAGE_FACTS.fallbacks)}})]
    fallback: Annotated[str, OneOf(tuple(_EXTENSION[name] for name in IMAGE_FACTS.fallbacks))]
    src: str


class ImageFocalPoint(Answer):
    """Where the subject is: fractions of the width and height."""

    x: Annotated[float, Field(ge=0, le=1)]
    y: Annotated[float, Field(ge=0, le=1)]


class ImageEdits(Open):
    """The normalised non-destructive edits (avenue/media/ingest/edits.py)."""

    rotate: Literal[0, 90, 180, 270]
    flip_horizontal: bool
    flip_vertical: bool
    crop: dict[str, Any] | None


class ImageSource(Open):
    """The unedited original as oriented, and its URL."""

    width: int | None
    height: int | None
    url: str | None


class NamedCrop(Open):
    """A named crop: fractions of the edited picture."""

    x: float
    y: float
    width: float
    height: float


class PaletteColour(Open):
    """A dominant colour and its share of the visible pixels."""

    color: Annotated[str, Field(pattern=_HEX)]
    share: Annotated[float, Field(ge=0, le=1)]


_TIME = Field(json_schema_extra={"format": "date-time"})


class ImageObject(Answer):
    """An image as every upload, library and product-photo endpoint answers it: its URLs, sizes,
    variants and renditions."""

    # The document's ``Image``: open to further fields, as an extension adds them (UnusedImage).
    # The fields from ``owner`` on are its callers' (an upload's owner, a library image's folder).
    model_config = ConfigDict(extra="ignore")

    id: ObjectIdText
    url: Annotated[str, Field(description="Signed and expiring for private uploads.")]
    content_type: Annotated[str | None, Field(description=(
        f"The original's: {', '.join(f.mime for f in FORMATS if f.stored)}. {_VECTOR.mime} only in the "
        "builder's library: the original is the sanitised SVG, its variants and renditions are rasters "
        "drawn from it."))]
    width: Annotated[int | None, Field(description="An SVG's: the size it declares, scaled down to "
                                                   "AVENUE_MAX_PIXELS when it declares more.")]
    height: int | None
    bytes: int | None
    sha256: str | None
    filename: str | None
    variants: Annotated[dict[str, str], Field(json_schema_extra={
        "properties": {name: {"type": "string"} for name in VARIANT_NAMES}})]
    variant_urls: IfSet[dict[str, dict[str, str]]] = None
    variant_sizes: IfSet[dict[str, VariantSize]] = None
    srcset: IfSet[Annotated[dict[str, str], Field(description=(
        f"Per format ({', '.join(f.extension for f in FORMATS if f.variant)}): the fitted variants "
        "and widths."))]] = None
    renditions: IfSet[Annotated[Renditions | None, Field(description=(
        "Renditions on request over the width ladder, up to the image's own width (never upscaled), "
        "for one <picture>: a srcset per format (avif, webp, and the fallback: jpg, or png for an "
        "image with transparency), the widths they list, and an <img src> (the fallback at 800 px, or "
        "narrower). Public URLs are unsigned (on the allow-list); a private image's are signed and "
        "expire like its other URLs. Null when the width is unknown."))]] = None
    frames: IfSet[Annotated[int, Field(ge=1)]] = None
    visibility: IfSet[Literal["public", "private"]] = None
    uploaded_at: Annotated[str | None, _TIME]
    expires_at: IfSet[Annotated[str, _TIME]] = None
    alt: IfSet[Annotated[str, Field(description=(
        "Its alt text; left out when it has none (never null: as a bulk alt-text answer says it).")
    )]] = None
    name: IfSet[Annotated[str, Field(
        pattern="^[a-z0-9]+(-[a-z0-9]+)*$", max_length=IMAGE_FACTS.max_name_length,
        description="Its readable name (PUT …/name), when it has one; public images only.")]] = None
    named_url: IfSet[Annotated[str, Field(description=(
        "The original under its readable name: /media/<alias>/<id>[~<version>]/name/<name>.<ext>; "
        "other names of the id answer 301 to it (docs/media.md, \"Readable names\")."))]] = None
    owner: IfSet[str | None] = None
    used_in: Absent[list[Annotated[str, Field(pattern="^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")]]] = None
    also_on: Absent[Annotated[list[str], Field(description=(
        "One product's photo (GET /api/shop/products/{sku}): the other products that use the same "
        "stored photo (deduplicated)."))]] = None
    blurhash: IfSet[Annotated[str, Field(min_length=6, max_length=100, description=(
        "A BlurHash (4x3 components) to draw while the image loads."))]] = None
    color: IfSet[Annotated[Annotated[str, Field(pattern=_HEX)] | None, Field(
        description="The dominant colour of the visible pixels.")]] = None
    focal_point: IfSet[Annotated[ImageFocalPoint, Field(
        description="Where the subject is, 0..1 of width and height; crops keep it.")]] = None
    version: IfSet[Annotated[str, Field(pattern="^([0-9a-f]{8})?$", description=(
        "Which bytes the URLs name: empty until the image is replaced in place (PUT), then a new value "
        "per replace or focal point change; the id stays, and the URLs of earlier versions answer 308 "
        "to these for AVENUE_REPLACED_REDIRECT_DAYS, then 404 (a private image's: 404 at once; its "
        "signed URLs sign the version)."))]] = None
    edits: IfSet[Annotated[ImageEdits | None, Field(
        description="The non-destructive edits the picture was made with (null: none).")]] = None
    source: IfSet[Annotated[ImageSource, Field(description=(
        "The unedited original as oriented, and its URL: what an editor draws on. Edited: a URL "
        "signed for AVENUE_SOURCE_URL_TTL_SECONDS, served private, given only to callers who may edit "
        "the image (null for others). Not edited: the image's own URL."))]] = None
    crops: IfSet[Annotated[dict[str, NamedCrop], Field(
        description="Named crops (fractions of the edited picture): renditions' c_<name>.")]] = None
    folder: IfSet[Annotated[str, Field(pattern="^/", description="Library media: its folder.")]] = None
    tags: IfSet[Annotated[list[str], Field(description="Library media: its tags.")]] = None
    palette: Absent[Annotated[list[PaletteColour], Field(max_length=IMAGE_FACTS.palette_colours, description=(
        "Its dominant colours, largest share first (images stored before palettes: absent until "
        "`flask near-duplicates` runs)."))]] = None
    near_duplicates: Absent[Annotated[list[NearDuplicate], Field(description=(
        "An upload's answer and one library image: the images of the same bucket that look like it "
        "(re-encoded, resized, slightly cropped), nearest first; an upload's own only among uploads, "
        "never a trashed one. Left out of an upload's answer when the lookup failed or was not over a "
        "twentieth of the upload's time past its write, 5 ms to 1 s (the image is stored all the same; "
        "the lookup links its group when it ends)."))]] = None


class UnusedImage(ImageObject):
    """A library image not served lately (the admins' list): the image object and when it was
    last served."""

    last_served: Annotated[str | None, Field(
        json_schema_extra={"format": "date-time"},
        description="null: never served since delivery numbers were kept.")]


def image_ref(doc: dict[str, Any]) -> dict[str, Any]:
    """The reference a product stores for the image whose record is ``doc``."""
    return Image.from_files_doc("", doc).ref()


def ref_object(ref: dict[str, Any], bucket: str, signer: UrlSigner, *,
               shape: type[ImageObject] = ImageObject, **extra: Any) -> dict[str, Any]:
    """The API's image object for an image reference (see :func:`image_ref`), as ``shape``
    answers it; ``extra``: the fields its caller adds (an upload's owner, a library image's
    folder...)."""
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
        obj["named_url"] = signer.named_url(bucket, file_id, version, ref["name"], ext)
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
    obj.update(extra)
    return shape.filled(obj).answer()


def image_object(image: Image, signer: UrlSigner, *, shape: type[ImageObject] = ImageObject,
                 **extra: Any) -> dict[str, Any]:
    """The API's image object for a stored original (``shape`` and ``extra``: as :func:`ref_object`)."""
    if image.palette:  # its dominant colours and their shares (avenue/media/ingest/near_hash.py)
        extra["palette"] = [dict(colour) for colour in image.palette]
    return ref_object(image.ref(), image.bucket, signer, shape=shape, **extra)


def near_objects(near: Sequence[Library.Near], signer: UrlSigner) -> list[dict[str, Any]]:
    """An answer's ``near_duplicates``: each close match's id, URLs and Hamming distance."""
    listed = []
    for match in near:
        obj = image_object(match.image, signer)
        listed.append(NearDuplicate(id=obj["id"], url=obj["url"], thumb=obj["variants"].get("thumb"),
                                    filename=obj["filename"], distance=match.distance).answer())
    return listed


def signer_from_config(config: Mapping[str, Any], *, sources: bool = False) -> UrlSigner:
    """How an app builds media URLs (CDN base URL, signing key and lifetime); ``sources``:
    the caller may edit the images, and gets their unedited originals' signed URLs."""
    return UrlSigner(
        base_url=config["AVENUE_MEDIA_BASE_URL"],
        key=config["SECRET_KEY"],
        ttl_seconds=config["AVENUE_SIGNED_URL_TTL_SECONDS"],
        sources=sources,
        source_ttl_seconds=config["AVENUE_SOURCE_URL_TTL_SECONDS"],
    )
