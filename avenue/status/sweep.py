"""The status sweep: the expensive lists, read in bounded memory, one worker at a time.

What products-status and storage-status cannot count as they go (references to missing files,
orphans, listed variants whose file is gone, legacy paths and what of the old uploads folder is
not imported yet) comes from this background pass, which also reconciles the counters
(:mod:`avenue.status.counters`, :mod:`avenue.media.effects.counters`). Its result is one document in
``status_reports`` (``_id: "sweep"``) every worker reads, with its age.

How it stays bounded at any size:

- It reads each phase through one cursor (:func:`documents`), ``batch`` documents at a time:
  products by ``_id``, of the products bucket only the originals, newest first on their list
  index; after each batch it checkpoints the last position, and a resumed sweep opens a new
  cursor after it. (One cursor, not a query per batch: the embedded database materialises
  every index entry a query's bounds match before it limits, which made a query per batch
  quadratic there.) No batch holds more than ``batch`` documents. The cross checks are per
  batch, against indexes: the batch's referenced image ids with an ``$in`` on the image
  records' ``_id``, the batch's originals with an ``$in`` on the products' ``images.id`` index
  and the legacy paths' ``{bucket, file_id}`` index, the batch's listed variant ids on the
  files' ``_id`` (each ``$in`` at most :data:`IN_BATCH` ids: the embedded database's cost
  grows with the square of an ``$in``'s length). No set of every id exists.
- What it keeps between batches is counts and lists cut at :data:`LIST_LIMIT` entries.

Phases, in order: ``products`` (products: reference totals, legacy references, references to
missing files), ``files`` (the products bucket: orphans, missing variants), ``legacy`` (the old
uploads folder, when configured), then the counters are reconciled and the result saved.

Write order and leases (one sweep at a time over every worker and machine):

- A sweep runs only under the lease in the sweep document (``lease_owner``/``lease_until``),
  taken by a conditional update that matches only a free or lapsed lease.
- A heartbeat thread renews the lease every ``renew_seconds`` while the sweep runs (the lease
  and its heartbeat are :class:`avenue.leases.Lease`).
- After every batch the checkpoint (phase, last position, sums and lists so far) is
  written with a filter on our own ``lease_owner``. If that write matches nothing, another
  worker took the lease over (ours lapsed): this sweep stops at once without writing anything
  else, and the other one continues from the last checkpoint.
- A sweep that dies (process killed, database error) leaves its checkpoint; the next sweep,
  here or anywhere, resumes from it once the lease lapses. A sweep that fails with an error
  gives its lease back at once.
- The result replaces the previous one in the same write that clears the checkpoint and the
  lease (filtered on our lease): readers see either the old result or the new one.
- The checkpoint also holds the product counters' ``version`` read before the first product
  batch: the product recount is applied only if no product write landed since.

A snapshot is a fuzzy picture: documents written while the sweep runs may or may not be in
it. Its lists are as old as its ``generated_at`` says; the counts in the reports are not
(they come from the counters, exact as of the last write).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from avenue import background
from avenue.clock import as_utc, isoformat, now
from avenue.config import DEFAULTS
from avenue.db import AUDIT_LIST, LEGACY_PATHS, PRODUCT_LIST, Document
from avenue.dialect import dialect_of, threads_safe
from avenue.embedded.fences import build_fences
from avenue.ids import parse_object_id
from avenue.leases import Lease
from avenue.media import Buckets, Image
from avenue.media.maintenance import Figures, References, Referrers
from avenue.status import counters

log = logging.getLogger(__name__)

COLLECTION = "status_reports"
SWEEP_ID = "sweep"
LIST_LIMIT = 100  # entries per list; counts are always complete
IN_BATCH = 50  # ids per $in lookup (the embedded database: 1,000 ids cost 4 s in one $in, 0.4 s in 50s)
PHASES = ("products", "files", "legacy")
# What a checkpoint's position is (the products' owner's ``position``: a sku on the embedded
# database since 2; an ``_id`` before): a checkpoint of another kind starts the sweep over.
POSITIONS = 2
# The lists the API pages through, whose fences the sweep's last step builds on the embedded database.
FENCED = (PRODUCT_LIST, AUDIT_LIST, *Figures.LISTS)
# Fence windows a read as the sweep samples the next fences (about 256 entries): 16 read
# 4,096 in 0.7 s on the embedded database, every request of make run waiting.
SWEEP_WINDOWS = 1
_threads: list[threading.Thread] = []  # sweeps started in the background here (tests join them)


class LeaseLost(Exception):
    """Another worker took the sweep over (ours lapsed): stop without writing."""


@dataclass(frozen=True)
class Settings:
    """How a sweep runs (from the app's configuration: :func:`settings_from_config`)."""

    batch: int = 1000  # documents per read
    lease_seconds: float = 60.0  # a sweeper that stopped renewing frees the sweep after this
    renew_seconds: float = 15.0  # how often a running sweep renews its lease
    interval_seconds: float = 900.0  # a result older than this is swept again
    legacy_dir: str = ""  # the old uploads folder, if one is configured


def settings_from_config(config: Any) -> Settings:
    """The sweep settings an app is configured with (a key it lacks: the declared default)."""
    def setting(name: str) -> Any:
        return config.get(name, DEFAULTS[name])

    lease = float(setting("AVENUE_STATUS_SWEEP_LEASE_SECONDS"))
    return Settings(batch=max(1, int(setting("AVENUE_STATUS_SWEEP_BATCH"))),
                    lease_seconds=lease, renew_seconds=lease / 4,
                    interval_seconds=float(setting("AVENUE_STATUS_SWEEP_SECONDS")),
                    legacy_dir=config.get("AVENUE_LEGACY_UPLOADS_DIR") or "")


def _owner() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{threading.get_ident()}"


def _listing() -> dict[str, Any]:
    return {"count": 0, "items": []}


def _add(listing: dict[str, Any], item: Any) -> None:
    listing["count"] += 1
    if len(listing["items"]) < LIST_LIMIT:
        listing["items"].append(item)


def _fresh_state(db: Database[Document], settings: Settings) -> dict[str, Any]:
    return {
        "started_at": now(), "phase": PHASES[0], "after": None, "batches": 0, "documents": 0,
        "resumed": 0, "legacy_dir": settings.legacy_dir, "positions": POSITIONS,
        "products_version": counters.product_counters(db)["version"],
        "product_sums": dict.fromkeys(counters.FIELDS, 0),
        "missing_files": _listing(), "local_filesystem": _listing(), "external": _listing(),
        "orphans": {**_listing(), "bytes": 0, "legacy_redirects": 0},
        "missing_variants": _listing(), "stored_images": 0, "references_repaired": 0,
        "legacy": {"files": 0, "bytes": 0, "imported": 0, "not_imported": 0, "not_imported_bytes": 0,
                   "not_imported_items": []},
    }


def _as_oid(value: Any) -> Any:
    """A stored reference's id as an ObjectId (old documents may hold it as a string)."""
    return parse_object_id(value) if isinstance(value, str) else value


def _in_batches(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), IN_BATCH):
        yield values[start:start + IN_BATCH]


