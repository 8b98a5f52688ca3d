"""The database's dialect: what the app does differently on each kind of server, as one policy.

The app runs on mongod (standalone, a replica set, or a sharded cluster through mongos), on
the embedded SecantusDB that ``make run`` starts (a MongoDB-wire-compatible server in one
Python process over WiredTiger: docs/production.md "The embedded database"), and in the
tests on mongomock (in memory, in-process). Where it acts differently on one of them, the
difference is a named rule of :class:`Dialect`, each documented below with the measurement
or the documented difference that made it, and the code asks the rule
(``dialect_of(db).ttl_indexes``), never which server it is. The table of rules is in
docs/architecture.md ("The database's dialect").

Which dialect is detected once per client and remembered on it (:func:`dialect_of`: mongomock
by its client's class, without a command; a server by its ``buildInfo``, SecantusDB's carrying
``secantusVersion``, and the topology pymongo found in answering it). Each process detects it
as it prepares the database (``avenue.db.Mongo.ensure_indexes``, as a worker starts) and logs
it there. The same ``buildInfo`` says whether a mongod is below what production runs on
(:func:`below_minimum`: the start's warning line, storage-status's ``server_warning``). What
only the embedded database needs lives in its wing (avenue/embedded/), chosen here
(:func:`lister`). A foundation module (no Flask), so that avenue.indexes can ask it as
avenue.db does.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import pymongo
from pymongo.database import Database

from avenue import paging
from avenue.embedded import listing

Document = dict[str, Any]
T = TypeVar("T")
_REMEMBERING = threading.Lock()
#: What SecantusDB adds to ``buildInfo`` (its own version beside the MongoDB one it reports).
EMBEDDED_MARK = "secantusVersion"


@dataclass(frozen=True)
class Dialect:
    """One kind of server's rules: each field is one decision the app makes differently there."""

    #: The kind of server, for the start's log line and the docs' table.
    name: str
    #: Whether a TTL index is created as declared (``expireAfterSeconds``) and the server's TTL
    #: monitor expires its documents. False on SecantusDB: its TTL sweeper, a thread with a
    #: WiredTiger session of its own, walks every document of each collection with a TTL
    #: index under the store's one lock every 60 s and parked its session between sweeps in
    #: the wedges py-spy caught (bench/results/embedded-2026-11-25-wedge-pyspy.txt); there the
    #: indexes are plain and the app deletes what expired, once a minute (avenue/embedded/expiry.py).
    ttl_indexes: bool
    #: Chunks per insert command (None: all of an upload's chunks in one command, which pymongo
    #: splits under the 48 MB message limit; avenue/media/store/storage.py). 4 on SecantusDB
    #: (about 1 MB): it writes an insert's documents and their oplog copies in one WiredTiger
    #: transaction per 4 MB, prunes the oplog inside it, and holds its store's lock throughout;
    #: several such transactions at once drew their threads into WiredTiger's eviction waiting
    #: for room only they could free, every other connection waiting on the lock (the deadlock
    #: of docs/production.md). In its reproduction (bench/embedded_stall.py, an 80M cache to
    #: make it quick) whole-file inserts wedged it within 1-8 s in 10 of 10 runs, whatever the
    #: pool size, the change stream or the oplog's bounds; 4 chunks per insert, or one, ran
    #: 180 s without a stall in 4 of 4 runs (1 of 2 wedged with a 64M cache: more room, not a
    #: guarantee).
    write_batch: int | None
    #: Whether ``AVENUE_DELETIONS_STREAM=auto`` opens a change stream for the media cache's
    #: deletions. False on SecantusDB: its change stream reads every oplog entry, each
    #: upload's 255 KB chunks included, under the lock every other operation waits for (one of
    #: the two stacks its deadlock was caught in). A server without change streams (a
    #: standalone mongod, mongomock) refuses the stream it is asked for, and the cache polls
    #: (avenue/media/serve/cache.py).
    deletions_stream: bool
    #: Whether one operation may read a whole collection (a ``$group`` over a bucket's files,
    #: one cursor over every original or product). False on SecantusDB, where make run reaches
    #: the server over one connection and every request waits behind the operation in
    #: flight: there such reads go a window between the fences at a time (:func:`lister`).
    #: Measured there: a ``$group`` over a products bucket's 225,459 files held that connection
    #: 9.9 s, the facets' two ``$group``s over 37,575 files 1.3 s each, one cursor over 25,000
    #: originals 3.3 s, over 12,525 products 2.3 s
    #: (bench/results/scale-2026-11-26-status-during-sweep-relay.md).
    whole_collection_reads: bool
    #: Whether two operations of the app run on the server at once. False on SecantusDB, which
    #: runs every operation under one lock: an upload's near-duplicate lookup begun beside its
    #: writes only made them queue behind it (writes of 22 ms answered after the whole 98 ms
    #: lookup, bench/results/near-duplicates-*.md), so there it begins once they are done and
    #: the answer does not wait for it (avenue/media/store/near_duplicates.py).
    concurrent_operations: bool
    #: Whether the database may be used from several threads at once. False on mongomock, which
    #: is not thread-safe: work that would run beside a request runs on its thread there.
    threads_safe: bool
    #: Whether the server answers its own commands (``buildInfo``, ``serverStatus``,
    #: ``dbStats``). False on mongomock, which implements none of them: storage-status says so
    #: instead of asking (avenue/status/storage.py).
    server_commands: bool
    #: Whether storage-status may send ``dbStats``. False on SecantusDB: it reads every
    #: document of every collection under the lock every other operation needs (3.4 s at
    #: 21,000 files documents, bench/scale.py; one sent during a soak held every request 15 s,
    #: bench/results/embedded-2026-11-26-soak-fences-60.md), and its ``storageSize`` is its
    #: ``dataSize`` anyway: its data folder on disk is the real figure.
    db_stats: bool
    #: Whether writes to several collections go to the server in one command (MongoDB 8.0's
    #: ``bulkWrite``, in order, stopping at the first that fails: avenue/writes.py). A cold
    #: rendition's store is its chunks, its files document and its bucket's counters: three
    #: commands otherwise; its claim goes with the hits on the limits of cold renders (a cold
    #: rendition sends 5 commands, 8 without). Measured on SecantusDB (which answers it, wire version 27): 200
    #: such stores took 2.4-3.0 ms of the client's CPU and 15-18 ms each as three commands,
    #: 1.2-1.4 ms and 9 ms as one. mongod has it from 8.0 (:func:`choose` turns it off for an
    #: older server); mongomock has no such command.
    cross_collection_writes: bool

    def rules(self) -> dict[str, Any]:
        """The rules by name (the start's log line; the docs' table)."""
        return {key: value for key, value in asdict(self).items() if key != "name"}


