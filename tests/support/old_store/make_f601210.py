"""Writes tests/fixtures/stores/f601210.jsonl.gz and f601210.manifest.json: a store REALLY
written by commit f601210's code (the layout before issue 75's, image records as the
``role: "original"`` heads of ``<bucket>.files``), for tests/api/test_migrate_f601210.py.

Run with the f601210 checkout first on ``sys.path`` (this script puts its working directory
there), and its fixtures made (its ``.fixtures``, or ../shared/fixtures, are not read: every
image is drawn here, small):

    git -C /work/main worktree add --detach /work/wt/old601 f601210
    ln -s /work/main/.venv /work/wt/old601/.venv
    cd /work/wt/old601 && .venv/bin/python \\
        /work/wt/oldstore75/tests/support/old_store/make_f601210.py \\
        --out /work/wt/oldstore75/tests/fixtures/stores

It builds f601210's app (its tests/helpers.py ``make_app``) on mongomock, as its tests do,
and writes through its HTTP API (the Flask test client, an admin logged in by session cookie):
products with photos, library (builder) media, general uploads, images replaced in place
(one twice), edited, with edits undone, with a new focal point, a version restored, images
deleted to the trash (a library image, an upload, a product photo taken off its product), and
renditions on request asked for (``media_renditions``). Retention is 36,500 days
(``AVENUE_TRASH_DAYS``) so the versions and the trash outlive the fixture.

For every live image it records the SHA-256 of the bytes its main URL (``url`` of its API
object) serves, and for every version the versions API lists, its id and the SHA-256 of what
the image served while that version was current. Then it checks those against f601210 itself:
the dump loaded into a fresh mongomock database, a new app serves every image the same and
restores every version to its recorded bytes (the images deleted to the trash restored first);
and on another fresh copy it restores every item of the trash in the order the trash lists
them, recording what each then serves. The dump is every collection of the database,
one ``{"collection": name, "doc": ...}`` line of MongoDB canonical Extended JSON each
(``bson.json_util``), gzipped; the manifest lists the images, their kinds, their SHA-256s and
versions, the trash's items and the counts per bucket.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

COMMIT = "f601210dd0714d9c239cf1c13c187d78df786792"
DB_NAME = "avenue_f601210"
URI = "mongodb://mongomock.invalid:27017"
SETTINGS = {"AVENUE_TRASH_DAYS": 36500}
MEDIA, UPLOADS, SHOP = "/api/builder/media", "/api/uploads", "/api/shop/products"


def patch_mongomock() -> Any:
    """What f601210's tests/conftest.py patches into mongomock before building an app."""
    import mongomock

    mongomock.MongoClient.options = types.SimpleNamespace(timeout=None)
    add_update = mongomock.collection.BulkOperationBuilder.add_update
    mongomock.collection.BulkOperationBuilder.add_update = (
        lambda self, *args, sort=None, **kwargs: add_update(self, *args, **kwargs))
    return mongomock


