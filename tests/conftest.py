"""Fixtures: the app on every backend, its database, clients, users. Helpers: tests/helpers.py."""

from __future__ import annotations

import functools
import gc
import os
import threading
import types
import uuid
from pathlib import Path

import flask
import mongomock
import pymongo
import pytest

from avenue.auth import service as auth_service
from avenue.embedded import EmbeddedServer
from tests.helpers import FIXTURES, Auth, make_app
from tests.support import routing
from tests.support.databases import THROWAWAY, DatabasePool, data_folder, memoise_index_creation
from tests.support.subjects import DATABASE_SUBJECTS

ROOT = Path(__file__).resolve().parents[1]
# the lease_clock fixture; loadgroup's groups kept on one worker (pytest-xdist#1386)
pytest_plugins = ["tests.support.leaseclock", "tests.support.xdist_groups"]

# pymongo 4.20 reads client.options.timeout, which mongomock's client lacks (EMBEDDED_DB.md).
mongomock.MongoClient.options = types.SimpleNamespace(timeout=None)
# pymongo 4.9+ UpdateOne passes ``sort`` to the bulk builder, which mongomock's does not take
# (the delivery numbers' flush is one bulk_write): dropped here, as mongod ignores it unset.
_add_update = mongomock.collection.BulkOperationBuilder.add_update
mongomock.collection.BulkOperationBuilder.add_update = (
    lambda self, *args, sort=None, **kwargs: _add_update(self, *args, **kwargs))

# Passwords are hashed with werkzeug's scrypt (n=32768: about 0.1 s of CPU and 32 MB each,
# on purpose), and the tests make several users a test with the same few passwords and log
# them in: a quarter of a test's setup went to it. Each (password) is hashed once per process
# and each (hash, password) checked once: the same scrypt strings and answers, computed fewer
# times; what the tests check of hashing (its format, a wrong password refused, the dummy
# check for unknown emails) is unchanged.
auth_service.generate_password_hash = functools.lru_cache(maxsize=None)(auth_service.generate_password_hash)
auth_service.check_password_hash = functools.lru_cache(maxsize=1024)(auth_service.check_password_hash)