#: mongod standalone: every rule as MongoDB documents it.
MONGOD = Dialect(name="mongod", ttl_indexes=True, write_batch=None, deletions_stream=True,
                 whole_collection_reads=True, concurrent_operations=True,
                 threads_safe=True, server_commands=True, db_stats=True, cross_collection_writes=True)
#: A replica set (Atlas's clusters included): mongod's rules, change streams available.
REPLICA_SET = replace(MONGOD, name="mongod replica set")
#: A sharded cluster through mongos: mongod's rules.
SHARDED = replace(MONGOD, name="mongod sharded cluster (mongos)")
#: The embedded SecantusDB (make run's): one Python lock over its store, one connection (the
#: relay), measured in docs/production.md "The embedded database".
EMBEDDED = Dialect(name="SecantusDB", ttl_indexes=False, write_batch=4, deletions_stream=False,
                   whole_collection_reads=False, concurrent_operations=False,
                   threads_safe=True, server_commands=True, db_stats=False, cross_collection_writes=True)
#: mongomock, the tests' in-memory database: not thread-safe, no server commands, no
#: ``bulkWrite`` of several collections (each collection's writes are sent alone). Its reads
#: and writes are mongod's (it stands in for mongod in the tests); it has no change stream,
#: so the cache's stream is refused and it polls, as on a standalone mongod; and dbStats is
#: sent, answered by nothing (storage-status notes it).
MONGOMOCK = replace(MONGOD, name="mongomock", concurrent_operations=False, threads_safe=False,
                    server_commands=False, cross_collection_writes=False)
DIALECTS = (MONGOD, REPLICA_SET, SHARDED, EMBEDDED, MONGOMOCK)


def is_embedded_build(build: Mapping[str, Any]) -> bool:
    """Whether a ``buildInfo`` answer is SecantusDB's."""
    return EMBEDDED_MARK in build


