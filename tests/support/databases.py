"""The real servers' test databases, kept between the tests of one process, indexes and all.

Each test on SecantusDB (or ``AVENUE_TEST_MONGO_URI``) used a database of its own, dropped
after it: the next test's app then made its ~30 collections and their indexes again, about
0.2-0.45 s of SecantusDB's time per test (32 ``createIndexes``), over 1,500 tests a run. Now
a test is handed a database an earlier test of the same process (xdist worker) emptied, and
the app's start there only lists the indexes (avenue/indexes.py creates the missing ones).

Isolation stays whole, checked rather than assumed:

- every write command any client of this process sends (the app's, a test's own, the
  cleanup's) is noted per database by a pymongo command listener, and after the test each
  collection written is emptied (``delete_many``), not dropped: its indexes stay;
- then one ``dbStats`` must show the database as a fresh one's after the app's start: no
  document left, and the same indexes besides each collection's ``_id`` (a write may leave
  an empty collection, which holds nothing): anything else (a subprocess wrote to it, a
  test made an index of its own) and the database is dropped instead, as before;
- a test that changed indexes or collections (``dropIndexes``, ``drop``, ``collMod``,
  ``renameCollection``, ``dropDatabase``) has its database dropped without looking further.

Warehouse gives each xdist worker its own database and isolates tests with savepoints;
MongoDB has no savepoints, so emptying what was written is the equivalent here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pymongo
from pymongo import monitoring
from pymongo.collection import Collection

#: URIs of servers whose data goes with them when the run ends (the session's SecantusDB):
#: nothing to drop there.
THROWAWAY: set[str] = set()
#: The names the pool has handed out (unique: a uuid each): the only databases whose indexes
#: memoise_index_creation remembers (a module's fixed name on servers started per test is not one).
POOLED: set[str] = set()
#: Off for a test that checks what the app's own index creation sends (tests/api/test_index_creation.py).
MEMOISE_INDEXES = True

WRITES = {"insert", "update", "delete", "findAndModify", "findandmodify", "create"}
# (createIndexes is not among them: the app's start sends it on a new database, and a test's
# own index shows in dbStats' count.)
CHANGES = {"dropIndexes", "drop", "collMod", "renameCollection", "dropDatabase"}


class Writes(monitoring.CommandListener):
    """Which collections of which database each write command named, and which databases
    had their collections or indexes changed."""

    def __init__(self) -> None:
        self.written: dict[str, set[str]] = defaultdict(set)
        self.changed: set[str] = set()
        # (database, collection) -> createIndexes seen (memoise_index_creation's check)
        self.indexes_created: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in WRITES:
            target = event.command.get(name)
            if isinstance(target, str):
                with self._lock:
                    self.written[event.database_name].add(target)
        elif name == "createIndexes":
            with self._lock:
                self.indexes_created[(event.database_name, str(event.command.get(name)))] += 1
        elif name in CHANGES or (name == "aggregate" and _writes_out(event.command)):
            with self._lock:
                self.changed.add(event.database_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def forget(self, database: str) -> tuple[set[str], bool]:
        """The collections written in ``database`` and whether it was changed; forgotten."""
        with self._lock:
            changed = database in self.changed
            self.changed.discard(database)
            return self.written.pop(database, set()), changed


def _writes_out(command: dict) -> bool:
    return any("$out" in stage or "$merge" in stage
               for stage in command.get("pipeline", ()) if isinstance(stage, dict))


# Registered before any test's client exists: pymongo gives a registered listener to every
# client created after it (the apps', the tests' own, the pool's).
WRITES_SEEN = Writes()
monitoring.register(WRITES_SEEN)


def secondary_indexes(stats: dict) -> int:
    """The indexes besides each collection's ``_id`` index, from ``dbStats``: a test's write
    may make a collection (``media_counters``, ``media_rendition_claims``: only ``_id``),
    which is harmless empty; an index of its own is not."""
    return stats.get("indexes", 0) - stats.get("collections", 0)


class DatabasePool:
    """Per process: for each server, the names of emptied, indexed databases, and how many
    indexes besides ``_id`` a fresh database has after the app's start."""

    def __init__(self) -> None:
        self.clients: dict[str, pymongo.MongoClient] = {}
        self.free: dict[str, list[str]] = defaultdict(list)
        self.fresh_shape: dict[str, int] = {}
        self.handed: list[tuple[str, str]] = []
        self.kept = self.dropped = 0

    def take(self, backend) -> str:
        """A database name for one test on ``backend``'s server (given back after it)."""
        uri = backend[1]
        if uri not in self.clients:
            self.clients[uri] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000)
            self.fresh_shape[uri] = self._shape_of_a_fresh_database(backend)
        name = self.free[uri].pop() if self.free[uri] else f"avenue_test_{uuid.uuid4().hex[:12]}"
        WRITES_SEEN.forget(name)
        POOLED.add(name)
        self.handed.append((uri, name))
        return name

    def _shape_of_a_fresh_database(self, backend) -> int:
        """The indexes besides ``_id`` of a new database after the default app's start; that
        database is the first one kept."""
        from avenue.db import get_mongo
        from tests.helpers import make_app

        name = f"avenue_test_{uuid.uuid4().hex[:12]}"
        app = make_app(backend, name)
        try:
            with app.app_context():
                get_mongo().ensure_indexes()
        finally:
            app.extensions["avenue.mongo"].client.close()
        database = self.clients[backend[1]][name]
        for collection in WRITES_SEEN.forget(name)[0]:  # what the start wrote (uploads' counter)
            database[collection].delete_many({})
        WRITES_SEEN.forget(name)
        stats = database.command("dbStats")
        assert stats["objects"] == 0, stats
        self.free[backend[1]].append(name)
        return secondary_indexes(stats)

    def give_back_all(self) -> None:
        handed, self.handed = self.handed, []
        for uri, name in handed:
            self._give_back(uri, name)

    def _give_back(self, uri: str, name: str) -> None:
        client = self.clients[uri]
        written, changed = WRITES_SEEN.forget(name)
        database = client[name]
        if not changed:
            for collection in written:
                if _the_apps(collection):
                    database[collection].delete_many({})
                else:  # a test's own (tests/api/test_paging.py's ``entries``): gone, as on a new database
                    database.drop_collection(collection)
            WRITES_SEEN.forget(name)
            stats = database.command("dbStats")
            if stats.get("objects") == 0 and secondary_indexes(stats) == self.fresh_shape[uri]:
                self.free[uri].append(name)
                self.kept += 1
                return
        client.drop_database(name)
        WRITES_SEEN.forget(name)
        self.dropped += 1

    def close(self) -> None:
        """Drop the kept databases on servers that outlive the run (AVENUE_TEST_MONGO_URI's);
        the session's SecantusDB (``THROWAWAY``) is killed with its folder after this."""
        for uri, client in self.clients.items():
            client.close()
            if uri in THROWAWAY:
                continue
            with pymongo.MongoClient(uri, serverSelectionTimeoutMS=500) as closing:
                try:
                    for name in self.free[uri]:
                        closing.drop_database(name)
                except pymongo.errors.PyMongoError:
                    pass  # the server is gone, and its databases with it


