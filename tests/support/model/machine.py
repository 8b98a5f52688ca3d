"""A model of the store, and hypothesis' stateful testing driving the service against it.

:class:`StoreModel` holds what the store should hold (docs/architecture.md, "Invariants"):
every image acknowledged, its current version and bytes (the SHA-256 its answers gave), the
URLs each answer handed out, its earlier versions, the trash, the pages using library images.
:func:`machine` builds a ``RuleBasedStateMachine`` on a :class:`Harness` (the doors to the
workers, the CLI, the database): its rules are the API's writes, gc, fsck and a worker's
restart, chosen and ordered by hypothesis; after every step its invariants read everything
back through every worker. A failure shrinks to a shortest sequence, printed as code: that
sequence becomes a plain regression test (tests/model/test_regressions.py).

Which invariant a failure broke is in its assertion's message: the names are those of
docs/architecture.md's table (``read_your_writes``, ``earlier_urls``, ``nothing_lost``,
``fsck_clean``, ``gc_exact``, ``versions_kept``, ``stock_gridfs``, ``gridfs_spec``, ``counts``).
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from bson import ObjectId
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from PIL import Image as PILImage

from avenue.media.buckets import BUILDER, PRODUCTS, UPLOADS
from avenue.media.effects.counters import FIELDS, count_bucket
from avenue.media.effects.counters import of as counters_of
from avenue.status.counters import FIELDS as PRODUCT_FIELDS
from avenue.status.counters import product_counters, product_figures
from tests.support.client import multipart
from tests.support.gridfs_read import current_bytes
from tests.support.gridfs_spec import invalid_files
from tests.support.model.doors import Answer
from tests.support.records import unheld

#: What every run counts, for ``make model``'s report (tests/support/model/run.py).
COVERAGE: Counter[str] = Counter()

KINDS = ("library", "upload", "product")
BUCKET_OF = {"library": BUILDER, "upload": UPLOADS, "product": PRODUCTS}


@dataclass
class Harness:
    """What the machine drives: ``doors`` (one per worker; writes go through any of them),
    ``editor``/``admin`` headers, ``cli(args) -> exit code`` on the same database, ``db`` (a
    pymongo database, for stock GridFS), ``settle()`` (waits until every worker has applied
    the others' changes: the documented window of an earlier URL), ``restart(i)`` (worker
    ``i`` started again: a new cache; returns its new door), ``reset()`` (the store emptied,
    the users kept: each sequence starts from nothing)."""

    doors: list[Any]
    editor: dict[str, str]
    admin: dict[str, str]
    cli: Callable[[list[str]], int]
    db: Any
    settle: Callable[[], None]
    restart: Callable[[int], Any]
    reset: Callable[[], None]
    supplier: Any = None  # tests/support/imageserver.py's ImageServer, which the apps may fetch from


@dataclass
class Img:
    """An image the model holds: where it is, what it is now, what it was."""

    kind: str
    id: str
    sha: str
    url: str
    thumb: str
    version: str
    skus: set[str] = field(default_factory=set)  # a product photo: the products using it
    named: str | None = None
    source: int | None = None  # which picture() its current bytes are
    trashed_from: str | None = None  # a product photo in the trash: the product it goes back to
    first: str = ""  # the first version's id as the versions list names it (its URLs have none)
    history: dict[str, str] = field(default_factory=dict)  # earlier version -> its original's SHA-256
    sources: dict[str, int | None] = field(default_factory=dict)  # earlier version -> its picture()
    earlier: dict[str, list[str]] = field(default_factory=dict)  # earlier version -> its URLs

    @property
    def base(self) -> str:
        if self.kind == "library":
            return f"/api/builder/media/{self.id}"
        if self.kind == "upload":
            return f"/api/uploads/{self.id}"
        return f"/api/shop/products/{self.sku}/images/{self.id}"

    @property
    def sku(self) -> str | None:
        return min(self.skus) if self.skus else None

    def took(self, answer: dict[str, Any]) -> None:
        """The image's answer after a change in place: its new version (the old one kept). A
        product photo's change answers the product: the photo is found in it."""
        if "images" in answer:
            answer = next(shown for shown in answer["images"] if shown["id"] == self.id)
        version = answer["version"]
        if version != self.version:
            listed = self.version or self.first
            self.history[listed] = self.sha
            self.sources[listed] = self.source
            self.earlier[listed] = [self.url, self.thumb]
        self.history.pop(version or self.first, None)
        self.sources.pop(version or self.first, None)
        self.earlier.pop(version or self.first, None)
        self.sha, self.url, self.thumb, self.version = (answer["sha256"], answer["url"],
                                                        answer["variants"]["thumb"], version)
        self.named = answer.get("named_url")