def _existing(db: Database[Document], ids: list[Any]) -> set[Any]:
    """Which of ``ids`` name a files document of the products bucket (``$in`` on ``_id``)."""
    return Figures(db).existing_ids(Buckets.PRODUCTS, ids)


def _existing_images(db: Database[Document], ids: list[Any]) -> set[Any]:
    """Which of ``ids`` name an image of the products bucket: its record (``$in`` on ``_id``),
    not the file under its id (an image replaced in place keeps its id, not that file)."""
    return Figures(db).existing_images(Buckets.PRODUCTS, ids)


def _products(refs: Referrers) -> References:
    """The owner of the products the sweep reads (the shop's, avenue/shop/references.py)."""
    return refs.of("products")


def documents(db: Database[Document], settings: Settings, phase: str, after: Any,
              refs: Referrers) -> Iterator[dict[str, Any]]:
    """Everything ``phase`` reads after ``after``, in order, through one cursor (per range):

    - ``products``: every product by ``_id``, as its owner in ``refs`` walks them (``name``:
      the sku);
    - ``files``: only the products bucket's originals (its image records), newest first, after
      the last one's ``[uploadDate, _id]`` (their 8 variants each, files of the bucket, are
      checked through the original's list, never read one by one);
    - ``legacy``: the old uploads folder's files by path (``{"_id": parts, "size": bytes}``).

    One cursor a phase, consumed a batch at a time, rather than a query per batch: the
    embedded database materialises every index entry a query's bounds match before it
    limits, so a query per batch made a sweep quadratic there (110 documents a second at a
    million files). A resumed sweep opens a new cursor after its checkpoint.
    """
    if phase == "products":
        yield from _products(refs).walk(after, settings.batch)
    elif phase == "files":
        yield from Figures(db).originals_newest_first(Buckets.PRODUCTS, after, settings.batch)
    else:
        root = Path(settings.legacy_dir) if settings.legacy_dir else None
        if root is not None and root.is_dir():
            for parts, size in legacy_files(root, after):
                yield {"_id": parts, "size": size}


