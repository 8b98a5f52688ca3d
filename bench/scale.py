#!/usr/bin/env python3
"""Scale: status, lists, the status sweep, gc and fsck on a store of a million files documents.

The embedded database (``secantusd-py``, make run's cache size, a fresh folder) is seeded for
``--seed-seconds`` with products and their images, written straight into MongoDB in big
batches, shaped as the media core writes them (a real stored original and its 8 variants are
the templates): per image an original and 8 variant files documents, each with one tiny
chunk; one product per two images. The counters are kept as the app keeps them (one ``$inc``
per batch). Then the Procfile's server (2 workers, status scheduler off) answers:

- each status endpoint ``--calls`` times (p50/p99), and a write then a status call (does the
  call show it?): a product created, an image uploaded;
- the products list at page 1 and, by cursor, in the middle and at the end (p50/p99);
- the status sweep, gc and fsck, each as a subprocess (time; peak RSS from ``wait4``), each
  stopped after ``--command-timeout`` seconds (reported as not finished, with its progress).

    python3 bench/scale.py --quick                      # a smoke run: ~20,000 files documents
    python3 bench/scale.py --out bench/results/scale-2026-11-23.md   # ~10 minutes of seeding

Targets (issue 14): every status call < 300 ms; every list page < 300 ms at any depth; peak
RSS of any command or the sweep < 300 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymongo  # noqa: E402
from avenue.auth import service  # noqa: E402
from avenue.embedded import EmbeddedServer  # noqa: E402
from bson import ObjectId  # noqa: E402
from PIL import Image  # noqa: E402
from tests.support.records import IMAGE, images  # noqa: E402

DB = "avenue_scale"
TARGET_MS = 300
TARGET_RSS_MB = 300
TARGET_PER_100K_S = 360  # gc and fsck: a million files an hour (issue 65)
PRODUCTS = "shop_products"
BUCKET = "product_images_data"
SECRET = "scale-bench-secret-" + "x" * 40


def met(ok: bool) -> str:
    return "met" if ok else "missed"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def small_jpeg(seed: int) -> bytes:
    image = Image.new("RGB", (64, 48), (seed % 256, (seed * 7) % 256, (seed * 13) % 256))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


# --- seeding ---------------------------------------------------------------------------------

# Of every 8 images seeded, 6 are product photos (two per product), 1 a general upload (one
# owner's, public) and 1 builder library media: the three lists that grow with the store.
MIX = ("products", "products", "products", "products", "products", "products", "uploads", "builder")
UPLOADS_BUCKET = "uploads"
BUILDER_BUCKET = "builder_media"
SEED_FOLDERS = ("/home", "/home/hero", "/summer", "/summer/banners", "/blog")  # as the app keeps them


def template(db, bucket: str, **store_kwargs) -> tuple[dict, list[dict], dict]:
    """A real stored image: its record, its 8 variant files documents and the files document
    of its bytes (the shapes to copy)."""
    from avenue.media.store.originals import store

    doc = store(db, bucket, small_jpeg(len(bucket)), filename="template.jpg", **store_kwargs).doc
    listed = doc["metadata"]["variants"]
    ids = [info["id"] for formats in listed.values() for info in formats.values()]
    variants = list(db[f"{bucket}.files"].find({"_id": {"$in": ids}}))
    if len(variants) != 8:
        raise RuntimeError(f"the {bucket} template has {len(variants)} variant files, not 8")
    return doc, variants, db[f"{bucket}.files"].find_one({"_id": doc["_id"]})


def image_docs(shape: tuple[dict, list[dict], dict], n: int, scope: str, payload: bytes,
               when: dt.datetime) -> tuple[dict, list[dict]]:
    """One seeded image: its record and its 9 files documents (8 variants, its bytes)."""
    from avenue.media.store.originals import dedupe_key

    original, variants, own = shape
    by_id = {v["_id"]: v for v in variants}
    fid = ObjectId()
    digest = hashlib.sha256(fid.binary).hexdigest()  # a distinct source per image (the dedupe key)
    stored = hashlib.sha256(payload).hexdigest()  # what every file's one chunk holds (fsck checks it)
    docs: list[dict] = []
    listed: dict[str, dict] = {}
    for name, formats in original["metadata"]["variants"].items():
        for fmt, info in formats.items():
            vid = ObjectId()
            variant = by_id[info["id"]]
            meta = {**variant["metadata"], "key": f"{fid}/{name}.{fmt}", "original_id": fid, "sha256": stored}
            docs.append({**variant, "_id": vid, "length": len(payload), "uploadDate": when, "metadata": meta})
            listed.setdefault(name, {})[fmt] = {**info, "id": vid, "length": len(payload)}
    metadata = {**original["metadata"], "key": dedupe_key(digest, scope), "sha256": stored,
                "source_sha256": digest, "variants": listed, "filename": f"seed-{n}.jpg",
                "name_prefixes": ["seed", f"s{n % 1000}"]}
    if original["metadata"].get("kind") == "builder":
        metadata["folder"] = SEED_FOLDERS[n % len(SEED_FOLDERS)]
        metadata["tags"] = ["seeded", f"t{n % 50}"]
    doc = {**original, "_id": fid, "length": len(payload), "uploadDate": when, "filename": f"seed-{n}.jpg",
           "metadata": metadata}
    own_meta = {**own["metadata"], "key": f"{fid}/original", "original_id": fid, "sha256": stored}
    docs.append({**own, "_id": fid, "length": len(payload), "uploadDate": when, "filename": f"seed-{n}.jpg",
                 "metadata": own_meta})
    return doc, docs


def seed(db, seconds: float, min_files: int, batch_images: int, owner: str, say) -> dict:
    """Insert images (original + 8 variants, one tiny chunk each) into three buckets (``MIX``)
    and products (two images each) in batches until ``seconds`` have passed and at least
    ``min_files`` files documents are in; keep the counters as the app does."""
    from avenue.media.effects import counters as media_counters
    from avenue.presentation.objects import image_ref
    from avenue.status import counters as product_counters

    shapes = {
        "products": (BUCKET, "", template(db, BUCKET, kind="product")),
        "uploads": (UPLOADS_BUCKET, f"{owner}:public",
                    template(db, UPLOADS_BUCKET, kind="upload", owner=owner, scope=f"{owner}:public")),
        "builder": (BUILDER_BUCKET, "", template(db, BUILDER_BUCKET, kind="builder")),
    }
    payload = b"\xff\xd8seed\xff\xd9"
    started = time.monotonic()
    seeded = products = files = 0
    per_bucket: dict[str, int] = {}
    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    while time.monotonic() - started < seconds or files < min_files:
        by_bucket: dict[str, tuple[list[dict], list[dict], list[dict]]] = {}
        product_docs, refs = [], []
        for _ in range(batch_images):
            bucket, scope, shape = shapes[MIX[seeded % len(MIX)]]
            # Spread over a year, one second apart: dates sort like real uploads do.
            doc, docs = image_docs(shape, seeded, scope, payload, base + dt.timedelta(seconds=seeded))
            file_docs, chunk_docs, record_docs = by_bucket.setdefault(bucket, ([], [], []))
            file_docs.extend(docs)
            record_docs.append(doc)
            chunk_docs.extend({"files_id": d["_id"], "n": 0, "data": payload} for d in docs)
            if bucket == BUCKET:
                refs.append(image_ref(doc))
                if len(refs) == 2:
                    product_docs.append({"sku": f"SEED-{products:07d}", "name": "Seeded", "price": 1,
                                         "images": refs, "created_at": doc["uploadDate"],
                                         "updated_at": doc["uploadDate"]})
                    products, refs = products + 1, []
            seeded += 1
        for bucket, (file_docs, chunk_docs, record_docs) in by_bucket.items():
            db[f"{bucket}.chunks"].insert_many(chunk_docs, ordered=False)
            db[f"{bucket}.files"].insert_many(file_docs, ordered=False)
            images(db, bucket).insert_many(record_docs, ordered=False)  # the records last, as the app
            media_counters.record(db, bucket, media_counters.figures(file_docs + record_docs,
                                                                     chunks=len(chunk_docs)))
            files += len(file_docs)
            per_bucket[bucket] = per_bucket.get(bucket, 0) + len(file_docs)
        if product_docs:
            db[PRODUCTS].insert_many(product_docs, ordered=False)
            sums = dict.fromkeys(product_counters.FIELDS, 0)
            for product in product_docs:
                for name, value in product_counters.product_figures(product).items():
                    sums[name] += value
            db[product_counters.COLLECTION].update_one({"_id": product_counters.PRODUCTS_ID},
                                                       {"$inc": {**sums, "version": 1}}, upsert=True)
        elapsed = time.monotonic() - started
        say(f"seeded {seeded:,} images ({files:,} files documents) in {elapsed:.0f} s "
            f"({files / max(elapsed, 1e-9):,.0f} files documents/s)")
    return {"images": seeded, "products": products, "files": files + 27, "per_bucket": per_bucket,
            "seconds": time.monotonic() - started}


# --- commands as subprocesses ----------------------------------------------------------------


def run_measured(argv: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run a command; its wall time, peak RSS (wait4's ru_maxrss) and whether it finished."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    finished = True
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            finished = False
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(5)
    proc.stdout.close()
    return {"seconds": time.monotonic() - started, "peak_rss_mb": usage.ru_maxrss / 1024,
            "finished": finished, "exit": proc.returncode,
            "output": (b"".join(output)).decode(errors="replace")[-1500:]}


def sweep_child(uri: str, db_name: str, batch: int) -> None:
    """In a subprocess: run the status sweep (resuming a checkpoint) and print its summary."""
    from avenue import create_app, status

    app = create_app({"TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": SECRET, "MONGO_URI": uri,
                      "MONGO_DB": db_name, "AVENUE_STATUS_SWEEP_BATCH": batch})
    with app.app_context():
        from avenue.db import get_db, get_mongo
        from avenue.media import AppMedia

        get_mongo().ensure_indexes()
        result = status.sweep_now(get_db(), app.config, AppMedia.of(app).core.referrers(get_db()))
    summary = {k: result[k] for k in ("documents", "batches", "resumed", "run_seconds")} if result else None
    if result:
        summary["reconciled"] = {k: v["applied"] for k, v in result["reconciled"].items()}
        summary["orphans"] = result["orphans"]["count"]
        summary["missing_variants"] = result["missing_variants"]["count"]
    print(json.dumps({"sweep": summary,
                      "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


# --- HTTP ------------------------------------------------------------------------------------


def timed(server, path: str, headers: dict[str, str], calls: int) -> tuple[list[float], dict]:
    times, body = [], {}
    for _ in range(calls):
        t0 = time.perf_counter()
        status, raw = server.request("GET", path, headers=headers, timeout=120)
        times.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {raw[:200]!r}")
        body = json.loads(raw)
    return times, body


def user(db, role: str) -> tuple[str, dict[str, str]]:
    """A new user of ``role``: its id and a bearer-token header."""
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    doc = service.create_user(db, email, "correct horse battery", role)
    return str(doc["_id"]), {"Authorization": f"Bearer {service.issue_token(db, email)}"}


def measure_http(args, db, database, folder: Path, seeded: dict, rows: list, notes: list) -> None:
    """Status calls, freshness after a write, and every list at page 1 and deep, through the
    Procfile's server."""
    from tests.support.launcher import Gunicorn

    server = None
    try:
        # As `make run` starts it: the embedded database's data folder is what storage-status
        # measures (its dbStats is never run); no sweep scheduler, so that nothing but the
        # calls measured runs beside them (the sweep is measured on its own below).
        env_app = {"AVENUE_STATUS_WARM_UP": "0", "AVENUE_EMBEDDED_DATA_PATH": str(folder / "db")}
        # The lists' fences, as the status sweep's last step builds them (avenue/paging.py),
        # before the server starts: each list is then asked for in windows.
        from avenue.embedded.fences import build_fences
        from avenue.status.sweep import FENCED

        for listed in FENCED:
            started = time.perf_counter()
            built = build_fences(db, listed)
            rows.append((f"fences of {listed.collection} built (the sweep's last step)",
                         f"{built['fences']:,} fences over {built['items']:,} items in "
                         f"{time.perf_counter() - started:.1f} s", "-", "-"))
        server = Gunicorn(database.uri, DB, folder / "gunicorn.log", extra_env=env_app).start()
        ops, admin, editor = user(db, "ops")[1], user(db, "admin")[1], user(db, "editor")[1]

        # Status latency (no sweep has run yet: counts from the counters, lists empty).
        for path in ("/api/shop/debug/products-status", "/api/shop/debug/storage-status"):
            timed(server, path, ops, 2)  # warm both workers
            times, body = timed(server, path, ops, args.calls)
            p50, p99 = percentile(times, 50), percentile(times, 99)
            rows.append((f"GET {path.rsplit('/', 1)[-1]} (p50 / p99 of {len(times)})",
                         f"{p50:.0f} / {p99:.0f} ms", f"< {TARGET_MS} ms", met(p99 < TARGET_MS)))

        # Freshness: a write, then one status call.
        before = json.loads(server.request("GET", "/api/shop/debug/products-status", headers=ops)[1])
        created = server.request("POST", "/api/shop/products",
                                 headers={**admin, "Content-Type": "application/json"},
                                 body=json.dumps({"sku": f"FRESH-{uuid.uuid4().hex[:8]}", "name": "Fresh",
                                                  "price": 1}).encode())
        after = json.loads(server.request("GET", "/api/shop/debug/products-status", headers=ops)[1])
        shown = after["products"]["total"] - before["products"]["total"]
        rows.append(("product created (201), then one products-status call",
                     f"HTTP {created[0]}; total +{shown}", "+1 at once", "met" if shown == 1 else "missed"))
        # What the design says (docs/media.md, "What the upload answers, and when the variants
        # are made"): the answer waits for the original and its WebP thumb, both counted as
        # they are written; the seven other variants are rendered right after the answer and
        # each is counted when it is written then.
        def uploads_files() -> int:
            body = server.request("GET", "/api/shop/debug/storage-status", headers=ops)[1]
            return json.loads(body)["buckets"]["uploads"]["files"]

        files_before = uploads_files()
        status, _ = server.upload(admin, small_jpeg(7), "fresh.jpg")
        uploaded = time.monotonic()
        at_once = uploads_files() - files_before
        grew = at_once
        while grew < 9 and time.monotonic() - uploaded < 30:
            time.sleep(0.1)
            grew = uploads_files() - files_before
        rows.append(("image uploaded, then storage-status calls",
                     f"HTTP {status}; uploads files +{at_once} at once, +{grew} after "
                     f"{time.monotonic() - uploaded:.1f} s",
                     "+2 at once (the original and its WebP thumb, before the answer), +9 once the 7 "
                     "variants rendered after the answer are written",
                     "met" if at_once == 2 and grew == 9 else "missed"))

        # Lists at page 1 and deep: by cursor (any depth) and by the deepest page number allowed.
        from avenue.paging import MAX_OFFSET, encode_cursor

        def newest_cursor(bucket: str, query: dict, position: int) -> str:
            """The cursor of the list item just before ``position`` (newest first)."""
            doc = next(images(db, bucket).find({**IMAGE, **query}, {"uploadDate": 1})
                       .sort([("uploadDate", -1), ("_id", -1)]).skip(max(0, position - 1)).limit(1))
            return encode_cursor([doc["uploadDate"], doc["_id"]])

        n = seeded["products"]
        uploads_n = images(db, UPLOADS_BUCKET).count_documents(IMAGE)
        builder_n = images(db, BUILDER_BUCKET).count_documents(IMAGE)
        deepest = MAX_OFFSET // 20  # ?page=N answers up to MAX_OFFSET items, then 400 (use ?after=)
        lists: list[tuple[str, str, dict]] = [
            ("products, page 1", "/api/shop/products?per_page=20", {}),
            ("products, middle, by cursor",
             f"/api/shop/products?per_page=20&after={encode_cursor([f'SEED-{n // 2:07d}'])}", {}),
            ("products, last page, by cursor",
             f"/api/shop/products?per_page=20&after={encode_cursor([f'SEED-{max(0, n - 10):07d}'])}", {}),
            (f"products, ?page={deepest} (deepest numbered page)",
             f"/api/shop/products?per_page=20&page={deepest}", {}),
            ("uploads (admin, everyone's), page 1", "/api/uploads?per_page=20", admin),
            ("uploads, middle, by cursor",
             f"/api/uploads?per_page=20&after={newest_cursor(UPLOADS_BUCKET, {}, uploads_n // 2)}", admin),
            ("uploads, last page, by cursor",
             f"/api/uploads?per_page=20&after={newest_cursor(UPLOADS_BUCKET, {}, uploads_n - 10)}", admin),
            (f"uploads, ?page={deepest}", f"/api/uploads?per_page=20&page={deepest}", admin),
            ("uploads, one owner's, page 1", f"/api/uploads?per_page=20&owner={seeded['owner']}", admin),
            ("builder media, page 1", "/api/builder/media?per_page=20", editor),
            ("builder media, middle, by cursor",
             f"/api/builder/media?per_page=20&after={newest_cursor(BUILDER_BUCKET, {}, builder_n // 2)}",
             editor),
            (f"builder media, ?page={deepest}", f"/api/builder/media?per_page=20&page={deepest}", editor),
            ("builder media ?folder=/summer, page 1", "/api/builder/media?per_page=20&folder=/summer",
             editor),
            ("builder media ?folder=/ (the root: '/' or no folder), page 1",
             "/api/builder/media?per_page=20&folder=/", editor),
            ("builder media ?tag=t7, page 1", "/api/builder/media?per_page=20&tag=t7", editor),
            ("builder media ?q=s127 (a filename word of a few), page 1",
             "/api/builder/media?per_page=20&q=s127", editor),
            ("builder media ?q=seed (a filename word of all), page 1",
             "/api/builder/media?per_page=20&q=seed", editor),
            ("builder folders (counted per folder)", "/api/builder/folders", editor),
        ]
        notes.append(f"list sizes: {n:,} products, {uploads_n:,} uploads, {builder_n:,} builder media "
                     f"(originals; each has 8 variant files documents beside it)")
        for label, path, headers in lists:
            timed(server, path, headers, 1)  # warm
            times, body = timed(server, path, headers, args.list_calls)
            items = len(body.get("items") or body.get("folders") or [])
            p50, p99 = percentile(times, 50), percentile(times, 99)
            rows.append((f"GET {label} ({items} items; p50 / p99 of {len(times)})",
                         f"{p50:.0f} / {p99:.0f} ms", f"< {TARGET_MS} ms", met(p99 < TARGET_MS)))
        server.stop()
        server = None
    finally:
        if server is not None:
            server.stop()