def picture(n: int) -> bytes:
    """The ``n``-th test picture: small (cheap variants), distinct bytes for each ``n``."""
    return _PICTURES.setdefault(n, _draw(n))


_PICTURES: dict[int, bytes] = {}


def _draw(n: int) -> bytes:
    image = PILImage.new("RGB", (120, 90), ((n * 67) % 256, (n * 131) % 256, (n * 29 + 80) % 256))
    for x in range(0, 120, 12):  # a pattern, so the variants' crops differ
        image.paste(((n * 13 + x) % 256, x * 2 % 256, 255 - n * 7 % 256), (x, (n * 7) % 60, x + 6, 90))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _image_of(kind: str, answer: dict[str, Any], sku: str | None = None) -> Img:
    return Img(kind, answer["id"], answer["sha256"], answer["url"], answer["variants"]["thumb"],
               answer["version"], skus={sku} if sku else set(), named=answer.get("named_url"))


PICTURES = st.integers(min_value=0, max_value=7)
PICK = st.integers(min_value=0, max_value=10_000)


def machine(harness: Harness) -> type[RuleBasedStateMachine]:
    """A state machine class over ``harness`` (hypothesis makes an instance per sequence)."""

    class StoreMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.h = harness
            self.live: dict[str, Img] = {}
            self.trashed: dict[str, Img] = {}
            self.gone: list[str] = []  # URLs of purged images: 404 for ever
            self.products: dict[str, list[str]] = {}
            self.pages: dict[str, list[str]] = {}
            self.serial = 0
            self.dirty = False  # something changed since the workers last settled
            COVERAGE["sequences"] += 1
            self.h.reset()  # every sequence starts from an empty store

        # --- helpers -------------------------------------------------------------------
        def door(self, pick: int) -> Any:
            return self.h.doors[pick % len(self.h.doors)]

        def call(self, pick: int, method: str, path: str, expect: tuple[int, ...], **kwargs: Any) -> Answer:
            headers = kwargs.pop("headers", self.h.admin)
            answer = self.door(pick).call(method, path, headers=headers, **kwargs)
            assert answer.status in expect, (method, path, answer.status, answer.body[:500])
            return answer

        def upload(self, pick: int, path: str, n: int, headers: dict[str, str], field: str = "file",
                   **fields: str) -> Answer:
            body, content_type = multipart(fields, field, f"p{n}.jpg", picture(n))
            return self.call(pick, "POST", path, (200, 201), headers=headers, body=body,
                             content_type=content_type)

        def chosen(self, pick: int, kinds: tuple[str, ...] = KINDS) -> Img | None:
            found = [image for _, image in sorted(self.live.items()) if image.kind in kinds]
            return found[pick % len(found)] if found else None

        def stored(self, kind: str, answer: dict[str, Any], sku: str | None = None,
                   source: int | None = None) -> None:
            """A new upload's answer: a new image, or one the store already had (200)."""
            known = self.live.get(answer["id"]) or self.trashed.pop(answer["id"], None)
            if known is None:
                image = self.live[answer["id"]] = _image_of(kind, answer, sku)
                image.source = source
                if kind != "upload":
                    got = self.h.doors[0].call("GET", f"{image.base}/versions", headers=self.h.admin)
                    assert got.status == 200, ("versions_kept", image.base, got.status)
                    image.first = next(v["id"] for v in got.json()["items"] if v["current"])
            else:
                assert known.sha == answer["sha256"], ("nothing_lost", known, answer)
                known.skus |= {sku} if sku else set()  # a product photo shared, or revived onto another
                self.live[known.id] = known
            self.dirty = True

        # --- uploads -------------------------------------------------------------------
        @rule(n=PICTURES, pick=PICK)
        def upload_to_library(self, n: int, pick: int) -> None:
            answer = self.upload(pick, "/api/builder/media", n, self.h.editor)
            self.stored("library", answer.json(), source=n)
            COVERAGE["rule:upload_to_library"] += 1

        @rule(n=PICTURES, pick=PICK)
        def upload_public(self, n: int, pick: int) -> None:
            answer = self.upload(pick, "/api/uploads", n, self.h.editor, visibility="public")
            self.stored("upload", answer.json(), source=n)
            COVERAGE["rule:upload_public"] += 1

        @rule(n=PICTURES, pick=PICK)
        def upload_private(self, n: int, pick: int) -> None:
            """The same owner's other scope (dedupe is per owner and visibility): the same
            picture as a public upload is an image of its own on that upload's file."""
            answer = self.upload(pick, "/api/uploads", n, self.h.editor, visibility="private")
            self.stored("upload", answer.json(), source=n)
            COVERAGE["rule:upload_private"] += 1

        @rule(n=PICTURES, pick=PICK)
        def create_product(self, n: int, pick: int) -> None:
            temp = self.upload(pick, "/api/shop/temp-images", n, self.h.admin, field="images").json()
            self.serial += 1
            sku = f"M-{self.serial}"
            product = self.call(pick, "POST", "/api/shop/products", (201,), json={
                "sku": sku, "name": sku, "price": 100, "temp_image_ids": [temp["images"][0]["id"]]}).json()
            self.products[sku] = [image["id"] for image in product["images"]]
            for image in product["images"]:
                self.stored("product", image, sku, source=n)
            COVERAGE["rule:create_product"] += 1

        @precondition(lambda self: self.products)
        @rule(pick=PICK)
        def delete_product(self, pick: int) -> None:
            sku = sorted(self.products)[pick % len(self.products)]
            self.call(pick, "DELETE", f"/api/shop/products/{sku}", (204,))
            for image_id in self.products.pop(sku):
                image = self.live[image_id]
                image.skus.discard(sku)
                if not image.skus:  # its file goes unless another product uses it
                    image.trashed_from = sku
                    self.trashed[image_id] = self.live.pop(image_id)
            self.dirty = True
            COVERAGE["rule:delete_product"] += 1

        @rule(n=PICTURES, pick=PICK, cut=st.integers(min_value=1, max_value=3))
        def tus_upload_interrupted(self, n: int, pick: int, cut: int) -> None:
            """A resumable upload cut off after ``cut`` parts of four, resumed from its offset
            (HEAD) through another worker, as a client does after a drop."""
            from tests.support.tus import metadata

            data = picture(n)
            head = {**self.h.editor, "Tus-Resumable": "1.0.0"}
            created = self.call(pick, "POST", "/api/tus", (201,), headers={
                **head, "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata(filename=f"t{n}.jpg", target="uploads", visibility="public")})
            path = "/api/tus/" + created.headers["location"].rsplit("/", 1)[-1]
            part = len(data) * cut // 4
            self.call(pick, "PATCH", path, (204,), headers={**head, "Upload-Offset": "0"}, body=data[:part],
                      content_type="application/offset+octet-stream")
            offset = int(self.call(pick + 1, "HEAD", path, (200,), headers=head).headers["upload-offset"])
            assert offset == part, ("nothing_lost", offset, part)
            self.call(pick + 1, "PATCH", path, (204,), headers={**head, "Upload-Offset": str(offset)},
                      body=data[offset:], content_type="application/offset+octet-stream")
            done = self.call(pick, "GET", path, (200,), headers=head).json()
            self.stored("upload", done["image"], source=n)
            COVERAGE["rule:tus_upload_interrupted"] += 1

        def library_image(self, pick: int, image_id: str, source: int) -> None:
            """An image a write put into the library (a zip, a link, an import): its object."""
            got = self.call(pick, "GET", f"/api/builder/media/{image_id}", (200,), headers=self.h.editor)
            self.stored("library", got.json(), source=source)

        @rule(n=PICTURES, pick=PICK)
        def upload_by_link(self, n: int, pick: int) -> None:
            """A one-time upload link's holder (no account) sends a file into the library."""
            link = self.call(pick, "POST", "/api/upload-links", (201,), headers=self.h.editor,
                             json={"target": {"kind": "builder"}}).json()
            body, content_type = multipart({}, "file", f"l{n}.jpg", picture(n))
            answer = self.call(pick + 1, "POST", "/api/upload-links/files", (200, 201),
                               headers={"Authorization": f"UploadLink {link['secret']}"}, body=body,
                               content_type=content_type).json()
            image = answer.get("image", answer)  # the holder's cut of the image object
            self.library_image(pick, image["id"], n)
            COVERAGE["rule:upload_by_link"] += 1

        @rule(ns=st.lists(PICTURES, min_size=1, max_size=3, unique=True), pick=PICK)
        def import_zip(self, ns: list[int], pick: int) -> None:
            import zipfile

            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as archive:
                for n in ns:
                    archive.writestr(f"z/{n}.jpg", picture(n))
            report = self.call(pick, "POST", "/api/builder/import-zip", (200,), headers=self.h.editor,
                               body=out.getvalue(), content_type="application/zip").json()
            for n, entry in zip(ns, report["entries"], strict=True):
                assert entry["outcome"] in ("imported", "already_there"), entry
                self.library_image(pick, entry["id"], n)
            COVERAGE["rule:import_zip"] += 1

        @precondition(lambda self: self.h.supplier is not None)
        @rule(n=PICTURES, pick=PICK)
        def import_url(self, n: int, pick: int) -> None:
            """A URL import from a supplier on loopback."""
            self.h.supplier.serve(f"/p/{n}.jpg", body=picture(n), headers={"Content-Type": "image/jpeg"})
            answer = self.call(pick, "POST", "/api/builder/media/import-url", (200, 201),
                               headers=self.h.editor, json={"url": self.h.supplier.url(f"/p/{n}.jpg")}).json()
            self.stored("library", answer, source=n)
            COVERAGE["rule:import_url"] += 1

        @precondition(lambda self: any(i.kind == "library" for i in self.live.values()))
        @rule(pick=PICK, folder=st.sampled_from(["/a", "/b/c"]), tag=st.sampled_from(["red", "new"]))
        def label(self, pick: int, folder: str, tag: str) -> None:
            """Alt text, a move and a tag (PATCH): labels, not a version."""
            image = self.chosen(pick, ("library",))
            assert image is not None
            answer = self.call(pick, "PATCH", image.base, (200,), headers=self.h.editor,
                               json={"alt": f"alt {tag}", "folder": folder, "tags": [tag]}).json()
            assert answer["version"] == image.version and answer["sha256"] == image.sha, answer
            shown = self.call(pick + 1, "GET", image.base, (200,), headers=self.h.editor).json()
            assert (shown["alt"], shown["folder"], shown["tags"]) == (f"alt {tag}", folder, [tag]), shown
            COVERAGE["rule:label"] += 1

        @precondition(lambda self: sum(1 for i in self.live.values() if i.kind == "library") >= 2)
        @rule(pick=PICK, other=PICK)
        def merge(self, pick: int, other: int) -> None:
            """Merge one library image into another: pages re-pointed, the other to the trash
            (restoring it from the trash undoes the merge: restore_from_trash)."""
            library = [i for _, i in sorted(self.live.items()) if i.kind == "library"]
            keep = library[pick % len(library)]
            gone = library[(pick + 1 + other % (len(library) - 1)) % len(library)]
            self.call(pick, "POST", "/api/builder/media/merge", (200,), headers=self.h.editor,
                      json={"keep": keep.id, "others": [gone.id]})
            self.trashed[gone.id] = self.live.pop(gone.id)
            self.refresh_pages()
            assert all(gone.id not in ids for ids in self.pages.values()), ("nothing_lost", self.pages)
            self.dirty = True
            COVERAGE["rule:merge"] += 1

        @precondition(lambda self: any(len(ids) >= 2 for ids in self.products.values()))
        @rule(pick=PICK)
        def reorder_product(self, pick: int) -> None:
            skus = [sku for sku, ids in sorted(self.products.items()) if len(ids) >= 2]
            sku = skus[pick % len(skus)]
            order = self.products[sku][1:] + self.products[sku][:1]
            answer = self.call(pick, "PUT", f"/api/shop/products/{sku}/images/order", (200,),
                               json={"image_ids": order}).json()
            assert [image["id"] for image in answer["images"]] == order, answer
            self.products[sku] = order
            COVERAGE["rule:reorder_product"] += 1

        @precondition(lambda self: self.products)
        @rule(n=PICTURES, pick=PICK)
        def add_to_product(self, n: int, pick: int) -> None:
            sku = sorted(self.products)[pick % len(self.products)]
            body, content_type = multipart({}, "images", f"a{n}.jpg", picture(n))
            answer = self.call(pick, "POST", f"/api/shop/products/{sku}/images", (201, 200, 409),
                               body=body, content_type=content_type)
            if answer.status == 409:  # the product has it, or is full: nothing changed
                COVERAGE["rule:add_to_product_refused"] += 1
                return
            for added in answer.json()["added"]:
                if added["id"] not in self.products[sku]:
                    self.products[sku].append(added["id"])
                self.stored("product", added, sku, source=n)
            COVERAGE["rule:add_to_product"] += 1

        @rule()
        def rerender(self) -> None:
            assert self.h.cli(["rerender"]) == 0, "nothing_lost: rerender failed"
            self.dirty = True
            COVERAGE["rule:rerender"] += 1

        # --- changes in place ----------------------------------------------------------
        @precondition(lambda self: self.live)
        @rule(n=PICTURES, pick=PICK)
        def replace(self, n: int, pick: int) -> None:
            image = self.chosen(pick)
            assert image is not None
            body, content_type = multipart({}, "file", f"r{n}.jpg", picture(n))
            # Bytes another image of its kind holds are refused (409 duplicate_image, docs/api.md).
            taken = any(other.source == n for other in self.live.values()
                        if other.kind == image.kind and other.id != image.id)
            answer = self.call(pick, "PUT", image.base, (200, 409) if taken else (200,), body=body,
                               content_type=content_type,
                               headers=self.h.editor if image.kind != "product" else self.h.admin)
            if answer.status == 409:
                assert answer.json()["error"]["code"] == "duplicate_image", answer.json()
                COVERAGE["rule:replace_refused"] += 1
                return
            image.took(answer.json())
            image.source = n
            self.dirty = True
            COVERAGE["rule:replace"] += 1

        @precondition(lambda self: any(i.kind != "upload" for i in self.live.values()))
        @rule(pick=PICK, rotate=st.sampled_from([90, 180, 270]))
        def edit(self, pick: int, rotate: int) -> None:
            image = self.chosen(pick, ("library", "product"))
            assert image is not None
            answer = self.call(pick, "PUT", f"{image.base}/edits", (200,), json={"rotate": rotate})
            image.took(answer.json())
            self.read_at_once(image)
            self.dirty = True
            COVERAGE["rule:edit"] += 1

        @precondition(lambda self: any(i.kind != "upload" for i in self.live.values()))
        @rule(pick=PICK)
        def undo_edits(self, pick: int) -> None:
            image = self.chosen(pick, ("library", "product"))
            assert image is not None
            answer = self.call(pick, "DELETE", f"{image.base}/edits", (200,))
            image.took(answer.json())
            self.dirty = True
            COVERAGE["rule:undo_edits"] += 1

        @precondition(lambda self: any(i.kind != "upload" for i in self.live.values()))
        @rule(pick=PICK, x=st.sampled_from([0.0, 0.25, 0.5, 1.0]), y=st.sampled_from([0.0, 0.75]))
        def focal_point(self, pick: int, x: float, y: float) -> None:
            image = self.chosen(pick, ("library", "product"))
            assert image is not None
            answer = self.call(pick, "PUT", f"{image.base}/focal-point", (200,), json={"x": x, "y": y})
            image.took(answer.json())
            self.dirty = True
            COVERAGE["rule:focal_point"] += 1

        @precondition(lambda self: any(i.kind != "upload" for i in self.live.values()))
        @rule(pick=PICK, width=st.sampled_from([0.5, 1.0]))
        def named_crop(self, pick: int, width: float) -> None:
            image = self.chosen(pick, ("library", "product"))
            assert image is not None
            box = {"x": 0, "y": 0, "width": width, "height": 0.5}
            answer = self.call(pick, "PUT", f"{image.base}/crops/hero", (200,), json=box)
            image.took(answer.json())
            # The crop's rendition, at once on every worker (read-your-writes).
            url = image.url.rsplit(".", 1)[0] + "/c_hero,w_320.webp"
            for door in self.h.doors:
                for _ in range(door.reads):
                    got = door.call("GET", url)
                    assert got.status == 200, ("read_your_writes", url, got.status, got.body[:200])
            self.dirty = True
            COVERAGE["rule:named_crop"] += 1

        @precondition(lambda self: any(i.kind != "upload" for i in self.live.values()))
        @rule(pick=PICK, name=st.sampled_from(["red boot", "blue boot", None]))
        def rename(self, pick: int, name: str | None) -> None:
            image = self.chosen(pick, ("library", "product"))
            assert image is not None
            answer = self.call(pick, "PUT", f"{image.base}/name", (200,), json={"name": name}).json()
            image.named = answer.get("named_url")
            assert (image.named is None) == (name is None), answer
            self.read_at_once(image)
            COVERAGE["rule:rename"] += 1

        @precondition(lambda self: any(i.history for i in self.live.values() if i.kind != "upload"))
        @rule(pick=PICK, which=PICK)
        def restore_version(self, pick: int, which: int) -> None:
            restorable = [i for _, i in sorted(self.live.items()) if i.history and i.kind != "upload"]
            image = restorable[pick % len(restorable)]
            version = sorted(image.history)[which % len(image.history)]
            wanted, source = image.history[version], image.sources.get(version)
            # A restore always restores, whoever else holds those bytes now (docs/api.md): an
            # image holding the same picture shares its file with this one.
            answer = self.call(pick, "POST", f"{image.base}/versions/{version}/restore", (200,))
            image.took(answer.json())
            image.source = source  # its bytes are that version's picture again (replace's "taken")
            assert image.sha == wanted, ("versions_kept", version, image.sha, wanted)
            self.dirty = True
            COVERAGE["rule:restore_version"] += 1

        # --- references ---------------------------------------------------------------
        @precondition(lambda self: any(i.kind == "library" for i in self.live.values()))
        @rule(pick=PICK, slug=st.sampled_from(["home", "about"]), count=st.integers(min_value=0, max_value=2))
        def write_page(self, pick: int, slug: str, count: int) -> None:
            library = [i.id for _, i in sorted(self.live.items()) if i.kind == "library"]
            used = [library[(pick + k) % len(library)] for k in range(count)]
            blocks = [{"type": "image", "media_id": media_id} for media_id in used]
            self.call(pick, "PUT", f"/api/builder/pages/{slug}", (200,), headers=self.h.editor,
                      json={"title": slug, "blocks": blocks, "published": True})
            self.pages[slug] = used
            COVERAGE["rule:write_page"] += 1

        # --- delete, trash ------------------------------------------------------------
        @precondition(lambda self: self.live)
        @rule(pick=PICK)
        def delete(self, pick: int) -> None:
            image = self.chosen(pick)
            assert image is not None
            if image.kind == "product":
                assert image.sku is not None
                sku = image.sku
                self.call(pick, "DELETE", image.base, (200,))
                self.products[sku].remove(image.id)
                image.skus.discard(sku)
                if image.skus:  # its file goes unless another product uses it
                    COVERAGE["rule:delete_shared"] += 1
                    return
                image.trashed_from = sku
            elif image.kind == "library" and any(image.id in used for used in self.pages.values()):
                self.call(pick, "DELETE", image.base, (409,), headers=self.h.editor)
                COVERAGE["rule:delete_refused"] += 1
                return
            else:
                self.call(pick, "DELETE", image.base, (204,), headers=self.h.editor)
            self.trashed[image.id] = self.live.pop(image.id)
            self.dirty = True
            COVERAGE["rule:delete"] += 1

        @precondition(lambda self: self.trashed)
        @rule(pick=PICK)
        def restore_from_trash(self, pick: int) -> None:
            image_id = sorted(self.trashed)[pick % len(self.trashed)]
            image = self.trashed[image_id]
            product_gone = image.kind == "product" and image.trashed_from not in self.products
            answer = self.call(pick, "POST", f"/api/trash/{image_id}/restore",
                               (409,) if product_gone else (200,))
            if product_gone:
                COVERAGE["rule:restore_refused"] += 1
                return
            del self.trashed[image_id]
            restored = answer.json()
            if restored["reused"]:
                # Its bytes were stored again meanwhile (an upload link stores a new image
                # beside a trashed one): that image is the answer and the trashed copy is gone
                # (docs/api.md), unless a version's history holds it.
                assert restored["image"]["id"] in self.live, ("nothing_lost", restored["image"]["id"])
                self.gone += [image.url, image.thumb]
                COVERAGE["rule:restore_reused"] += 1
                return
            assert restored["image"]["id"] == image_id, restored
            self.live[image_id] = image
            if image.kind == "product" and image.trashed_from is not None:
                image.skus = {image.trashed_from}
                self.products[image.trashed_from].append(image_id)
            self.refresh_pages()
            self.dirty = True
            COVERAGE["rule:restore_from_trash"] += 1

        @precondition(lambda self: self.trashed)
        @rule(pick=PICK)
        def purge(self, pick: int) -> None:
            image_id = sorted(self.trashed)[pick % len(self.trashed)]
            self.call(pick, "DELETE", f"/api/trash/{image_id}", (204,))
            image = self.trashed.pop(image_id)
            self.gone += [image.url, image.thumb]
            self.dirty = True
            COVERAGE["rule:purge"] += 1

        # --- operations ---------------------------------------------------------------
        @rule()
        def gc_then_fsck(self) -> None:
            assert self.h.cli(["gc", "--grace-seconds", "0"]) == 0, "gc_exact: gc failed"
            assert self.h.cli(["fsck"]) == 0, "fsck_clean: fsck found a fault right after gc"
            self.check_everything("gc_exact")
            self.check_spec()
            COVERAGE["rule:gc_then_fsck"] += 1

        @rule()
        def fsck(self) -> None:
            assert self.h.cli(["fsck"]) == 0, "fsck_clean: fsck found a fault at a quiet point"
            COVERAGE["rule:fsck"] += 1

        @rule(pick=PICK)
        def restart_worker(self, pick: int) -> None:
            index = pick % len(self.h.doors)
            self.h.doors[index] = self.h.restart(index)
            COVERAGE["rule:restart_worker"] += 1

        # --- invariants ---------------------------------------------------------------
        def read_at_once(self, image: Img) -> None:
            """read_your_writes: the URLs an answer just gave serve at once on every worker."""
            urls = [image.url, image.thumb] + ([image.named] if image.named else [])
            for door in self.h.doors:
                for _ in range(door.reads):
                    for url in urls:
                        got = door.call("GET", url)
                        assert got.status == 200, ("read_your_writes", url, got.status,
                                                   got.headers.get("location"))
            COVERAGE["invariant:read_your_writes"] += 1

        @invariant()
        def every_image_serves(self) -> None:
            self.check_everything("nothing_lost")

        def check_everything(self, why: str) -> None:
            for image in self.live.values():
                self.read_at_once(image)
                got = self.h.doors[0].call("GET", image.base if image.kind != "product" else
                                           f"/api/shop/products/{image.sku}", headers=self.h.admin)
                assert got.status == 200, (why, image.base, got.status)
                shown = got.json() if image.kind != "product" else \
                    next(i for i in got.json()["images"] if i["id"] == image.id)
                served = self.h.doors[0].call("GET", image.url)
                assert sha256(served.body).hexdigest() == image.sha, (why, image.url)
                assert shown["version"] == image.version, (why, image.base, shown["version"], image.version)
                stock = current_bytes(self.h.db, BUCKET_OF[image.kind], ObjectId(image.id))
                assert sha256(stock).hexdigest() == image.sha, ("stock_gridfs", image.kind, image.id)
            COVERAGE[f"invariant:{why}"] += 1
            COVERAGE["invariant:stock_gridfs"] += 1
            self.check_counts()
            self.check_references()
            self.check_versions()
            self.check_earlier_urls()

        def refresh_pages(self) -> None:
            """The pages as the store has them now (a merge and its undo re-point blocks; which
            ones is the builder's rule, and check_references holds them to served images)."""
            for slug in self.pages:
                got = self.h.doors[0].call("GET", f"/api/builder/pages/{slug}", headers=self.h.editor)
                self.pages[slug] = [block["media_id"] for block in got.json()["blocks"]]

        def check_references(self) -> None:
            """nothing_lost: every reference resolves: a page's blocks name served library
            images, a product lists the model's photos in the model's order."""
            for slug in self.pages:
                got = self.h.doors[0].call("GET", f"/api/builder/pages/{slug}", headers=self.h.editor)
                assert got.status == 200, ("nothing_lost", slug, got.status)
                for block in got.json()["blocks"]:
                    media_id = block.get("media_id") or (block.get("media") or {}).get("id")
                    assert media_id in self.live, ("nothing_lost", slug, block)
            for sku, ids in self.products.items():
                got = self.h.doors[0].call("GET", f"/api/shop/products/{sku}")
                assert got.status == 200, ("nothing_lost", sku, got.status)
                assert [image["id"] for image in got.json()["images"]] == ids, ("nothing_lost", sku)
            COVERAGE["invariant:references"] += 1

        def check_counts(self) -> None:
            """counts: each bucket's counters (what storage-status shows) and the product
            counters (products-status) equal a recount, and
            its originals are the model's images of that kind: nothing stored that nobody
            acknowledged, nothing acknowledged missing. Waited for a little: an upload's
            variants may still be rendering after its answer on a real server."""
            def drift() -> dict[str, Any]:
                found = {}
                for kind, bucket in BUCKET_OF.items():
                    counted = count_bucket(self.h.db, bucket, chunk_index=True)
                    held = counters_of(self.h.db, bucket)
                    off = {name: (counted[name], held[name]) for name in FIELDS
                           if counted[name] != held[name]}
                    wanted = sum(1 for image in self.live.values() if image.kind == kind)
                    if counted["originals"] != wanted:
                        off["model"] = (counted["originals"], wanted)
                    if off:
                        found[bucket] = off
                return found

            assert wait_until(lambda: not drift(), 10.0), ("counts", drift())
            # storage-status, as ops read it, says those figures (its quota's "used" is read from
            # the database's own size where it has one; GridFS file lengths otherwise).
            got = self.h.doors[0].call("GET", "/api/shop/debug/storage-status", headers=self.h.admin)
            assert got.status == 200, ("counts", got.status)
            for bucket, shown in got.json()["buckets"].items():
                counted = count_bucket(self.h.db, bucket, chunk_index=True)
                assert (shown["files"], shown["bytes"]) == (counted["files"], counted["bytes"]), \
                    ("counts", "storage-status", bucket, shown, counted)
            # products-status: the product counters kept with every write equal a recount of
            # the products' documents, and the model's products and photos.
            held = {name: product_counters(self.h.db)[name] for name in PRODUCT_FIELDS}
            counted = dict.fromkeys(PRODUCT_FIELDS, 0)
            for product in self.h.db.shop_products.find({}):
                for name, value in product_figures(product).items():
                    counted[name] += value
            assert held == counted, ("counts", "products", held, counted)
            assert counted["products"] == len(self.products), ("counts", counted, self.products)
            assert counted["stored"] == sum(len(ids) for ids in self.products.values()), ("counts", counted)
            COVERAGE["invariant:counts"] += 1

        def check_versions(self) -> None:
            """versions_kept: every earlier version the model holds is listed."""
            for image in self.live.values():
                if image.kind == "upload" or not image.history:
                    continue
                got = self.h.doors[0].call("GET", f"{image.base}/versions", headers=self.h.admin)
                assert got.status == 200, ("versions_kept", image.base, got.status)
                listed = {entry["id"] for entry in got.json()["items"]}
                missing = set(image.history) - listed
                assert not missing, ("versions_kept", image.id, sorted(missing), sorted(listed))
            COVERAGE["invariant:versions_kept"] += 1

        def check_earlier_urls(self) -> None:
            """earlier_urls: once the workers settled, an earlier version's URL redirects
            (308) or is gone (404), a deleted image's is 404; never the old bytes."""
            if self.dirty:
                self.h.settle()
                self.dirty = False
            for image in self.live.values():
                for version, urls in image.earlier.items():
                    for url in urls:
                        for door in self.h.doors:
                            got = door.call("GET", url)
                            assert got.status in (308, 404), ("earlier_urls", url, version, got.status)
            for url in self.gone + [u for i in self.trashed.values() for u in (i.url, i.thumb)]:
                for door in self.h.doors:
                    got = door.call("GET", url)
                    assert got.status == 404, ("earlier_urls", "deleted", url, got.status)
            COVERAGE["invariant:earlier_urls"] += 1

        def check_spec(self) -> None:
            """gridfs_spec: every files document in the database is a GridFS file whole by the
            specification (tests/support/gridfs_spec.py), with no exception: an image's record
            is in ``<bucket>.images``, never in ``.files`` (issue 75)."""
            invalid = invalid_files(self.h.db)
            assert invalid == [], ("gridfs_spec", invalid)
            COVERAGE["invariant:gridfs_spec"] += 1
            # held: every record's bytes file exists, and every file knows each record that
            # points at it (bytes shared by reference, storage.hold), and no one else.
            problems = unheld(self.h.db)
            assert problems == [], ("held", problems)
            COVERAGE["invariant:held"] += 1
            # How often the check met a file two records share (a restore of bytes another
            # image held): the run's report says whether the sharing was exercised at all.
            for name in self.h.db.list_collection_names():
                if name.endswith(".files"):
                    COVERAGE["state:shared_files"] += self.h.db[name].count_documents(
                        {"metadata.holders": {"$exists": True}})

        def teardown(self) -> None:
            if self.live or self.trashed:
                assert self.h.cli(["fsck"]) == 0, "fsck_clean: at the end of a sequence"
                COVERAGE["invariant:fsck_clean"] += 1
                self.check_spec()

    return StoreMachine


def steps_taken() -> int:
    return sum(count for name, count in COVERAGE.items() if name.startswith("rule:"))


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