def next_batch(source: Iterator[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """The next ``size`` documents of a phase (tests hook in here to see every batch)."""
    return list(itertools.islice(source, size))


def _products_batch(db: Database[Document], state: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    refs: list[tuple[Any, Any, Any]] = []  # (file id, sku, filename)
    for product in docs:
        for name, value in counters.product_figures(product).items():
            state["product_sums"][name] += value
        images = product.get("images")
        for entry in images if isinstance(images, list) else []:
            if isinstance(entry, str):
                kind = "local_filesystem" if entry.startswith(Buckets.LEGACY_PREFIX) else "external"
                _add(state[kind], {"sku": product.get("name"), "reference": entry})
            elif isinstance(entry, dict) and "id" in entry:
                refs.append((_as_oid(entry["id"]), product.get("name"), entry.get("filename")))
    present = _existing_images(db, [file_id for file_id, _, _ in refs if file_id is not None])
    for file_id, sku, filename in refs:
        if file_id not in present:
            _add(state["missing_files"], {"sku": sku, "reference": str(file_id), "filename": filename})


def _listed_variants(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    listed = (doc.get("metadata") or {}).get("variants") or {}
    return [(f"{name}.{fmt}", _as_oid(listed[name][fmt]["id"])) for name, fmt in Figures.VARIANT_PATHS
            if isinstance(listed.get(name), dict) and isinstance(listed[name].get(fmt), dict)
            and "id" in listed[name][fmt]
            # Pending: listed before it is rendered (after the upload's answer), not missing.
            and not listed[name][fmt].get("pending")]


def _referencing(refs: Referrers, originals: dict[Any, dict[str, Any]]) -> tuple[
        dict[Any, set[str]], int]:
    """The skus of the products that reference each original (by id, stored as ObjectId or
    string), asked of their owner by the ``images.id`` index; and how many stale references
    were repaired.

    A reference is stale when it describes another version than the image has: a replace in
    place (avenue/media/store/replace.py) switches the image first and updates the products that
    use it next, so a process that died in between leaves their references on the earlier
    version, whose URLs only redirect for a while. The owner's repair
    (``References.refresh``) is a compare-and-set on the version the reference holds: a
    newer replace's own update is never undone."""
    owner = _products(refs)
    users: dict[Any, set[str]] = {}
    repaired = 0
    ids = list(originals)
    for part in _in_batches(ids):
        found = owner.users(part, text_ids=True)
        for oid, names in found.items():
            users.setdefault(oid, set()).update(names)
        repaired += owner.refresh([Image.from_files_doc(Buckets.PRODUCTS, originals[oid]) for oid in part
                                   if oid in found])
    return users, repaired


def _files_batch(db: Database[Document], refs: Referrers, state: dict[str, Any],
                 docs: list[dict[str, Any]]) -> None:
    originals = [doc for doc in docs if (doc.get("metadata") or {}).get("role") == "original"]
    if not originals:
        return
    state["stored_images"] += len(originals)
    users, repaired = _referencing(refs, {doc["_id"]: doc for doc in originals})
    state["references_repaired"] = state.get("references_repaired", 0) + repaired  # older checkpoints lack it
    orphans = [doc for doc in originals if doc["_id"] not in users]
    redirected: set[Any] = set()
    for part in _in_batches([doc["_id"] for doc in orphans]):
        redirected.update(doc.get("file_id") for doc in db[LEGACY_PATHS].find(
            {"bucket": Buckets.PRODUCTS, "file_id": {"$in": part}}, {"_id": 0, "file_id": 1}))
    for doc in orphans:
        # A record's length is its current bytes' (the file metadata.content names, else the
        # one under its id), as an upload and a replace write it.
        state["orphans"]["bytes"] += int(doc.get("length") or 0)
        state["orphans"]["legacy_redirects"] += doc["_id"] in redirected
        _add(state["orphans"], {"id": str(doc["_id"]), "filename": doc.get("filename"),
                                "bytes": doc.get("length"), "uploaded_at": isoformat(doc.get("uploadDate")),
                                "legacy_redirect": doc["_id"] in redirected})
    listed = {doc["_id"]: _listed_variants(doc) for doc in originals}
    present = _existing(db, [vid for entries in listed.values() for _, vid in entries])
    for original_id, entries in listed.items():
        gone = sorted(name for name, vid in entries if vid not in present)
        if gone:
            _add(state["missing_variants"], {"id": str(original_id), "missing": gone,
                                             "skus": sorted(users.get(original_id, set()))})


def legacy_files(root: Path, after: list[str] | None = None) -> Iterator[tuple[list[str], int]]:
    """Every file under ``root`` as (path parts, size), ordered by its parts, starting after
    ``after``; one folder's listing in memory at a time."""
    def walk(folder: Path, parts: list[str]) -> Iterator[tuple[list[str], int]]:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            path = [*parts, entry.name]
            if after is not None and path < after[:len(path)]:
                continue  # before the checkpoint, and so is everything under it
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from walk(Path(entry.path), path)
                elif entry.is_file(follow_symlinks=False) and (after is None or path > after):
                    yield path, entry.stat().st_size
            except OSError:
                continue  # removed while we walked
    yield from walk(root, [])


def _legacy_batch(db: Database[Document], state: dict[str, Any], files: list[tuple[list[str], int]]) -> None:
    paths = [Buckets.LEGACY_PREFIX + "/".join(parts) for parts, _ in files]
    recorded: set[Any] = set()
    for part in _in_batches(paths):
        recorded.update(doc.get("path") for doc in db[LEGACY_PATHS].find({"path": {"$in": part}},
                                                                         {"_id": 0, "path": 1}))
    legacy = state["legacy"]
    for path, (_, size) in zip(paths, files, strict=True):
        legacy["files"] += 1
        legacy["bytes"] += size
        if path in recorded:
            legacy["imported"] += 1
        else:
            legacy["not_imported"] += 1
            legacy["not_imported_bytes"] += size
            if len(legacy["not_imported_items"]) < LIST_LIMIT:
                legacy["not_imported_items"].append(path)


# --- the sweep document -------------------------------------------------------------------


def read(db: Database[Document]) -> dict[str, Any] | None:
    """The sweep document: the last ``result``, the running sweep's checkpoint and lease."""
    return db[COLLECTION].find_one({"_id": SWEEP_ID})


def _lease(db: Database[Document], owner: str, settings: Settings) -> Lease:
    """The sweep's lease: fields of the sweep document, which also holds the result."""
    return Lease(db[COLLECTION], SWEEP_ID, owner, settings.lease_seconds, owner_field="lease_owner",
                 until_field="lease_until", keep_document=True)


def take_lease(db: Database[Document], owner: str, settings: Settings) -> bool:
    """Lease the sweep for ``owner`` unless someone else holds a live lease."""
    return _lease(db, owner, settings).take()


class _Run:
    """One sweep holding the lease: checkpoints, and the heartbeat that renews the lease."""

    def __init__(self, db: Database[Document], lease: Lease, settings: Settings) -> None:
        self.db, self.lease, self.owner, self.settings = db, lease, lease.owner, settings

    @property
    def renewals(self) -> int:
        return self.lease.renewals

    def checkpoint(self, state: dict[str, Any]) -> None:
        """Save where we are. LeaseLost if the lease is not ours any more."""
        with self.lease.writing:
            saved = self.db[COLLECTION].update_one(self.lease.mine(), {"$set": {"run": state}})
        if saved.matched_count != 1:
            raise LeaseLost(f"the sweep lease of {self.owner} was taken over")
        batch_done(state)

    def heartbeat(self) -> contextlib.AbstractContextManager[None]:
        """Renew the lease from a thread every ``renew_seconds`` (or a quarter of the lease, if
        that is longer) while the sweep runs, whatever it is doing: the steps with no checkpoint inside keep
        it however long they take, the buckets' server-side recounts (most of the 166 s a sweep
        spent outside its batches at a million files on the embedded database,
        bench/results/scale-2026-11-23.md, against a 60 s lease) and a list's fences. Renewed
        only at checkpoints, the lease could lapse there and another worker take the sweep
        over, and at that size the workers could keep taking it from one another. A lease
        found taken over stops the heartbeat; the next checkpoint stops the sweep."""
        interval = max(self.settings.renew_seconds, self.settings.lease_seconds / 4)
        return self.lease.kept(interval, "status-sweep-lease")


def batch_done(state: dict[str, Any]) -> None:
    """Called after each checkpoint (tests hook in here to interrupt or slow a sweep)."""


def run(db: Database[Document], settings: Settings, *, refs: Referrers,
        owner: str | None = None) -> dict[str, Any] | None:
    """Run (or resume) a sweep if its lease is free; returns the result saved, or None when
    another worker holds the lease. ``refs``: who refers to images (the app's owners of
    referring documents, ``app_media(app).referrers(db)``: the sweep is handed them, as its
    thread has no app)."""
    lease = _lease(db, owner or _owner(), settings)
    if not lease.take():
        return None
    sweep = _Run(db, lease, settings)
    try:
        with sweep.heartbeat():
            return _sweep(db, settings, sweep, refs)
    except LeaseLost:
        log.warning("status sweep stopped: another worker took its lease over")
        return None
    except BaseException:
        lease.release()  # the checkpoint stays; the next sweep resumes from it
        raise


def _sweep(db: Database[Document], settings: Settings, sweep: _Run, refs: Referrers) -> dict[str, Any]:
    doc = read(db) or {}
    state = doc.get("run")
    if (not state or state.get("legacy_dir") != settings.legacy_dir
            or state.get("positions") != POSITIONS):
        state = _fresh_state(db, settings)
    else:
        state["resumed"] += 1
    started = time.perf_counter()
    source: Iterator[dict[str, Any]] | None = None
    source_phase = None
    try:
        while state["phase"] != "done":
            phase = state["phase"]
            if source is None or phase != source_phase:
                source, source_phase = documents(db, settings, phase, state["after"], refs), phase
            docs = next_batch(source, settings.batch)
            if phase == "products":
                _products_batch(db, state, docs)
            elif phase == "files":
                _files_batch(db, refs, state, docs)
            else:
                _legacy_batch(db, state, [(doc["_id"], doc["size"]) for doc in docs])
            state["batches"] += 1
            state["documents"] += len(docs)
            if len(docs) < settings.batch:
                following = PHASES.index(phase) + 1
                state["phase"] = PHASES[following] if following < len(PHASES) else "done"
                state["after"] = None
            elif phase == "files":
                state["after"] = [docs[-1].get("uploadDate"), docs[-1]["_id"]]
            elif phase == "products":
                state["after"] = docs[-1]["position"]
            else:
                state["after"] = docs[-1]["_id"]
            if state["phase"] == "done":
                break
            sweep.checkpoint(state)
    finally:
        if isinstance(source, Generator):
            source.close()  # closes the phase's cursor
    state["fences"] = _build_fences(db, sweep, state)
    return _finish(db, settings, sweep, state, time.perf_counter() - started)


def _build_fences(db: Database[Document], sweep: _Run, state: dict[str, Any]) -> dict[str, Any]:
    """Sample the fences of every list the API pages through (avenue/embedded/fences.py), with
    a checkpoint after each (the heartbeat keeps the lease meanwhile), where the dialect reads
    lists between fences (``Dialect.whole_collection_reads`` false; elsewhere one cursor reads
    a page and nothing is built). A list whose build fails keeps its previous fences: they are
    hints, so the failure is logged and reported, and the lists stay correct."""
    built: dict[str, Any] = {}
    if dialect_of(db).whole_collection_reads:
        return built
    for listed in FENCED:
        started = time.perf_counter()
        try:
            built[listed.collection] = {**build_fences(db, listed, joined=SWEEP_WINDOWS),
                                        "seconds": round(time.perf_counter() - started, 3)}
        except PyMongoError as error:
            log.warning("fences of %s not rebuilt (%s): its lists use the previous ones",
                        listed.collection, error)
            built[listed.collection] = {"error": str(error)[:200]}
        sweep.checkpoint({**state, "fences": built})
    return built


def _finish(db: Database[Document], settings: Settings, sweep: _Run, state: dict[str, Any],
            seconds: float) -> dict[str, Any]:
    products = counters.replace_products(db, state["product_sums"], state["products_version"])
    buckets = Figures(db).recount_media()  # the renditions' running total too: the byte budget evicts by it
    moment = now()
    result = {
        "generated_at": moment, "started_at": state["started_at"],
        "duration_seconds": round((moment - as_utc(state["started_at"])).total_seconds(), 3),
        "run_seconds": round(seconds, 3), "batches": state["batches"], "documents": state["documents"],
        "batch_size": settings.batch, "resumed": state["resumed"], "lease_renewals": sweep.renewals,
        "references_repaired": state.get("references_repaired", 0),
        **{key: state[key] for key in ("missing_files", "local_filesystem", "external", "orphans",
                                       "missing_variants", "stored_images")},
        "legacy": {**state["legacy"], "path": settings.legacy_dir} if settings.legacy_dir else None,
        "reconciled": {"products": products, **buckets},
        "fences": state.get("fences", {}),
    }
    lease = sweep.lease
    with lease.writing:
        saved = db[COLLECTION].update_one(
            lease.mine(), {"$set": {"result": result}, "$unset": {
                "run": "", lease.owner_field: "", lease.until_field: "", "requested_at": ""}})
    if saved.matched_count != 1:
        raise LeaseLost(f"the sweep lease of {sweep.owner} was taken over before its result was saved")
    return result


# --- when sweeps run ----------------------------------------------------------------------


def request(db: Database[Document]) -> None:
    """Ask for a sweep soon (``?refresh=1``, an ops command that changed a lot): the next
    scheduler tick of any worker starts it."""
    db[COLLECTION].update_one({"_id": SWEEP_ID}, {"$set": {"requested_at": now()}}, upsert=True)


def due(doc: dict[str, Any] | None, settings: Settings, moment: dt.datetime | None = None) -> bool:
    """Whether a sweep should start: none finished yet, the last one is older than the
    interval, one was requested since, or a checkpoint waits whose lease lapsed."""
    moment = moment or now()
    if doc is None:
        return True
    lease = doc.get("lease_until")
    if lease is not None and as_utc(lease) > moment:
        return False  # one is running
    result = doc.get("result")
    if doc.get("run") or result is None:
        return True
    generated = as_utc(result["generated_at"])
    requested = doc.get("requested_at")
    return ((moment - generated).total_seconds() >= settings.interval_seconds
            or (requested is not None and as_utc(requested) >= generated))


def run_in_background(db: Database[Document], settings: Settings, refs: Referrers) -> threading.Thread:
    """:func:`run` in a daemon thread (a request never sweeps itself), handed ``refs``. Where
    threads cannot share the database (``Dialect.threads_safe``: mongomock), joined before
    this returns: run beside the request, it raced the request's own writes into a 500."""
    def target() -> None:
        try:
            run(db, settings, refs=refs)
        except Exception:  # the checkpoint stays; the next due check resumes it
            log.exception("the status sweep failed")

    thread = background.spawn("status-sweep", target)
    _threads.append(thread)
    del _threads[:-8]
    if not threads_safe(db):
        thread.join()
    return thread


class Scheduler(background.PeriodicJob):
    """A daemon thread that looks every ``tick_seconds`` whether a sweep is due and runs it
    here if this worker gets the lease (the app server starts one per worker)."""

    def __init__(self, db: Database[Document], settings: Settings, refs: Referrers, tick_seconds: float = 5.0,
                 prepare: Callable[[], None] | None = None) -> None:
        # A database outage fails the tick: logged, the next tick tries again.
        super().__init__("status-sweep-scheduler", self._tick, every=tick_seconds,
                         failure="the status sweep scheduler's tick failed")
        self.db, self.settings, self.tick_seconds = db, settings, tick_seconds
        self.refs = refs  # who refers to images: the app's owners, handed in as it starts
        # Ensuring the indexes, before each tick (a no-op once done): a sweep on a fresh
        # database must not run before them (its fences hint indexes by name), and a worker
        # that started while the database was down has none yet either.
        self.prepare = prepare

    def _tick(self) -> None:
        if self.prepare is not None:
            self.prepare()
        if due(read(self.db), self.settings):
            run(self.db, self.settings, refs=self.refs)


def schedule(db: Database[Document], settings: Settings, refs: Referrers, tick_seconds: float = 5.0,
             prepare: Callable[[], None] | None = None) -> Scheduler:
    """Start a :class:`Scheduler` for this worker, its sweeps handed ``refs`` (``prepare``
    runs before each tick)."""
    scheduler = Scheduler(db, settings, refs, tick_seconds, prepare)
    scheduler.start()
    return scheduler


def wait_for_sweeps(timeout: float = 30.0) -> None:
    """Join the sweeps started in the background here (tests and CLI use)."""
    for thread in list(_threads):
        if thread.name == "status-sweep":
            thread.join(timeout)


def meta(doc: dict[str, Any] | None, settings: Settings, moment: dt.datetime) -> dict[str, Any]:
    """The ``sweep`` block of a report: how old its lists are and whether one is running."""
    doc = doc or {}
    result = doc.get("result") or {}
    lease = doc.get("lease_until")
    running = lease is not None and as_utc(lease) > moment
    run_state = doc.get("run") or {}
    generated = result.get("generated_at")
    return {
        "generated_at": isoformat(generated) if generated else None,
        "age_seconds": round((moment - as_utc(generated)).total_seconds(), 1) if generated else None,
        "duration_seconds": result.get("duration_seconds"),
        "documents": result.get("documents"),
        "running": running,
        "progress": ({"phase": run_state.get("phase"), "documents": run_state.get("documents"),
                      "started_at": isoformat(run_state.get("started_at"))} if run_state else None),
        "requested": doc.get("requested_at") is not None,
        "interval_seconds": settings.interval_seconds,
        "batch_size": settings.batch,
    }