def sweep_beside_status_calls(args, database, folder: Path, argv: list[str], env: dict[str, str],
                              rows: list) -> dict:
    """Run the sweep (its counters' reconciliation included) while an ops client calls
    products-status and storage-status, and an editor the first pages of the product list and
    the library, every quarter of a second through the Procfile's server: their latency while
    a reconciliation runs (issue 39's target: status and list calls, p99 < 300 ms)."""
    from tests.support.launcher import Gunicorn

    server = Gunicorn(database.uri, DB, folder / "gunicorn-sweep.log",
                      extra_env={"AVENUE_STATUS_WARM_UP": "0",
                                 "AVENUE_EMBEDDED_DATA_PATH": str(folder / "db")}).start()
    try:
        ops = user(pymongo.MongoClient(database.uri)[DB], "ops")[1]
        editor = user(pymongo.MongoClient(database.uri)[DB], "editor")[1]
        who = {"/api/shop/debug/products-status": ops, "/api/shop/debug/storage-status": ops,
               "/api/shop/products?per_page=50": editor, "/api/builder/media?per_page=48": editor}
        paths = tuple(who)
        for path in paths:
            timed(server, path, who[path], 2)  # warm both workers
        times: dict[str, list[float]] = {path: [] for path in paths}
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                for path in paths:
                    t0 = time.perf_counter()
                    status, raw = server.request("GET", path, headers=who[path], timeout=120)
                    times[path].append((time.perf_counter() - t0) * 1000 if status == 200 else float("inf"))
                stop.wait(0.25)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            result = run_measured(argv, env, args.command_timeout)
        finally:
            stop.set()
            poller.join(150)
        for path, measured in times.items():
            if not measured:
                continue
            p50, p99 = percentile(measured, 50), percentile(measured, 99)
            rows.append((f"GET {path.rsplit('/', 1)[-1]} while the sweep reconciles "
                         f"(p50 / p99 / max of {len(measured)})",
                         f"{p50:.0f} / {p99:.0f} / {max(measured):.0f} ms", f"p99 < {TARGET_MS} ms",
                         met(p99 < TARGET_MS)))
        return result
    finally:
        server.stop()