def picture(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (96, 72)) -> bytes:
    """A small distinct picture (a gradient and a few blocks, drawn from ``seed``): 1-3 KB."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    width, height = size
    start, end = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(2)]
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for x in range(width):
        shade = tuple(s + (e - s) * x // width for s, e in zip(start, end, strict=True))
        draw.line([(x, 0), (x, height)], fill=shade)
    for _ in range(4):
        x, y = rng.randrange(width - 8), rng.randrange(height - 8)
        draw.rectangle([x, y, x + rng.randrange(6, 30), y + rng.randrange(6, 24)],
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()


class Store:
    """f601210's app, an admin's session on it, and what each image served at each version."""

    def __init__(self, app: Any) -> None:
        from tests.helpers import Auth

        self.app = app
        self.client, self.headers = Auth(app).login("admin")
        self.images: dict[str, dict[str, Any]] = {}  # id -> {kind, sku, how, versions: {v: sha}}
        self.renditions: dict[str, str] = {}  # URL of a rendition on request -> its SHA-256
        self.seed = 0

    def file(self, fmt: str = "JPEG", size: tuple[int, int] = (96, 72)) -> tuple[io.BytesIO, str]:
        self.seed += 1
        return io.BytesIO(picture(self.seed, fmt, size)), f"picture-{self.seed}.{fmt.lower()}"

    def ok(self, answer: Any, *codes: int) -> Any:
        assert answer.status_code in (codes or (200,)), (answer.status_code, answer.get_data()[:500])
        return answer.get_json()

    def base(self, image_id: str) -> str:
        info = self.images[image_id]
        return {"builder": f"{MEDIA}/{image_id}", "uploads": f"{UPLOADS}/{image_id}",
                "products": f"{SHOP}/{info.get('sku')}/images/{image_id}"}[info["kind"]]

    def media(self, image_id: str) -> dict[str, Any]:
        """The image's API object, as its kind's API gives it now."""
        info = self.images[image_id]
        if info["kind"] == "products":
            product = self.ok(self.client.get(f"{SHOP}/{info['sku']}", headers=self.headers))
            return next(i for i in product["images"] if i["id"] == image_id)
        return self.ok(self.client.get(self.base(image_id), headers=self.headers))

    def served(self, image_id: str) -> str:
        answer = self.client.get(self.media(image_id)["url"], headers=self.headers)
        assert answer.status_code == 200, (image_id, answer.status_code)
        return hashlib.sha256(answer.data).hexdigest()

    def versions(self, image_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.ok(self.client.get(f"{self.base(image_id)}/versions",
                                                              headers=self.headers))["items"]
        return items

    def note(self, image_id: str) -> None:
        """Record what the image serves at its current version."""
        current = next(v for v in self.versions(image_id) if v["current"])
        self.images[image_id]["versions"][current["id"]] = self.served(image_id)

    def add(self, image_id: str, kind: str, how: str, sku: str | None = None) -> str:
        self.images[image_id] = {"kind": kind, "how": [how], "versions": {}, **({"sku": sku} if sku else {})}
        self.note(image_id)
        return image_id

    def upload(self, kind: str, how: str, fmt: str = "JPEG", **fields: Any) -> str:
        to = MEDIA if kind == "builder" else UPLOADS
        made = self.ok(self.client.post(to, data={"file": self.file(fmt), **fields}, headers=self.headers,
                                        content_type="multipart/form-data"), 200, 201)
        return self.add(made["id"], kind, how)

    def product(self, sku: str, formats: tuple[str, ...]) -> list[str]:
        self.ok(self.client.post(SHOP, json={"sku": sku, "name": f"Product {sku}", "price": 10},
                                 headers=self.headers), 201)
        added = self.ok(self.client.post(f"{SHOP}/{sku}/images", headers=self.headers,
                                         data={"images": [self.file(fmt) for fmt in formats]},
                                         content_type="multipart/form-data"), 201)
        return [self.add(image["id"], "products", "upload", sku) for image in added["product"]["images"]]

    def change(self, image_id: str, how: str, method: str, path: str = "", **kwargs: Any) -> None:
        self.ok(self.client.open(self.base(image_id) + path, method=method, headers=self.headers, **kwargs))
        self.images[image_id]["how"].append(how)
        self.note(image_id)

    def replace(self, image_id: str, fmt: str = "JPEG") -> None:
        self.change(image_id, "replace", "PUT", data={"file": self.file(fmt)},
                    content_type="multipart/form-data")

    def restore(self, image_id: str, version: str) -> None:
        self.change(image_id, "restore", "POST", f"/versions/{version}/restore")

    def delete(self, image_id: str) -> None:
        """Delete the image to the trash (a product photo: taken off its product)."""
        self.images[image_id]["trashed"] = True
        self.ok(self.client.delete(self.base(image_id), headers=self.headers), 200, 204)

    def rendition(self, image_id: str, options: str) -> None:
        url = self.media(image_id)["url"].rsplit(".", 1)[0] + f"/{options}"
        answer = self.client.get(url, headers=self.headers)
        assert answer.status_code == 200, (url, answer.status_code, answer.get_data()[:300])
        self.renditions[url] = hashlib.sha256(answer.data).hexdigest()

    def urls(self, image_id: str) -> dict[str, str]:
        """The SHA-256 of what each URL of the image's API object serves now (its main URL,
        every variant's), by URL; none for a private image (its URLs are signed for minutes)."""
        media = self.media(image_id)
        if media.get("visibility") == "private":
            return {}
        found = [media["url"], *(url for formats in media["variant_urls"].values()
                                 for url in formats.values())]
        shas = {}
        for url in found:
            answer = self.client.get(url)
            assert answer.status_code == 200, (url, answer.status_code)
            shas[url] = hashlib.sha256(answer.data).hexdigest()
        return shas