def _the_apps(collection: str) -> bool:
    """Whether ``collection`` is one the app declares (avenue/db.py's SHARD_KEYS). Another
    one, left empty, would still be listed by the next test on the database
    (tests/api/test_sharding.py lists them all and found a test's ``entries`` so)."""
    from avenue.db import shard_key

    try:
        shard_key(collection)
    except KeyError:
        return False
    return True


def memoise_index_creation() -> None:
    """Each app's start lists the indexes of ~30 collections (``avenue/indexes.py``: one
    ``listIndexes`` each, then ``createIndexes`` for what is missing): on a pooled database,
    where an earlier test's app made them all and nothing has changed them since, that is 31
    round trips a test for nothing (about 6 % of a test process's CPU). So in the tests, a
    collection whose indexes this process already ensured with the same models is not asked
    again, unless its database had a ``drop``, ``dropIndexes``, ``collMod``, ... since (the
    listener's ``changed``) or a ``createIndexes`` on the collection (a test's own index): then
    it is asked, as always. The real function runs the first time on each database, which is
    what ``tests/api/test_index_creation.py`` checks. Only on real servers: mongomock's
    commands pass no listener, so nothing would tell it that a test changed an index."""
    import sys

    import avenue.indexes

    real = avenue.indexes.create_missing
    # key -> (the indexes after the call, createIndexes seen on the collection then)
    ensured: dict[tuple[str, str, tuple[str, ...]], tuple[dict, int]] = {}

    def seen(database: str, collection: str) -> tuple[bool, int]:
        with WRITES_SEEN._lock:
            return (database in WRITES_SEEN.changed,
                    WRITES_SEEN.indexes_created.get((database, collection), 0))

    def create_missing(collection, models):
        if not isinstance(collection, Collection) or not isinstance(collection.database.client,
                                                                    pymongo.MongoClient) \
                or collection.database.name not in POOLED or not MEMOISE_INDEXES:
            return real(collection, models)  # mongomock's, a test's stand-in, a database of a test's own
        database = collection.database.name
        key = (database, collection.name, tuple(sorted(repr(model.document) for model in models)))
        changed, created = seen(database, collection.name)
        if key in ensured and not changed and ensured[key][1] == created:
            return dict(ensured[key][0])  # nothing made, dropped or changed an index since
        present = real(collection, models)
        changed, created = seen(database, collection.name)
        if not changed:
            after = dict(present)
            after.update({model.document["name"]: {"key": list(model.document["key"].items())}
                          for model in models if model.document["name"] not in present})
            ensured[key] = (after, created)
        return present

    create_missing.__wrapped__ = real  # type: ignore[attr-defined]
    avenue.indexes.create_missing = create_missing  # for the modules imported from now on
    for module in list(sys.modules.values()):  # and those imported already
        if getattr(module, "create_missing", None) is real and module.__name__.startswith("avenue"):
            module.create_missing = create_missing


#: Where a test server's data may live in memory (Linux's tmpfs), and the room it must have.
MEMORY = Path("/dev/shm")
MEMORY_NEEDED = 4 * 1024**3
_PREFIX = "avenue-test-db-"


@contextlib.contextmanager
def data_folder(fallback: Path) -> Iterator[Path]:
    """A throwaway server's data folder: in memory (``/dev/shm``) when the machine has one with
    room (4 GB; a worker's server writes a few hundred MB in a run), else ``fallback`` on disk.
    The app writes with ``j: true`` (avenue/db.py), so SecantusDB syncs its journal on every
    write; on tmpfs that sync costs nothing, and its API tests ran 9 % faster (48-50 s against
    54 s for five modules). Removed when the server is done with it; a folder an earlier run
    left (its process gone: killed before its teardown) is removed by the next run."""
    if not (MEMORY.is_dir() and os.access(MEMORY, os.W_OK)
            and shutil.disk_usage(MEMORY).free >= MEMORY_NEEDED):
        yield fallback
        return
    for left in MEMORY.glob(f"{_PREFIX}*"):
        owner = left.name.removeprefix(_PREFIX).split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(left, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=MEMORY))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