def choose(build: Mapping[str, Any], topology: str, servers: list[str]) -> Dialect:
    """The dialect of a server that answered ``build`` (its ``buildInfo``) in a topology pymongo
    names ``topology`` (``TopologyDescription.topology_type_name``) of servers of the types
    ``servers`` (each ``ServerDescription.server_type_name``)."""
    if is_embedded_build(build):
        return EMBEDDED
    kind = MONGOD
    # LoadBalanced: mongos routers behind a load balancer (pymongo's load-balanced mode).
    if topology in ("Sharded", "LoadBalanced") or "Mongos" in servers:
        kind = SHARDED
    elif topology.startswith("ReplicaSet") or any(server.startswith("RS") for server in servers):
        kind = REPLICA_SET
    if _major(build) < BULK_WRITE_SINCE:
        return replace(kind, name=f"{kind.name} before {BULK_WRITE_SINCE}.0", cross_collection_writes=False)
    return kind


#: The first major version of mongod with the ``bulkWrite`` command (several collections'
#: writes in one command: ``Dialect.cross_collection_writes``).
BULK_WRITE_SINCE = 8
#: The oldest mongod production runs on (docs/production.md "MongoDB"): the first 8.0 (the
#: first with bulkWrite, :data:`BULK_WRITE_SINCE`) with the fix of CVE-2025-14847.
MINIMUM_SERVER = (8, 0, 17)
#: The first release of each branch with the fix of CVE-2025-14847 ("MongoBleed"): before it,
#: a mongod with zlib network compression enabled (its default compressors include zlib)
#: answers a malformed compressed message with uninitialised heap memory, to any client that
#: can connect, before authentication. A branch without an entry is unfixed when older than
#: the newest here (4.2, 8.1), fixed when newer (released after the fix).
FIXED_SINCE = {(4, 4): (4, 4, 30), (5, 0): (5, 0, 32), (6, 0): (6, 0, 27), (7, 0): (7, 0, 28),
               (8, 0): MINIMUM_SERVER, (8, 2): (8, 2, 3)}


def _version(build: Mapping[str, Any]) -> tuple[int, int, int]:
    """The (major, minor, patch) a ``buildInfo`` answer reports (zeros where it says none)."""
    array = build.get("versionArray")
    if isinstance(array, list | tuple) and len(array) >= 3 and all(isinstance(n, int) for n in array[:3]):
        return array[0], array[1], array[2]
    spelled = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(build.get("version") or ""))  # "8.0.0-rc3"
    major, minor, patch = (int(part or 0) for part in spelled.groups()) if spelled else (0, 0, 0)
    return major, minor, patch


def _major(build: Mapping[str, Any]) -> int:
    """The major version a ``buildInfo`` answer reports (0 when it says none)."""
    return _version(build)[0]


@dataclass(frozen=True)
class BelowMinimum:
    """A server below what production runs on (:data:`MINIMUM_SERVER`), and why that matters."""

    version: str
    minimum: str
    reasons: tuple[str, ...]

    def sentence(self) -> str:
        """The warning as one sentence (storage-status's ``server_warning``)."""
        later = "".join(f", {_dotted(fixed)} or later on {_dotted(branch)}"
                        for branch, fixed in FIXED_SINCE.items() if branch > MINIMUM_SERVER[:2])
        return (f"MongoDB {self.version} is below what production runs on ({self.minimum} or later{later}: "
                "docs/production.md): " + "; ".join(self.reasons) + ".")


def below_minimum(build: Mapping[str, Any] | None) -> BelowMinimum | None:
    """Whether a server that answered ``build`` (its ``buildInfo``) is below what production
    runs on, and why (None: it is not, or it names no version). Never the embedded
    SecantusDB: the version it reports is the MongoDB it imitates, not mongod's code (the CVE
    is in mongod's C++ message compression), and it is the development database
    (docs/production.md "The embedded database"); nor mongomock, which answers no buildInfo."""
    version = _version(build or {})
    if build is None or is_embedded_build(build) or version == (0, 0, 0):
        return None
    reasons = []
    if _leaks(version):
        fixed = FIXED_SINCE.get(version[:2])
        reasons.append("it leaks uninitialised memory to unauthenticated clients through zlib network "
                       "compression (CVE-2025-14847, " + (f"fixed in {_dotted(fixed)}" if fixed else
                                                          f"no {_dotted(version[:2])} release has the fix")
                       + "): until it is upgraded, take zlib out of the server's net.compression.compressors")
    if version[0] < BULK_WRITE_SINCE:
        reasons.append(f"before {BULK_WRITE_SINCE}.0 it has no bulkWrite command: writes to several "
                       "collections go as one command each")
    if not reasons:  # every release before MINIMUM_SERVER has one of these
        return None
    spelled = str(build.get("version") or _dotted(version))
    return BelowMinimum(spelled, _dotted(MINIMUM_SERVER), tuple(reasons))