def write_store(store: Store) -> None:
    """The store the module doc lists, through f601210's API."""
    plain, twice, photo = store.product("OLD-1", ("JPEG", "PNG", "JPEG"))
    store.replace(twice)
    store.replace(twice, "PNG")
    store.change(photo, "focal_point", "PUT", "/focal-point", json={"x": 0.25, "y": 0.75})
    off, edited = store.product("OLD-2", ("JPEG", "JPEG"))
    store.change(edited, "edits", "PUT", "/edits", json={"rotate": 90})
    store.delete(off)  # a product photo taken off its product: to the trash
    store.upload("builder", "upload")
    replaced = store.upload("builder", "upload", "PNG")
    store.replace(replaced)
    store.replace(replaced)
    edited = store.upload("builder", "upload")
    store.change(edited, "edits", "PUT", "/edits", json={"rotate": 90})
    store.change(edited, "crop", "PUT", "/crops/square", json={"x": 0, "y": 0, "width": 0.5, "height": 0.5})
    undone = store.upload("builder", "upload", "PNG")
    store.change(undone, "edits", "PUT", "/edits", json={"flip_horizontal": True})
    store.change(undone, "edits_undone", "DELETE", "/edits")
    focal = store.upload("builder", "upload")
    store.change(focal, "focal_point", "PUT", "/focal-point", json={"x": 0.2, "y": 0.7})
    store.change(focal, "name", "PUT", "/name", json={"name": "old-store-focal"})
    restored = store.upload("builder", "upload")
    first = next(iter(store.images[restored]["versions"]))
    store.replace(restored)
    store.restore(restored, first)  # back to its first bytes, the replacement's kept as a version
    both = store.upload("builder", "upload")
    store.replace(both)
    store.change(both, "edits", "PUT", "/edits", json={"rotate": 180})
    gone = store.upload("builder", "upload")
    store.replace(gone)  # deleted with an earlier version kept in the trash
    store.delete(gone)
    store.delete(store.upload("builder", "upload", "PNG"))
    store.upload("uploads", "upload", visibility="public")
    store.upload("uploads", "upload", "PNG", visibility="private")
    changed = store.upload("uploads", "upload", visibility="public")
    store.replace(changed)
    store.change(changed, "edits", "PUT", "/edits", json={"flip_vertical": True})
    store.delete(store.upload("uploads", "upload", visibility="public"))
    store.rendition(plain, "w_160.webp")
    store.rendition(twice, "w_160.jpg")
    store.rendition(replaced, "w_320.webp")