def rss_mb(pid: int) -> float:
    """A process's resident set now (VmRSS), in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler:
    """The RSS of named processes every ``every`` seconds, in a thread: first, peak, last."""

    def __init__(self, processes: dict[str, int], every: float = 0.5) -> None:
        self.processes, self.every = processes, every
        self.samples: dict[str, list[float]] = {name: [] for name in processes}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for name, pid in self.processes.items():
                self.samples[name].append(rss_mb(pid))
            self.stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)

    def rows(self, what: str) -> list[tuple[str, str, str, str]]:
        rows = []
        for name, values in self.samples.items():
            if values:
                grew = max(values) - values[0]
                rows.append((f"{what}: RSS of {name} (first / peak / last; peak growth)",
                             f"{values[0]:.0f} / {max(values):.0f} / {values[-1]:.0f} MB; +{grew:.0f} MB",
                             f"< {TARGET_RSS_MB} MB", met(max(values) < TARGET_RSS_MB)))
        return rows


# What issue 65 measured on f505b75 (300,000 files, the web process on SecantusDB directly).
LAST = {
    "worker RSS over the sweep in a worker": "89 MB -> 582 MB (+493 MB)",
    "products-status while it ran (p50 / p99 / max)": "9-12 / 1,697 / 5,967 ms",
    "storage-status while it ran (p99)": "741 ms",
    "report after 600 s": "uploads.files 75,009, the store 75,002",
    "gc --dry-run": "153 s per 100,000 files, peak RSS 105 MB",
    "fsck": "62 s per 100,000 small files",
}


def counts_after_sweep(server, db, ops: dict[str, str], rows: list) -> None:
    """The reports' counts against a recount of the store, right after a sweep (issue 65, 3)."""
    storage = json.loads(server.request("GET", "/api/shop/debug/storage-status", headers=ops)[1])
    products = json.loads(server.request("GET", "/api/shop/debug/products-status", headers=ops)[1])
    wrong = []
    for name, held in storage["buckets"].items():
        counted = db[f"{name}.files"].count_documents({})
        if held["files"] != counted:
            wrong.append(f"{name}.files {held['files']:,} (store {counted:,})")
    total = db[PRODUCTS].count_documents({})
    if products["products"]["total"] != total:
        wrong.append(f"products {products['products']['total']:,} (store {total:,})")
    rows.append(("report's counts after the sweep against a recount (every bucket's files, products)",
                 "; ".join(wrong) or f"all equal ({len(storage['buckets'])} buckets, {total:,} products)",
                 "equal", met(not wrong)))