def _one_routing_per_process() -> None:
    """Every app the tests build shares the process's URL map (tests/support/routing.py): its
    rules compiled once, by the app built here, instead of in each of the run's ~3,000 apps."""
    flask.Flask.url_map_class = staticmethod(routing.shared_map)  # type: ignore[assignment]
    shared = mongomock.MongoClient()
    routing.ROUTES.fill(lambda: make_app(((lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"),
                                         "avenue_routes"))


_one_routing_per_process()


def _pixels_key(im) -> tuple:
    """What tells two Pillow images apart for the memos below: their pixels, mode and size.
    SHA-1: nobody here crafts collisions, and it is the fastest of hashlib's on the project's
    machines (the CPU's SHA extensions): 4.4 ms for a 1600x1200 RGB frame against blake2b's
    10.6, which was a tenth of an upload-heavy module's CPU (py-spy of test_replace,
    test_shop and test_duplicates)."""
    import hashlib

    return hashlib.sha1(im.tobytes(), usedforsecurity=False).digest(), im.mode, im.size


def _memo(function, key_of, size: int = 1024):
    """``function`` answering each distinct ``key_of(arguments)`` once (the last ``size`` kept), from
    any thread (uploads run on request threads and the variants' pool); ``__wrapped__`` is
    ``function``. For deterministic work only: tests/unit/test_encode_memo.py checks each."""
    import collections

    made: collections.OrderedDict[tuple, object] = collections.OrderedDict()
    lock = threading.Lock()

    @functools.wraps(function)
    def memoised(*args, **kwargs):
        key = key_of(*args, **kwargs)
        with lock:
            if key in made:
                made.move_to_end(key)
                return made[key]
        result = function(*args, **kwargs)
        with lock:
            made[key] = result
            if len(made) > size:
                made.popitem(last=False)
        return result

    return memoised


def _memoised_variant_encodes():
    """An upload's variants are encoded (WebP method 4, JPEG optimised, PNG, AVIF) in every
    test that uploads, and the tests upload the same few corpus files thousands of times a
    run: a quarter of a test process's CPU. The encoders are deterministic (the same pixels,
    mode, info and options give the same bytes: tests/unit/test_encode_memo.py checks it
    for every format), so each distinct input is encoded once per process (the last 1,024
    kept) and its bytes handed out again. Only upload variants (``variants.encode_image``);
    renditions on request and edits encode every time. ``AVENUE_TEST_ENCODE_MEMO=off``
    encodes everything, for a run that wants to."""
    from avenue.media.ingest import variants

    if os.environ.get("AVENUE_TEST_ENCODE_MEMO") == "off":
        return
    def all_arguments(im, fmt, icc, quality=None, progressive=True):
        return (*_pixels_key(im), repr(sorted(im.info.items())), fmt, icc, quality, progressive)

    variants.encode_image = _memo(variants.encode_image, all_arguments)


_memoised_variant_encodes()


def _memoised_attention():
    """Every upload's focal point is libvips's attention centre of a 256 px sample
    (``focal.attention``): about 11 ms of CPU on the slower machine whatever the sample's size
    (a dozen libvips operations' start-up), for the same few corpus files thousands of times a
    run. The answer depends only on the sample's pixels (``tests/unit/test_encode_memo.py``
    checks it), so each distinct sample is scored once per process (the last 1,024 kept).
    ``AVENUE_TEST_ENCODE_MEMO=off`` scores every one, as it encodes every variant."""
    from avenue.media.ingest import focal

    if os.environ.get("AVENUE_TEST_ENCODE_MEMO") == "off":
        return
    focal.attention = _memo(focal.attention, _pixels_key)


_memoised_attention()
memoise_index_creation()

BACKENDS = ["mongomock", "secantus"] + (["external"] if os.environ.get("AVENUE_TEST_MONGO_URI") else [])


def pytest_configure(config):
    if not FIXTURES.is_dir():
        raise pytest.UsageError(f"test files not found at {FIXTURES} (AVENUE_FIXTURES)")


def pytest_collection_finish(session):
    """Move everything collection made (modules, test items, hypothesis' strategies: several
    hundred thousand objects that live the whole run) out of the garbage collector's sight
    (``gc.freeze``, CPython's own mechanism for long-lived startup objects). Otherwise each
    full collection walks them all again, and the tests allocate enough to trigger one every
    few apps built: ``create_app`` took 49-63 ms in a test process against 11 ms alone.
    Garbage made later is collected as before; what is frozen would never have been freed."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def no_periodic_job_outlives_its_test(databases_handed_out):
    """Stop the periodic jobs a test started and left running (gunicorn.conf.py's
    ``post_worker_init`` starts every one a worker has: the rendition budget, the deliveries'
    flush, ...). Left alone they tick against a dropped database in later tests, and their
    driver calls touch the global ``random`` while hypothesis draws there (a flaky failure)."""
    import threading

    from avenue.background import PeriodicJob

    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        if isinstance(thread, PeriodicJob):
            thread.stop(timeout=10)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fold the media front door's answers as each test ends: their access-log lines are
    written in the test that gave them, not by the folding thread into a later test's output."""
    try:
        return (yield)
    finally:
        from avenue.metrics import FRONT_DOOR

        FRONT_DOOR.fold()


@pytest.fixture
def answers_wait_for_lookups(monkeypatch):
    """An upload's answer waits for its near-duplicate lookup, up to a minute: the tests that
    read an answer's ``near_duplicates`` on a loaded test machine must not find the lookup late
    (a lookup took over the production cap of one second under the full suite). The share and
    the cap it waits in production (avenue/media/store/near_duplicates.py) have tests of their own."""
    from avenue.media.store import near_duplicates
    monkeypatch.setattr(near_duplicates, "WAIT_SECONDS", 60.0)
    monkeypatch.setattr(near_duplicates, "WAIT_FLOOR_SECONDS", 60.0)
    monkeypatch.setattr(near_duplicates, "EMBEDDED_WAIT_SECONDS", 60.0)


@pytest.fixture(scope="session")
def secantus(tmp_path_factory):
    """One SecantusDB process for the session (a separate process, on a free port)."""
    # On disk (a temp folder), not ":memory:": an in-memory WiredTiger cannot evict, and a
    # whole run writes more than its cache holds (WT_CACHE_FULL). And with SecantusDB's own
    # default cache (1G), not the app's embedded 256M: after the slow part's earlier modules,
    # the tus test's 10 MB photos filled a 256M cache, and a SecantusDB thread waiting for
    # eviction (WiredTiger's __wt_cache_eviction_worker) held the store's lock, so every
    # other command waited behind it with no CPU used: CI hung until its limit (py-spy
    # showed the stacks; once in two runs of the slow part on this machine). 1G makes that
    # rarer, not impossible (a heavier load wedged it too: docs/production.md), so the
    # heaviest writer, tests/system/test_tus.py, has a server of its own, and the app's
    # socket timeout (MONGO_SOCKET_TIMEOUT_MS) and pytest-timeout turn a wedge into failures.
    #
    # Standalone (no replica set), as make run's (avenue/embedded/supervisor.py): on a replica set pymongo
    # makes every write retryable, and SecantusDB records each one's reply for 30 minutes, up
    # to 10,000, pruning that record on every write by scanning it and, once full, sorting it
    # (secantus/transactions.py, ``_prune_retryable_locked``): each worker's server passes
    # 10,000 writes early in a run, then spends milliseconds of its one lock on every write.
    # Standalone, the whole suite took 8 min 51 s against 11 min 24 s, the same tests passing.
    # The one test that needs a replica set (a change stream) asks for ``secantus_replica_set``.
    #
    # Its data in memory where the machine has room (``data_folder``: its journal's syncs cost
    # nothing there); its log in pytest's temp folder, kept after the run.
    #
    # Killed by the kernel when this process dies (``die_with_parent``), as make run's: a test
    # process killed before its teardown (SIGTERM, SIGKILL, pytest-timeout's thread method)
    # left its server running with its data in /dev/shm, whose memory the next run's clean-up
    # of the folder could not free while the server held it open. Safe here: xdist runs tests
    # and fixtures on the worker's main thread (execnet's ``main_thread_only``), the thread
    # the kernel watches, which lives as long as the process.
    folder = tmp_path_factory.mktemp("secantus")
    with data_folder(folder) as data:
        server = EmbeddedServer(data / "db", cache_size="1G", log_path=folder / "server.log", standalone=True,
                                die_with_parent=True)
        server.start()
        THROWAWAY.add(server.uri)
        yield server
        # SIGKILL, not stop(): its data is thrown away with the folder, and a clean WiredTiger
        # shutdown of a run's cache took stop()'s whole 15 s (then SIGKILL anyway) at the end of
        # every worker. Clean stops are checked on servers of their own (tests/api/test_app.py,
        # tests/api/test_media_serving.py's restart, tests/system/test_make_run.py).
        server.kill()


@pytest.fixture(scope="session")
def secantus_replica_set(tmp_path_factory):
    """A SecantusDB that runs as a replica set, for the tests of what only one has (a change
    stream): started by the first test that asks, once per process; killed at the end."""
    folder = tmp_path_factory.mktemp("secantus-rs")
    server = EmbeddedServer(folder / "db", cache_size="256M", log_path=folder / "server.log",
                            die_with_parent=True)  # as ``secantus``'s
    server.start()
    THROWAWAY.add(server.uri)
    yield server
    server.kill()


def backend_named(request, name: str):
    """(client class, URI) of the backend called ``name`` (one of BACKENDS)."""
    if name == "mongomock":
        # One in-memory server per test, shared by every app the test builds (like workers
        # sharing one real database).
        shared = mongomock.MongoClient()
        return (lambda *args, **kwargs: shared), "mongodb://mongomock.invalid:27017"
    if name == "secantus":
        return pymongo.MongoClient, request.getfixturevalue("secantus").uri
    return pymongo.MongoClient, os.environ["AVENUE_TEST_MONGO_URI"]


def pytest_generate_tests(metafunc):
    """Every backend for a test whose subject is the database (its module is in
    tests/support/subjects.py, or the test is marked ``database``), mongomock alone for any
    other test that asks for ``backend``."""
    if "backend" in metafunc.fixturenames:
        module = metafunc.definition.path.relative_to(ROOT).as_posix()
        every = module in DATABASE_SUBJECTS or metafunc.definition.get_closest_marker("database") is not None
        # The real servers' halves are marked ``real_server``: make test-fast leaves them out.
        names = BACKENDS if every else ["mongomock"]
        real = pytest.mark.real_server
        metafunc.parametrize("backend", [pytest.param(name, marks=() if name == "mongomock" else real)
                                         for name in names], indirect=True)


@pytest.fixture
def backend(request):
    """(client class, URI) of the backend the test is parametrised with; each test uses a
    database of its own."""
    return backend_named(request, request.param)


@pytest.fixture
def app_on_every_backend(request, databases):
    """A factory of one app per backend, each on a database of its own: for a test that sends the
    same generated input to every backend in one run, so it is generated once rather than once a
    backend (tests/api/test_fuzz_api.py). Closed after, the databases given back as ``db_name``'s are."""
    apps = []

    def factory(**overrides) -> dict:
        built = {}
        for name in BACKENDS:
            backend = backend_named(request, name)
            own = name == "mongomock"
            db_name = f"avenue_test_{uuid.uuid4().hex[:12]}" if own else databases.take(backend)
            built[name] = make_app(backend, db_name, **overrides)
            apps.append(built[name])
        return built

    yield factory
    close_apps(apps, request)


@pytest.fixture(scope="session")
def databases():
    """The real servers' test databases, kept between this process's tests (tests/support/databases.py)."""
    pool = DatabasePool()
    yield pool
    pool.close()


@pytest.fixture
def databases_handed_out(databases):
    """Give back, after the test, the databases it was handed. Set up before the autouse
    fixture that stops periodic jobs (that one asks for it), so torn down after it: nothing
    of the test still writes while its database is emptied for the next test."""
    yield
    databases.give_back_all()


@pytest.fixture
def db_name(request):
    """The test's database: on a real server, one of this process's emptied, indexed ones
    when there is one (tests/support/databases.py); otherwise a new name."""
    mongomock_backend = "backend" in request.fixturenames and \
        request.getfixturevalue("backend")[1].startswith("mongodb://mongomock")
    if "backend" not in request.fixturenames or mongomock_backend:
        return f"avenue_test_{uuid.uuid4().hex[:12]}"
    request.getfixturevalue("databases_handed_out")
    return request.getfixturevalue("databases").take(request.getfixturevalue("backend"))


@pytest.fixture
def app_factory(backend, db_name, request):
    """Build apps on this test's database (e.g. two gunicorn workers); all closed after (the
    database is emptied or dropped by ``db_name``'s pool, or by mongomock's end)."""
    apps = []

    def factory(**overrides):
        apps.append(make_app(backend, db_name, **overrides))
        return apps[-1]

    yield factory
    close_apps(apps, request)


def _check_spec(apps, request) -> None:
    """Every files document of every database the test's apps wrote is a whole GridFS file
    (tests/support/gridfs_spec.py, issue 75): the whole suite's stores are checked, each before
    its database goes. A test that damages files on purpose says so (``damages_files``)."""
    if request.node.get_closest_marker("damages_files") is not None:
        return
    from tests.support.gridfs_spec import invalid_files

    seen = set()
    for built in apps:
        database = built.extensions["avenue.mongo"].db
        if database.name in seen:
            continue
        seen.add(database.name)
        invalid = invalid_files(database)
        assert invalid == [], f"gridfs_spec: files not whole at the end of the test: {invalid[:5]}"


def close_apps(apps, request=None) -> None:
    """After a test: the re-render runs it started (POST /api/admin/rerender) ended on their
    database, every file it left whole (``request``: the test's, :func:`_check_spec`), then every
    app's client closed."""
    from avenue.ops.rerender import wait_for_runs

    wait_for_runs(60)
    try:
        if request is not None:
            _check_spec(apps, request)
    finally:
        for built in apps:
            built.extensions["avenue.mongo"].client.close()


@pytest.fixture
def own_routes(monkeypatch):
    """Apps with a URL map of their own (werkzeug's, compiled for each app), for a test that adds
    routes to its app: on the process's shared map (tests/support/routing.py) they would reach
    every later test's app, so it refuses them."""
    from werkzeug.routing import Map

    monkeypatch.setattr(flask.Flask, "url_map_class", Map)


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def db(app):
    """The test's database, indexes ensured. No app context stays pushed: requests made by
    the test client get their own context (and their own flask-login user)."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        return get_db()


@pytest.fixture
def media_core(app):
    """The app's media core (``AppMedia.of(app).core``: its settings, and the owners of the documents
    that refer to images), to hand to the jobs a test calls with a database: gc, fsck --repair,
    backup and restore, the backfills, the legacy import."""
    from avenue.media import AppMedia

    return AppMedia.of(app).core


@pytest.fixture
def referrers(media_core, db):
    """The app's owners of referring documents on the test's database (``Media.referrers``),
    to hand to the status sweep and the reports a test runs."""
    return media_core.referrers(db)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def auth(app):
    return Auth(app)


@pytest.fixture
def admin(auth):
    """Authorization headers of a fresh admin."""
    return auth.token("admin")


@pytest.fixture
def editor(auth):
    """Authorization headers of a fresh editor."""
    return auth.token("editor")