def documents(db: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every document of every collection of ``db``, by collection, in ``_id`` order."""
    for name in sorted(db.list_collection_names()):
        for doc in sorted(db[name].find(), key=lambda doc: str(doc["_id"])):
            yield name, doc


def dump(db: Any, path: Path) -> None:
    from bson import json_util

    with gzip.GzipFile(path, "wb", mtime=0) as raw, io.TextIOWrapper(raw, "utf-8") as out:
        for name, doc in documents(db):
            out.write(json_util.dumps({"collection": name, "doc": doc},
                                      json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n")


def load(db: Any, path: Path) -> None:
    from bson import json_util

    by_collection: dict[str, list[dict[str, Any]]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            entry = json_util.loads(line, json_options=json_util.CANONICAL_JSON_OPTIONS)
            by_collection.setdefault(entry["collection"], []).append(entry["doc"])
    for name, docs in by_collection.items():
        db[name].insert_many(docs)


def manifest(store: Store, db: Any) -> dict[str, Any]:
    from avenue.media.buckets import RENDITIONS, STORED

    trash = store.ok(store.client.get("/api/trash", headers=store.headers, query_string={"limit": 100}))
    buckets = {bucket: {part: db[f"{bucket}.{part}"].count_documents({}) for part in ("files", "chunks")}
               for bucket in (*STORED, RENDITIONS)}
    for bucket in STORED:
        buckets[bucket]["heads"] = db[f"{bucket}.files"].count_documents({"metadata.role": "original"})
        buckets[bucket]["chunkless_heads"] = db[f"{bucket}.files"].count_documents(
            {"metadata.role": "original", "metadata.content.id": {"$exists": True}})
    images = []
    for image_id, info in store.images.items():
        versions = info["versions"]
        if info.get("trashed"):  # what it served last, and at every version it had
            images.append({"id": image_id, "kind": info["kind"], "how": info["how"], "trashed": True,
                           **({"sku": info["sku"]} if "sku" in info else {}),
                           "sha256": list(versions.values())[-1],
                           "versions": [{"id": v, "sha256": sha} for v, sha in versions.items()]})
            continue
        listed = store.versions(image_id)
        current = next(v for v in listed if v["current"])
        images.append({"id": image_id, "kind": info["kind"], "how": info["how"],
                       **({"sku": info["sku"]} if "sku" in info else {}),
                       "sha256": versions[current["id"]], "version": current["id"],
                       "urls": store.urls(image_id),
                       "versions": [{"id": v["id"], "current": v["current"], "changed": v["changed"],
                                     "sha256": versions[v["id"]]} for v in listed]})
    return {"commit": COMMIT, "database": DB_NAME, "settings": SETTINGS, "images": images,
            "trash": [{"id": item["id"], "from": item["from"]} for item in trash["items"]],
            "renditions": store.renditions,
            "buckets": buckets}


def check_on_f601210(path: Path, written: dict[str, Any]) -> None:
    """The dump loaded into a fresh database: f601210's own app serves every image as
    recorded, and restores every version to its recorded bytes."""
    from tests.helpers import make_app

    mongomock = sys.modules["mongomock"]
    fresh = mongomock.MongoClient()
    load(fresh[DB_NAME], path)
    app = make_app(((lambda *args, **kwargs: fresh), URI), DB_NAME, **SETTINGS)
    store = Store(app)
    for image in written["images"]:
        store.images[image["id"]] = {"kind": image["kind"], "versions": {},
                                     **({"sku": image["sku"]} if "sku" in image else {})}
    for image in written["images"]:
        if image.get("trashed"):  # back from the trash, then its versions as for the others
            store.ok(store.client.post(f"/api/trash/{image['id']}/restore", headers=store.headers))
        assert store.served(image["id"]) == image["sha256"], image
        for version in image["versions"]:
            store.ok(store.client.post(f"{store.base(image['id'])}/versions/{version['id']}/restore",
                                       headers=store.headers))
            assert store.served(image["id"]) == version["sha256"], (image["id"], version)


def trash_restored(path: Path, written: dict[str, Any]) -> None:
    """Every item of the trash restored by f601210, in the order the trash lists them, on a
    fresh copy of the dump: the SHA-256 of what each then serves, in its manifest entry."""
    from tests.helpers import make_app

    fresh = sys.modules["mongomock"].MongoClient()
    load(fresh[DB_NAME], path)
    store = Store(make_app(((lambda *args, **kwargs: fresh), URI), DB_NAME, **SETTINGS))
    for item in written["trash"]:
        answer = store.ok(store.client.post(f"/api/trash/{item['id']}/restore", headers=store.headers))
        got = store.client.get(answer["image"]["url"], headers=store.headers)
        assert got.status_code == 200, (item, got.status_code)
        item["sha256"] = hashlib.sha256(got.data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder for the dump and the manifest")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.getcwd())
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert head == COMMIT, f"run from a checkout of {COMMIT} (this is {head})"
    mongomock = patch_mongomock()
    from tests.helpers import make_app

    client = mongomock.MongoClient()
    app = make_app(((lambda *a, **k: client), URI), DB_NAME, **SETTINGS)
    store = Store(app)
    write_store(store)
    db = client[DB_NAME]
    written = manifest(store, db)
    args.out.mkdir(parents=True, exist_ok=True)
    dumped = args.out / "f601210.jsonl.gz"
    dump(db, dumped)
    check_on_f601210(dumped, written)
    trash_restored(dumped, written)
    (args.out / "f601210.manifest.json").write_text(json.dumps(written, indent=1) + "\n")
    print(f"{dumped}: {dumped.stat().st_size} bytes; {len(written['images'])} images, "
          f"{sum(len(i.get('versions', ())) for i in written['images'])} versions, "
          f"{len(written['trash'])} in the trash")
    print(json.dumps(written["buckets"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