def sweep_in_worker(args, database, folder: Path, db, rows: list, notes: list) -> None:
    """As issue 65 measured: the web process on the database directly, a ``?refresh=1`` that
    starts the sweep (and its reconciliation) in a worker, status and list calls every quarter
    of a second meanwhile, and the RSS of every process (the master, each worker, the
    database) sampled every half second. The lists' fences are dropped first, as on a store
    bulk-loaded behind the app's back (the sweep's first run builds them)."""
    from tests.support.launcher import Gunicorn

    db["list_fences"].delete_many({})
    db["status_reports"].delete_many({})
    server = Gunicorn(database.uri, DB, folder / "gunicorn-worker-sweep.log",
                      extra_env={"AVENUE_STATUS_WARM_UP": "0",
                                 "AVENUE_EMBEDDED_DATA_PATH": str(folder / "db")}).start()
    try:
        ops, editor = user(db, "ops")[1], user(db, "editor")[1]
        who = {"/api/shop/debug/products-status": ops, "/api/shop/debug/storage-status": ops,
               "/api/shop/products?per_page=50": editor, "/api/builder/media?per_page=48": editor}
        for path in who:
            timed(server, path, who[path], 2)  # warm both workers
        processes = {"gunicorn master": server.process.pid,
                     **{f"worker {n}": pid for n, pid in enumerate(server.workers(), 1)},
                     "database": database.pid}
        times: dict[str, list[float]] = {path: [] for path in who}
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                for path, headers in who.items():
                    t0 = time.perf_counter()
                    status, _ = server.request("GET", path, headers=headers, timeout=120)
                    times[path].append((time.perf_counter() - t0) * 1000 if status == 200 else float("inf"))
                stop.wait(0.25)

        with RssSampler(processes) as sampler:
            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            started = time.monotonic()
            server.request("GET", "/api/shop/debug/products-status?refresh=1", headers=ops)
            finished = False
            while time.monotonic() - started < args.command_timeout:
                doc = db["status_reports"].find_one({"_id": "sweep"}) or {}
                if (doc.get("result") or {}).get("generated_at") and not doc.get("lease_owner"):
                    finished = True
                    break
                time.sleep(1)
            seconds = time.monotonic() - started
            stop.set()
            poller.join(150)
        rows.append(("sweep in a worker after ?refresh=1: time",
                     f"{seconds:.1f} s ({'finished' if finished else 'not finished'})", "-", "-"))
        for path, measured in times.items():
            if measured:
                p50, p99 = percentile(measured, 50), percentile(measured, 99)
                rows.append((f"GET {path.rsplit('/', 1)[-1]} while a worker sweeps "
                             f"(p50 / p99 / max of {len(measured)})",
                             f"{p50:.0f} / {p99:.0f} / {max(measured):.0f} ms", f"p99 < {TARGET_MS} ms",
                             met(p99 < TARGET_MS)))
        rows.extend(sampler.rows("sweep in a worker"))
        counts_after_sweep(server, db, ops, rows)
    finally:
        server.stop()


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def slow_summary(lines: list[str], threshold: str = "1 s") -> str:
    """The relay's slow-operation lines summed by what they were: what held the one connection."""
    by_what: dict[str, list[float]] = {}
    for line in lines:
        seconds, _, what = line.removeprefix("The embedded database took ").partition(" s for ")
        by_what.setdefault(what.split(";")[0], []).append(float(seconds))
    if not by_what:
        return f"operations that held the relay's one connection over {threshold}: none"
    ranked = sorted(by_what.items(), key=lambda item: -sum(item[1]))
    return (f"operations that held the relay's one connection over {threshold} (count, total, longest): "
            + "; ".join(f"{what} ({len(times)}, {sum(times):.1f} s, {max(times):.1f} s)"
                        for what, times in ranked[:12]))