def _leaks(version: tuple[int, int, int]) -> bool:
    """Whether mongod ``version`` has CVE-2025-14847 (:data:`FIXED_SINCE`)."""
    fixed = FIXED_SINCE.get(version[:2])
    return version < fixed if fixed is not None else version[:2] < max(FIXED_SINCE)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def dialect_of(db: Database[Document]) -> Dialect:
    """``db``'s dialect, detected once per client and remembered on it: mongomock's without a
    command; a server's from its ``buildInfo`` and the topology pymongo found answering it. A
    server that cannot be asked raises ``PyMongoError``, as the operation it precedes would."""
    client = db.client
    known = _known(db)
    if known is None:
        with pymongo.timeout(5.0):
            build = client.admin.command("buildInfo")
        description = client.topology_description
        known = choose(build, description.topology_type_name,
                       [server.server_type_name for server in description.server_descriptions().values()])
        client._avenue_build = dict(build)  # type: ignore[attr-defined]  # detected_build's
        client._avenue_dialect = known  # type: ignore[attr-defined]
    return known


def detected_build(db: Database[Document]) -> Mapping[str, Any] | None:
    """The ``buildInfo`` answer :func:`dialect_of` detected ``db``'s dialect by, without a
    command (None: not detected yet on this client, or mongomock, which has none)."""
    build: Mapping[str, Any] | None = vars(db.client).get("_avenue_build")  # see _known
    return build


def _known(db: Database[Document]) -> Dialect | None:
    """``db``'s dialect if it is known without a command: mongomock's, or the one detected
    before on this client."""
    if type(db.client).__module__.split(".", 1)[0] == "mongomock":
        return MONGOMOCK
    # vars, not getattr: a client's attributes are its databases.
    known: Dialect | None = vars(db.client).get("_avenue_dialect")
    return known


def threads_safe(db: Database[Document]) -> bool:
    """``Dialect.threads_safe`` without a command: a property of the client, not the server
    (mongomock's is not thread-safe, every server's client is), so it is known, and answered,
    even while the server cannot be asked (a status call during an outage answers from what it
    held instead of waiting on a detection)."""
    return (_known(db) or MONGOD).threads_safe


def server_commands(db: Database[Document]) -> bool:
    """``Dialect.server_commands`` without a command (mongomock implements none; every server
    answers its own), as :func:`threads_safe`."""
    return (_known(db) or MONGOD).server_commands


def lister(db: Database[Document]) -> paging.Lister:
    """How ``db``'s lists are paged: one cursor a page (``avenue.paging.fetch``) where one
    operation may read a whole collection, else window by window between fences
    (``avenue.embedded.listing.fetch``: ``Dialect.whole_collection_reads``)."""
    return paging.fetch if dialect_of(db).whole_collection_reads else listing.fetch


def remembered(db: Database[Document], key: str, seconds: float, ask: Callable[[], T | None]) -> T | None:
    """What ``ask()`` answered about ``db``'s server within the last ``seconds``, remembered
    on its client (as :func:`dialect_of` remembers its answer); asked again past that. A None
    answer (the server could not say) is not remembered: the next call asks again. For facts
    that change only with an upgrade, a restart or an operator's hand (a server's build, an
    index's presence), so that a status call need not send a command for each."""
    client = db.client
    held: dict[str, tuple[float, T]] = vars(client).setdefault("_avenue_remembered", {})  # see _known
    now = time.monotonic()
    with _REMEMBERING:
        known = held.get(key)
    if known is not None and now - known[0] < seconds:
        return known[1]
    value = ask()
    if value is not None:
        with _REMEMBERING:
            held[key] = (now, value)
    return value
