#!/usr/bin/env python3
"""The migration to media layout 2 (issue 75): ``flask --app avenue migrate-media`` on a large
store written before it, on the embedded SecantusDB.

A fresh SecantusDB (make run's: ``secantusd-py`` standalone, its cache size) is given the
domain's indexes as the app creates them, then the buckets as a store written before layout 2
held them: no ``<bucket>.images``, the records' indexes on ``<bucket>.files`` (one collection
held both), and per image, written straight into MongoDB in big batches, shaped as the media
core wrote them (a real stored image of each kind is the template):

- a *head* in ``<bucket>.files`` (``metadata.role: "original"``, the record) holding the
  image's own bytes in one chunk, and 8 variant files of one chunk each;
- one image in ``--replaced-every`` replaced in place: a chunkless head whose
  ``metadata.content`` names a content file (``variant: "original"``, key
  ``<id>~<version>/original``) holding its bytes, its variants of that version; one replaced
  image in ``--zero-every`` has the ``length`` 0 heads had before they kept their bytes' length;
- products, uploads, library media and the trash (its heads with ``metadata.trash``).

Then, each in a child process as ops runs it: ``migrate-media --dry-run``, ``migrate-media``
(wall time, the job's CPU and peak RSS from ``wait4``, the database process's CPU and RSS from
/proc), and ``migrate-media`` again (must change nothing: a digest of every bucket's
documents before and after it). Before and after: files, heads, records and chunks per
bucket, and the storage (``collStats`` per collection, ``dbStats``, the data folder on disk).
Checked after: every ``.files`` document a whole GridFS file (tests/support/gridfs_spec.py),
no head left, every record's length its bytes', and every image's bytes read by the
documented rule (tests/support/gridfs_read.py) equal to the seeded bytes (all, or a sample
of ``--sample``); ``fsck`` on the migrated store (``--no-fsck`` skips it).

    .venv/bin/python bench/migrate.py --quick          # 200 images: a smoke run, under a minute
    .venv/bin/python bench/migrate.py --out bench/results/migrate-<date>.md   # 6,000 images: ~6 minutes

``--quick --json`` prints what tests/api/test_migrate_bench.py checks, as the last line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymongo  # noqa: E402
from avenue.embedded import EmbeddedServer  # noqa: E402
from avenue.media.buckets import BUILDER, PRODUCTS, STORED, TRASH, UPLOADS  # noqa: E402
from bson import ObjectId, encode  # noqa: E402
from PIL import Image  # noqa: E402

DB = "avenue_migrate"
TEMPLATES_DB = "avenue_migrate_templates"
SECRET = "migrate-bench-secret-" + "x" * 40
HEAD = {"metadata.role": "original"}
# Of every 10 images: 6 product photos, 1 upload, 2 library media, 1 in the trash.
MIX = (PRODUCTS, PRODUCTS, PRODUCTS, PRODUCTS, PRODUCTS, PRODUCTS, UPLOADS, BUILDER, BUILDER, TRASH)
VARIANT_BYTES = b"\xff\xd8variant\xff\xd9"  # every variant's one chunk (its sha256 is recorded)


def say(text: str) -> None:
    print(f"[migrate {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def small_jpeg(seed: int) -> bytes:
    image = Image.new("RGB", (64, 48), (seed % 256, (seed * 7) % 256, (seed * 13) % 256))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def image_bytes(file_id: ObjectId, size: int) -> bytes:
    """The seeded bytes of the file ``file_id`` (an image's own, or a content file's): distinct
    per file, ``size`` long, between JPEG's start and end markers."""
    body = (file_id.binary * (size // 12 + 1))[:max(size - 4, 12)]
    return b"\xff\xd8" + body + b"\xff\xd9"


# --- the old store -----------------------------------------------------------------------------


def old_indexes(db, uri: str) -> None:
    """The indexes a store written before layout 2 had: the domain's and every other the app
    makes (its own setup, then the records' collections dropped), and on ``<bucket>.files``
    the files' and the records' both (one collection held them), the library's and trash's own."""
    from avenue import create_app
    from avenue.indexes import create_missing
    from avenue.media.store import layout
    from avenue.media.store.indexes import files_indexes, library_indexes, trash_indexes

    app = create_app({"TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": SECRET,
                      "MONGO_URI": uri, "MONGO_DB": db.name})
    with app.app_context():
        from avenue.db import get_mongo

        get_mongo().ensure_indexes()
    for bucket in STORED:
        db.drop_collection(f"{bucket}.images")
        own = library_indexes() if bucket == BUILDER else trash_indexes() if bucket == TRASH else []
        models = {model.document["name"]: model for model in files_indexes() + own}
        create_missing(db[f"{bucket}.files"], list(models.values()))
    db[layout.COLLECTION].delete_many({})


def templates(client) -> dict[str, tuple[dict, list[dict]]]:
    """Per bucket, a real stored image (the shapes to copy): its record and its 8 variants'
    files documents; the trash's is a library image kept there as a delete keeps it."""
    from avenue.media.store import trash
    from avenue.media.store.originals import store

    scratch = client[TEMPLATES_DB]
    client.drop_database(TEMPLATES_DB)
    found: dict[str, tuple[dict, list[dict]]] = {}
    kinds = {PRODUCTS: {"kind": "product"},
             UPLOADS: {"kind": "upload", "owner": "owner-1", "scope": "owner-1:public"},
             BUILDER: {"kind": "builder"}}
    for n, (bucket, options) in enumerate(kinds.items()):
        doc = store(scratch, bucket, small_jpeg(n + 1), filename="template.jpg", **options).doc
        found[bucket] = (doc, [])
    doc = store(scratch, BUILDER, small_jpeg(9), filename="trashed.jpg", kind="builder").doc
    trash.keep(scratch, BUILDER, doc, keep_days=30)
    found[TRASH] = (scratch[f"{TRASH}.images"].find_one({"_id": doc["_id"]}), [])
    for bucket, (record, _) in found.items():
        ids = [info["id"] for formats in record["metadata"]["variants"].values() for info in formats.values()]
        variants = list(scratch[f"{bucket}.files"].find({"_id": {"$in": ids}}))
        if len(variants) != 8:
            raise RuntimeError(f"the {bucket} template has {len(variants)} variant files, not 8")
        found[bucket] = (record, variants)
    client.drop_database(TEMPLATES_DB)
    return found


def old_image(shape: tuple[dict, list[dict]], n: int, when: dt.datetime, *, replaced: bool, zero: bool,
              size: int) -> tuple[dict, list[dict], list[dict], bytes]:
    """One image as a store written before layout 2 held it: its head, its other files
    (variants; a content file once replaced), their chunks, and its current bytes."""
    from avenue.media.store.originals import dedupe_key

    record, variants = shape
    fid = ObjectId()
    meta_in = record["metadata"]
    version = hashlib.sha256(fid.binary + b"v").hexdigest()[:8] if replaced else ""
    owner = f"{fid}~{version}" if version else str(fid)
    variant_sha = hashlib.sha256(VARIANT_BYTES).hexdigest()
    files: list[dict] = []
    listed: dict[str, dict] = {}
    by_id = {v["_id"]: v for v in variants}
    for name, formats in meta_in["variants"].items():
        for fmt, info in formats.items():
            vid = ObjectId()
            variant = by_id[info["id"]]
            meta = {**variant["metadata"], "key": f"{owner}/{name}.{fmt}", "original_id": fid,
                    "sha256": variant_sha}
            files.append({**variant, "_id": vid, "length": len(VARIANT_BYTES), "uploadDate": when,
                          "metadata": meta})
            listed.setdefault(name, {})[fmt] = {**info, "id": vid, "length": len(VARIANT_BYTES)}
    source = hashlib.sha256(fid.binary).hexdigest()  # a distinct source per image (its dedupe key)
    key = dedupe_key(source, (meta_in.get("key") or "").rpartition(":")[0])
    metadata = {**meta_in, "key": key, "source_sha256": source, "variants": listed,
                "filename": f"seed-{n}.jpg", "name_prefixes": ["seed", f"s{n % 1000}"]}
    if meta_in.get("trash"):  # the trash's key set aside, the bucket's kept in metadata.trash
        metadata["key"] = f"trash:{fid}"
        metadata["trash"] = {**meta_in["trash"], "key": key, "deleted_at": when}
    if meta_in.get("kind") == "builder" and not meta_in.get("trash"):
        metadata["folder"] = ("/home", "/summer", "/blog")[n % 3]
        metadata["tags"] = ["seeded", f"t{n % 50}"]
    head = {**record, "_id": fid, "uploadDate": when, "filename": f"seed-{n}.jpg"}
    chunks = [{"files_id": f["_id"], "n": 0, "data": VARIANT_BYTES} for f in files]
    if replaced:
        cid = ObjectId()
        data = image_bytes(cid, size)
        digest = hashlib.sha256(data).hexdigest()
        files.append({"_id": cid, "length": len(data), "chunkSize": record["chunkSize"], "uploadDate": when,
                      "filename": f"seed-{n}.jpg",
                      "metadata": {"role": "variant", "variant": "original", "key": f"{owner}/original",
                                   "original_id": fid, "format": meta_in.get("format"),
                                   "content_type": meta_in.get("content_type"), "sha256": digest,
                                   "width": meta_in.get("width"), "height": meta_in.get("height")}})
        chunks.append({"files_id": cid, "n": 0, "data": data})
        metadata.update(sha256=digest, version=version, replaced_at=when,
                        content={"id": cid, "length": len(data), "chunk_size": record["chunkSize"],
                                 "sha256": digest})
        head.update(length=0 if zero else len(data), metadata=metadata)  # no chunk of its own
    else:
        data = image_bytes(fid, size)
        metadata["sha256"] = hashlib.sha256(data).hexdigest()
        head.update(length=len(data), metadata=metadata)
        chunks.append({"files_id": fid, "n": 0, "data": data})
    return head, files, chunks, data


def seed(db, images: int, batch: int, replaced_every: int, zero_every: int, size: int) -> dict[str, Any]:
    """``images`` images in the old layout (the module doc), in batches; what was seeded, and
    each image's bytes by id (to check them after)."""
    client = db.client
    shapes = templates(client)
    started = time.monotonic()
    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    expected: dict[str, tuple[str, bytes, bool]] = {}
    counts = {bucket: {"heads": 0, "files": 0, "replaced": 0, "zero": 0} for bucket in STORED}
    seeded = replaced_n = 0
    while seeded < images:
        by_bucket: dict[str, tuple[list[dict], list[dict]]] = {}
        for _ in range(min(batch, images - seeded)):
            bucket = MIX[seeded % len(MIX)]
            found = counts[bucket]
            # Counted per bucket, so that every bucket has images replaced in place.
            replaced = found["heads"] % replaced_every == replaced_every - 1
            zero = replaced and replaced_n % zero_every == 0
            head, files, chunks, data = old_image(shapes[bucket], seeded, base + dt.timedelta(seconds=seeded),
                                                  replaced=replaced, zero=zero, size=size)
            file_docs, chunk_docs = by_bucket.setdefault(bucket, ([], []))
            file_docs.extend([*files, head])
            chunk_docs.extend(chunks)
            expected[str(head["_id"])] = (bucket, data, replaced)
            found["heads"] += 1
            found["files"] += len(files) + 1
            found["replaced"] += replaced
            found["zero"] += zero
            replaced_n += replaced
            seeded += 1
        for bucket, (file_docs, chunk_docs) in by_bucket.items():
            db[f"{bucket}.chunks"].insert_many(chunk_docs, ordered=False)
            db[f"{bucket}.files"].insert_many(file_docs, ordered=False)
        elapsed = time.monotonic() - started
        files = sum(c["files"] for c in counts.values())
        say(f"seeded {seeded:,} images ({files:,} files documents) in {elapsed:.0f} s "
            f"({files / max(elapsed, 1e-9):,.0f} files documents/s)")
    return {"images": seeded, "files": sum(c["files"] for c in counts.values()), "per_bucket": counts,
            "seconds": time.monotonic() - started, "expected": expected}


# --- what the store holds ----------------------------------------------------------------------


def census(db) -> dict[str, dict[str, int]]:
    """Per bucket: files documents, heads among them, records, chunks."""
    names = set(db.list_collection_names())
    return {bucket: {"files": db[f"{bucket}.files"].estimated_document_count(),
                     "heads": db[f"{bucket}.files"].count_documents(HEAD),
                     "records": (db[f"{bucket}.images"].estimated_document_count()
                                 if f"{bucket}.images" in names else 0),
                     "chunks": db[f"{bucket}.chunks"].estimated_document_count()}
            for bucket in STORED}


def folder_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (allocated blocks, as du)."""
    total = 0
    for entry in path.rglob("*"):
        try:
            stat = entry.stat()
        except OSError:
            continue
        if entry.is_file():
            total += stat.st_blocks * 512
    return total


def storage(db, folder: Path) -> dict[str, Any]:
    """collStats of every bucket collection (data and index bytes, indexes by name), dbStats,
    and the data folder on disk."""
    names = set(db.list_collection_names())
    collections: dict[str, dict[str, Any]] = {}
    for bucket in STORED:
        for part in ("files", "chunks", "images"):
            name = f"{bucket}.{part}"
            if name not in names:
                continue
            stats = db.command("collStats", name)
            sizes = stats.get("indexSizes") or {}  # (SecantusDB leaves out an empty sparse index)
            collections[name] = {"count": stats.get("count"), "size": stats.get("size"),
                                 "index_size": stats.get("totalIndexSize"),
                                 "indexes": {index: sizes.get(index, 0)
                                             for index in db[name].index_information()}}
    started = time.perf_counter()
    stats = db.command("dbStats")
    return {"collections": collections, "db_data": stats.get("dataSize"), "db_index": stats.get("indexSize"),
            "db_seconds": time.perf_counter() - started, "folder": folder_bytes(folder)}


def digest_buckets(db) -> str:
    """One digest of every document of every bucket's files, chunks and records, by ``_id``, and
    of the layout marker: equal digests, the same store."""
    from avenue.media.store import layout

    hasher = hashlib.sha256()
    names = set(db.list_collection_names())
    for name in [f"{b}.{p}" for b in STORED for p in ("files", "chunks", "images")] + [layout.COLLECTION]:
        if name in names:
            hasher.update(name.encode())
            for doc in db[name].find().sort("_id", 1):
                hasher.update(encode(doc))
    return hasher.hexdigest()


# --- the job, as ops runs it -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's RSS now (``VmRSS``), or its peak since its ``exec`` (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_busy() -> tuple[float, float]:
    """The machine's busy and total CPU seconds so far, over every core (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


def run_job(argv: list[str], env: dict[str, str], database_pid: int, timeout: float) -> dict[str, Any]:
    """Run the command ``argv`` (as ops does) and measure it: wall time, its CPU (``wait4``)
    and peak RSS, the database's CPU and peak RSS meanwhile, the other processes' CPU, and when
    each progress phase began (its label on stderr, one line per phase off a terminal).

    The job's peak RSS is its ``VmHWM`` (/proc, the high-water mark of its memory since its
    ``exec``), read every 50 ms until it exits: ``wait4``'s ``ru_maxrss`` is not, as Linux keeps
    in it the RSS the forked child had before its ``exec``, which is this process's (over
    100 MB once it holds the seeded bytes), whatever the job used."""
    db_cpu0, (busy0, total0) = cpu_seconds(database_pid), machine_busy()
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    out: list[bytes] = []
    phases: list[tuple[float, str]] = []
    db_peak = [rss_mb(database_pid)]
    job_peak = [0.0]
    done = threading.Event()

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            text = line.decode(errors="replace").strip()
            if "database dialect" in text:  # logged once the start's indexes are all in place
                phases.append((time.monotonic() - started, "(indexes ready: the dialect logged)"))
            elif text and not text[:1].isdigit():  # a progress label, not a log line
                phases.append((time.monotonic() - started, text[:200]))

    def sample() -> None:
        while not done.wait(0.05):
            try:
                job_peak.append(rss_mb(proc.pid, "VmHWM"))
            except (OSError, ValueError):
                pass  # exited (or not yet readable)
            try:
                db_peak.append(rss_mb(database_pid))
            except OSError:
                return

    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
               threading.Thread(target=read_err, daemon=True), threading.Thread(target=sample, daemon=True)]
    for thread in readers:
        thread.start()
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.monotonic() - started
    done.set()
    for thread in readers:
        thread.join(5)
    busy1, total1 = machine_busy()
    db_cpu = cpu_seconds(database_pid) - db_cpu0
    job_cpu = usage.ru_utime + usage.ru_stime
    cores = os.cpu_count() or 1
    machine = (busy1 - busy0) / max(total1 - total0, 1e-9) * cores  # cores busy, all processes
    return {"seconds": wall, "exit": os.waitstatus_to_exitcode(status), "cpu": job_cpu,
            "peak_rss_mb": max(job_peak), "wait4_maxrss_mb": usage.ru_maxrss / 1024,
            "db_cpu": db_cpu, "db_peak_rss_mb": max(db_peak),
            "others_cores": max(0.0, machine - (job_cpu + db_cpu) / max(wall, 1e-9)),
            "phases": phases, "output": b"".join(out).decode(errors="replace")}


def job_env(uri: str, folder: Path) -> dict[str, str]:
    """The environment of ops' command line against this database (no make run folder)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AVENUE_", "MONGO_"))}
    return {**keep, "MONGO_URI": uri, "MONGO_DB": DB, "SECRET_KEY": SECRET, "AVENUE_ENV": "development",
            "AVENUE_DATA_DIR": str(folder / "var"), "PYTHONDONTWRITEBYTECODE": "1"}


# --- the checks after --------------------------------------------------------------------------


def verify(db, expected: dict[str, tuple[str, bytes, bool]], sample: int) -> dict[str, Any]:
    """The layout and the bytes after the migration (the module doc)."""
    from tests.support.gridfs_read import current_bytes
    from tests.support.gridfs_spec import invalid_files

    started = time.monotonic()
    invalid = invalid_files(db)
    spec_seconds = time.monotonic() - started
    ids = sorted(expected)
    if 0 < sample < len(ids):  # an even sample, and every image replaced in place (the content rule)
        picked = set(ids[::max(1, len(ids) // sample)])
        ids = [i for i in ids if i in picked or expected[i][2]]
    wrong: list[str] = []
    for image_id in ids:
        bucket, data, _ = expected[image_id]
        try:
            got = current_bytes(db, bucket, ObjectId(image_id))
        except Exception as error:  # noqa: BLE001 - any failure to read is a finding
            wrong.append(f"{bucket} {image_id}: {type(error).__name__}: {error}")
            continue
        if got != data:
            wrong.append(f"{bucket} {image_id}: {len(got)} bytes read, {len(data)} seeded")
    zero_records = sum(db[f"{b}.images"].count_documents({"length": 0}) for b in STORED)
    mismatched = 0
    for bucket in STORED:
        for record in db[f"{bucket}.images"].find({}, {"length": 1, "metadata.content": 1}):
            data = expected.get(str(record["_id"]))
            if data is not None and record["length"] != len(data[1]):
                mismatched += 1
    return {"invalid": [f"{i.bucket} {i.file_id}: {i.problem}" for i in invalid[:20]],
            "invalid_count": len(invalid), "spec_seconds": spec_seconds, "read": len(ids),
            "wrong": wrong[:20], "wrong_count": len(wrong), "zero_records": zero_records,
            "length_mismatches": mismatched}


# --- the report --------------------------------------------------------------------------------


def mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.2f} MB"


def per_100k(value: float, files: int) -> float:
    return value / max(files, 1) * 100_000


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def busy_processes() -> str:
    """The processes using the most CPU now (ps), ours excluded: who shares the machine."""
    try:
        listed = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                                capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "-"
    return ", ".join(" ".join(line.split()) for line in listed[:6])


def collection_figure(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "-"
    return (f"{stats['count']:,} docs, data {mb(stats['size'])}, indexes {mb(stats['index_size'])} "
            f"({len(stats['indexes'])})")


def storage_rows(before: dict[str, Any], after: dict[str, Any], files: int) -> list[tuple[str, str, str]]:
    rows = []
    names = sorted(set(before["collections"]) | set(after["collections"]),
                   key=lambda n: (n.rpartition(".")[0], n))
    for name in names:
        b, a = before["collections"].get(name), after["collections"].get(name)
        if (b or {}) != (a or {}):
            rows.append((f"`{name}`", collection_figure(b), collection_figure(a)))
    rows.append(("dbStats data + indexes", f"{mb(before['db_data'])} + {mb(before['db_index'])}",
                 f"{mb(after['db_data'])} + {mb(after['db_index'])}"))
    rows.append(("data folder on disk", mb(before["folder"]), mb(after["folder"])))
    rows.append(("dbStats (data + indexes) per 100,000 files",
                 mb(per_100k(before["db_data"] + before["db_index"], files)),
                 mb(per_100k(after["db_data"] + after["db_index"], files))))
    return rows


def leftover_indexes(after: dict[str, Any]) -> dict[str, int]:
    """The records' indexes still on ``<bucket>.files`` after the migration, with their bytes
    (the layout 2 start creates the files' own; nothing drops the records' from there)."""
    from avenue.media.store.indexes import gridfs_indexes

    wanted = {model.document["name"] for model in gridfs_indexes()} | {"_id_"}
    left: dict[str, int] = {}
    for name, stats in after["collections"].items():
        if name.endswith(".files"):
            for index, size in stats["indexes"].items():
                if index not in wanted:
                    left[f"{name}:{index}"] = int(size or 0)
    return left


def main() -> None:  # noqa: C901 - one straight script
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 images (~1,800 files)")
    parser.add_argument("--images", type=int, default=6_000,
                        help="images seeded (9 files each, a replaced one 10)")
    parser.add_argument("--replaced-every", type=int, default=10,
                        help="one image in this many replaced in place")
    parser.add_argument("--zero-every", type=int, default=20,
                        help="one replaced image in this many with a head of length 0")
    parser.add_argument("--bytes", type=int, default=256, help="each image's bytes (one chunk)")
    parser.add_argument("--batch", type=int, default=200, help="images per insert batch")
    parser.add_argument("--sample", type=int, default=3000, help="images whose bytes are read after (0: all)")
    parser.add_argument("--no-fsck", action="store_true", help="skip fsck on the migrated store")
    parser.add_argument("--timeout", type=float, default=1800.0, help="each command's time limit")
    parser.add_argument("--folder", type=Path,
                        help="the database's folder (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--json", action="store_true", help="print the figures and checks as JSON, last")
    args = parser.parse_args()
    if args.quick:
        args.images, args.sample, args.zero_every = min(args.images, 200), 0, min(args.zero_every, 5)

    folder = args.folder or Path(tempfile.mkdtemp(prefix="avenue-migrate-"))
    folder.mkdir(parents=True, exist_ok=True)
    load_start, busy_start = load_average(), busy_processes()
    database = EmbeddedServer(folder / "db", log_path=folder / "db.log", standalone=True).start(timeout=120)
    assert database.pid is not None
    result: dict[str, Any] = {}
    try:
        client = pymongo.MongoClient(database.uri)
        db = client[DB]
        old_indexes(db, database.uri)
        say(f"seeding {args.images:,} images")
        seeded = seed(db, args.images, args.batch, args.replaced_every, args.zero_every, args.bytes)
        expected = seeded.pop("expected")
        census_before = census(db)
        storage_before = storage(db, folder / "db")
        spec_before = None
        if args.quick:
            from tests.support.gridfs_spec import invalid_files

            spec_before = len(invalid_files(db))
        env = job_env(database.uri, folder)
        flask = [sys.executable, "-m", "flask", "--app", "avenue"]
        old_digest = digest_buckets(db) if args.quick else ""
        say("migrate-media --dry-run")
        dry = run_job([*flask, "migrate-media", "--dry-run"], env, database.pid, args.timeout)
        dry_unchanged = None
        if args.quick:  # a digest reads every document: a quick run's check only
            dry_unchanged = digest_buckets(db) == old_digest
        say("migrate-media")
        first = run_job([*flask, "migrate-media"], env, database.pid, args.timeout)
        census_after = census(db)
        storage_after = storage(db, folder / "db")
        say("checking the layout and the bytes")
        checks = verify(db, expected, args.sample)
        say("migrate-media again")
        digest_before = digest_buckets(db)
        second = run_job([*flask, "migrate-media"], env, database.pid, args.timeout)
        unchanged = digest_buckets(db) == digest_before
        fsck = None
        if not args.no_fsck:
            say("fsck")
            fsck = run_job([*flask, "fsck"], env, database.pid, args.timeout)
        load_end, busy_end = load_average(), busy_processes()
        heads_seeded = sum(c["heads"] for c in seeded["per_bucket"].values())
        replaced = sum(c["replaced"] for c in seeded["per_bucket"].values())
        zero = sum(c["zero"] for c in seeded["per_bucket"].values())
        ok = {
            f"dry run exit 0, would migrate {heads_seeded:,}": dry["exit"] == 0
            and f"would migrate {heads_seeded} image records" in dry["output"],
            "migration exit 0": first["exit"] == 0,
            f"migrated {heads_seeded:,} records": f"migrated {heads_seeded} image records" in first["output"],
            "no head left in any .files": all(c["heads"] == 0 for c in census_after.values()),
            "a record per seeded image, per bucket": all(
                census_after[b]["records"] == seeded["per_bucket"][b]["heads"] for b in STORED),
            "files: one fewer per chunkless head": all(
                census_after[b]["files"] == census_before[b]["files"] - seeded["per_bucket"][b]["replaced"]
                for b in STORED),
            "chunks untouched": all(census_after[b]["chunks"] == census_before[b]["chunks"] for b in STORED),
            "every .files document a whole GridFS file (gridfs_spec)": checks["invalid_count"] == 0,
            "bytes by the documented rule = seeded": checks["wrong_count"] == 0,
            "every record's length = its bytes' (no length 0)": checks["zero_records"] == 0
            and checks["length_mismatches"] == 0,
            "second run exit 0, migrated 0": second["exit"] == 0
            and "migrated 0 image records" in second["output"],
            "second run changed nothing (digest of every bucket document)": unchanged,
        }
        if dry_unchanged is not None:
            ok["dry run changed nothing (digest of every bucket document)"] = dry_unchanged
        if spec_before is not None:
            # A head of length 0 and no chunk is a whole (empty) GridFS file by the specification.
            ok["before: the chunkless heads but those of length 0 are the invalid GridFS files"] = (
                spec_before == replaced - zero)
        if fsck is not None:
            ok["fsck: 0 with problems"] = fsck["exit"] == 0 and " 0 with problems" in fsck["output"]
        result = {"seeded": {**seeded, "replaced": replaced, "zero": zero, "heads": heads_seeded},
                  "census_before": census_before, "census_after": census_after,
                  "storage_before": storage_before, "storage_after": storage_after,
                  "dry": {k: v for k, v in dry.items() if k != "output"},
                  "first": first, "second": second, "fsck": fsck, "checks": checks, "ok": ok,
                  "leftover_indexes": leftover_indexes(storage_after)}
    finally:
        database.stop()
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)

    files = result["seeded"]["files"]
    first, second, dry, fsck = result["first"], result["second"], result["dry"], result["fsck"]
    lines = [f"# migrate-media: {'quick' if args.quick else 'full'} run, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    lines.append(f"Seeded (old layout, {result['seeded']['seconds']:.0f} s): "
                 f"{result['seeded']['images']:,} images, {files:,} files documents "
                 f"(heads {result['seeded']['heads']:,}, of which "
                 f"{result['seeded']['replaced']:,} chunkless heads replaced in place and "
                 f"{result['seeded']['zero']:,} of those with length 0), {args.bytes} B per image's bytes, "
                 f"SecantusDB standalone (make run's cache size).")
    lines += ["", "| run | wall | per 100,000 files | job CPU | job peak RSS (wait4's) | database CPU | "
              "database peak RSS | other processes' CPU |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, run in (("migrate-media --dry-run", dry), ("migrate-media", first),
                       ("migrate-media again (nothing to do)", second), ("fsck after", fsck)):
        if run is None:
            continue
        lines.append(f"| {label} | {run['seconds']:.1f} s | {per_100k(run['seconds'], files):.0f} s | "
                     f"{run['cpu']:.1f} s | {run['peak_rss_mb']:.0f} MB ({run['wait4_maxrss_mb']:.0f}) | "
                     f"{run['db_cpu']:.1f} s | "
                     f"{run['db_peak_rss_mb']:.0f} MB | {run['others_cores']:.2f} cores |")
    lines += ["", "Phases of `migrate-media` (when each progress label appeared, s from start): "
              + "; ".join(f"{t:.1f} s {text}" for t, text in first["phases"])
              + f"; exit {first['seconds']:.1f} s."]
    lines += ["", "| bucket | files before | files after | heads before | heads after | records after "
              "| chunks |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for bucket in STORED:
        b, a = result["census_before"][bucket], result["census_after"][bucket]
        lines.append(f"| {bucket} | {b['files']:,} | {a['files']:,} | {b['heads']:,} | {a['heads']:,} | "
                     f"{a['records']:,} | {b['chunks']:,} -> {a['chunks']:,} |")
    lines += ["", "| storage | before | after |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |"
              for a, b, c in storage_rows(result["storage_before"], result["storage_after"], files)]
    left = result["leftover_indexes"]
    lines += ["", f"The records' indexes left on `<bucket>.files` after the migration: {len(left)}, "
              f"{mb(sum(left.values()))} ({', '.join(sorted(left))})."]
    for name, stats in result["storage_before"]["collections"].items():
        after = result["storage_after"]["collections"].get(name) or {"indexes": {}}
        gone = sorted(set(stats["indexes"]) - set(after["indexes"]))
        new = sorted(set(after["indexes"]) - set(stats["indexes"]))
        if gone or new:
            lines.append(f"- `{name}`: indexes gone {gone or '-'}, new {new or '-'}.")
    lines += ["", "| check | passed |", "| --- | --- |"]
    lines += [f"| {name} | {'yes' if passed else '**no**'} |" for name, passed in result["ok"].items()]
    checks = result["checks"]
    lines += ["", f"Bytes read by the rule: {checks['read']:,} images; GridFS spec check of every files "
              f"document {checks['spec_seconds']:.1f} s."]
    for problem in checks["invalid"] + checks["wrong"]:
        lines.append(f"- {problem}")
    said = [line for line in first["output"].splitlines() if line.strip()]
    lines += ["", "migrate-media said:", "", *(f"    {line}" for line in said[-8:])]
    if fsck is not None:
        said = [line for line in fsck["output"].splitlines() if line.strip()] or [""]
        lines += ["", "fsck said: " + said[-1][:300]]
    lines += ["", f"Load average at start {load_start}, at end {load_end} (2 cores, shared). Busiest "
              f"processes by ps %CPU (over each one's life) at start: {busy_start}; at end: {busy_end}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        print(json.dumps({"ok": result["ok"], "seeded": result["seeded"], "first": {
            k: v for k, v in first.items() if k != "phases"}, "checks": checks}, default=str))


if __name__ == "__main__":
    main()