def main() -> None:  # noqa: C901 - one straight script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: ~20,000 files documents")
    parser.add_argument("--seed-seconds", type=float, default=600.0, help="seed at least this long")
    parser.add_argument("--min-files", type=int, default=1_000_000,
                        help="and at least this many files documents")
    parser.add_argument("--folder", type=Path, help="keep the database here; a folder seeded by an earlier "
                        "run is measured again without seeding")
    parser.add_argument("--seed-only", action="store_true", help="seed --folder, measure nothing")
    parser.add_argument("--commands-only", action="store_true",
                        help="measure only the sweep, gc and fsck (not the HTTP calls)")
    parser.add_argument("--http-only", action="store_true",
                        help="measure only the HTTP calls (not the sweep, gc and fsck)")
    parser.add_argument("--sweep-only", action="store_true",
                        help="measure only the status calls while the sweep reconciles (and the sweep)")
    parser.add_argument("--worker-sweep-only", action="store_true",
                        help="measure only the sweep started in a worker by ?refresh=1 (issue 65's "
                             "setting), its status calls, RSS and counts")
    parser.add_argument("--relay", action="store_true",
                        help="every client through make run's one connection (avenue/embedded/relay.py)")
    parser.add_argument("--slow-ms", type=float, default=1000.0,
                        help="with --relay, report every operation that held its connection this long")
    parser.add_argument("--calls", type=int, default=40, help="calls per status endpoint")
    parser.add_argument("--list-calls", type=int, default=5,
                        help="calls per list page (on the embedded database each takes seconds at 1 M)")
    parser.add_argument("--command-timeout", type=float, default=600.0)
    parser.add_argument("--sweep-batch", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--child", choices=["sweep"], help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "sweep":
        sweep_child(args.uri, DB, args.sweep_batch)
        return
    if args.quick:
        args.seed_seconds, args.min_files = 0.0, 20_000
        args.calls, args.list_calls, args.command_timeout = min(args.calls, 10), 3, 120.0

    def say(text: str) -> None:
        print(f"[scale {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


    folder = args.folder or Path(tempfile.mkdtemp(prefix="avenue-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "seeded.json"
    # A seeded store of 2 GB takes a minute or two to open.
    database = EmbeddedServer(folder / "db", log_path=folder / "db.log").start(timeout=600)
    slow_operations: list[str] = []  # the relay's lines: each operation that held it over a second
    if args.relay:  # as make run: every process below reaches the server through one connection
        from avenue.embedded import relay as relay_module
        from avenue.embedded.relay import SerialRelay

        relay_module.SLOW_SECONDS = args.slow_ms / 1000

        relay = SerialRelay("127.0.0.1", database.port, log=slow_operations.append).start()
        database.port = relay.port  # database.uri is the relay's from here on (the process is the server's)
    rows: list[tuple[str, str, str, str]] = []  # (what, figure, target, met)
    notes: list[str] = [f"load average at start: {load_average()} (2 cores, shared)"]
    server = None
    try:
        client = pymongo.MongoClient(database.uri)
        db = client[DB]
        from avenue import create_app

        app = create_app({"TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": SECRET,
                          "MONGO_URI": database.uri, "MONGO_DB": DB})
        with app.app_context():
            from avenue.db import get_mongo

            get_mongo().ensure_indexes()
        if marker.exists():
            seeded = json.loads(marker.read_text())
            notes.append(f"measured again on the store seeded {seeded['when']} (not seeded in this run)")
        else:
            owner, _ = user(db, "editor")
            seeded = seed(db, args.seed_seconds, args.min_files, 200, owner, say)
            seeded.update(owner=owner, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
            marker.write_text(json.dumps(seeded))
            if args.seed_only:
                return
        rows.append(("seeded (indexes in place, as the app writes)",
                     f"{seeded['files']:,} files documents and as many chunks in 3 buckets, "
                     f"{seeded['products']:,} products, in {seeded['seconds']:.0f} s "
                     f"({seeded['files'] / seeded['seconds']:,.0f} files documents/s)",
                     "≥ 1,000,000 files documents" if not args.quick else "(quick)",
                     ("met" if seeded["files"] >= 1_000_000 else "missed") if not args.quick else "-"))
        notes.append("files documents per bucket: "
                     + ", ".join(f"{b} {n:,}" for b, n in seeded["per_bucket"].items()))
        on_disk = sum(p.stat().st_size for p in (folder / "db").rglob("*") if p.is_file())
        notes.append(f"data folder after seeding: {on_disk / 2**20:,.0f} MB")
        if not args.commands_only and not args.sweep_only and not args.worker_sweep_only:
            measure_http(args, db, database, folder, seeded, rows, notes)
        if not args.commands_only and not args.sweep_only and not args.http_only:
            say(f"the sweep in a worker (at most {args.command_timeout:.0f} s)")
            sweep_in_worker(args, database, folder, db, rows, notes)

        # The sweep, gc and fsck: subprocesses, peak RSS from wait4.
        env = {**os.environ, "MONGO_URI": database.uri, "MONGO_DB": DB, "SECRET_KEY": SECRET,
               "AVENUE_ENV": "production", "AVENUE_STATUS_WARM_UP": "0",
               "AVENUE_HISTORY_INTERVAL_SECONDS": "0"}
        commands = [
            ("status sweep (lists + counter reconciliation)",
             [sys.executable, str(Path(__file__).resolve()), "--child", "sweep", "--uri", database.uri,
              "--sweep-batch", str(args.sweep_batch)]),
            ("gc", [sys.executable, "-m", "flask", "--app", "avenue", "gc", "--quiet"]),
            ("fsck", [sys.executable, "-m", "flask", "--app", "avenue", "fsck", "--quiet"]),
        ]
        if args.sweep_only:
            commands = commands[:1]
        for label, argv in [] if args.http_only or args.worker_sweep_only else commands:
            say(f"running {label} (at most {args.command_timeout:.0f} s)")
            with RssSampler({"database": database.pid}) as sampler:
                if label.startswith("status sweep") and not args.commands_only:
                    result = sweep_beside_status_calls(args, database, folder, argv, env, rows)
                else:
                    result = run_measured(argv, env, args.command_timeout)
            if label.startswith("status sweep") and not result["finished"]:
                doc = db["status_reports"].find_one({"_id": "sweep"}) or {}
                progress = (doc.get("run") or {}).get("documents")
                notes.append(f"{label}: stopped after {args.command_timeout:.0f} s with {progress:,} "
                             "documents read (its checkpoint); a next run resumes there" if progress else
                             f"{label}: stopped before its first checkpoint")
            done = "finished" if result["finished"] else f"not finished in {args.command_timeout:.0f} s"
            rows.append((f"{label}: time", f"{result['seconds']:.1f} s ({done}, exit {result['exit']})", "-",
                         "-" if result["finished"] else "not shown"))
            rows.append((f"{label}: peak RSS", f"{result['peak_rss_mb']:.0f} MB", f"< {TARGET_RSS_MB} MB",
                         "met" if result["peak_rss_mb"] < TARGET_RSS_MB else "missed"))
            rows.extend(sampler.rows(label))
            if label in ("gc", "fsck") and result["finished"]:
                per = result["seconds"] / seeded["files"] * 100_000
                rows.append((f"{label}: seconds per 100,000 files ({seeded['files']:,} files)",
                             f"{per:.0f} s ({3600 / per * 100_000:,.0f} files an hour)",
                             f"<= {TARGET_PER_100K_S} s (1,000,000 files an hour)",
                             met(per <= TARGET_PER_100K_S)))
            last = [line for line in result["output"].splitlines() if line.strip()][-1:] or [""]
            notes.append(f"{label} said: {last[0][:300]}")
        if args.relay:
            notes.append(slow_summary(slow_operations, f"{args.slow_ms / 1000:g} s"))
        notes.append(f"load average at end: {load_average()}")
        notes.append("issue 65's figures on f505b75 (300,000 files): "
                     + "; ".join(f"{what}: {figure}" for what, figure in LAST.items()))
    finally:
        if server is not None:
            server.stop()
        database.stop()
    title = (f"# Scale: {'quick' if args.quick else 'full'} run, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    table = [title, "| what | measured | target | met? |", "| --- | --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    table += ["", *(f"- {note}" for note in notes)]
    text = "\n".join(table) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
