"""The test modules whose subject is the database: they run on every backend (mongomock,
SecantusDB over the wire, and ``AVENUE_TEST_MONGO_URI`` when set). Every other module that
asks for ``backend`` (through ``app``, ``client``, ...) runs once, on mongomock: its subject
(the access table, URL import, auth, alt text, SVG, ...) is the same code on any server, and
running it twice doubled the suite's time without testing anything more.

tests/unit/test_backend_subjects.py keeps this list true (every name a module that asks for a
database). A module belongs here when what it checks is what the server does: storing,
reading back, queries and their indexes, leases and claims, TTL, counters, the effects of a
write, consistency between workers, and the store model."""

from __future__ import annotations

# The fixtures that reach a database or the app on one (tests/conftest.py).
DATABASE_FIXTURES = frozenset({"backend", "secantus", "app_factory", "app", "db", "client", "runner", "auth",
                               "admin", "editor"})

DATABASE_SUBJECTS = frozenset({
    # storage and serving: GridFS files and chunks, ranges, streaming, the stock reader
    "tests/media/store/test_originals.py",
    "tests/api/test_media_serving.py",
    "tests/media/store/test_storage.py",
    "tests/media/serve/test_frontdoor.py",
    "tests/api/test_refused_urls.py",
    "tests/api/test_stock_gridfs.py",
    # renditions: claims across workers, stored renditions, their budget
    "tests/api/test_renditions.py",
    "tests/media/store/test_renditions.py",
    # replace, versions, trash: writes in an order that must survive a crash
    "tests/api/test_replace.py",
    "tests/media/store/test_replace.py",
    "tests/media/store/library/test_deleting.py",
    "tests/media/serve/test_cache.py",
    "tests/api/test_versions.py",
    "tests/media/store/test_versions.py",
    "tests/api/test_trash.py",
    "tests/media/store/test_trash.py",
    # queries: paging and the indexes the queries use
    "tests/api/test_paging.py",
    "tests/media/store/library/test_reading.py",
    "tests/media/store/test_indexes.py",
    "tests/api/test_index_creation.py",
    "tests/api/test_index_usage.py",
    # leases, locks, TTL and the dialect's rules
    "tests/api/test_leases.py",
    "tests/api/test_ops_lock.py",
    "tests/api/test_expiry.py",
    "tests/api/test_retention.py",
    "tests/api/test_dialect.py",
    "tests/api/test_writes.py",
    "tests/api/test_sharding.py",
    "tests/api/test_round_trips.py",
    "tests/api/test_database_pool.py",
    # what one write changes elsewhere, seen by every worker
    "tests/media/test_effects.py",
    "tests/media/serve/test_route.py",
    "tests/api/test_deliveries.py",
    "tests/media/store/test_deliveries.py",
    "tests/api/test_status_counters.py",
    "tests/media/effects/test_counters.py",
    "tests/api/test_status_reports.py",
    "tests/api/test_status_sweep.py",
    # upkeep over the whole store
    "tests/api/test_gc.py",
    "tests/api/test_fsck.py",
    "tests/api/test_fsck_resume.py",
    "tests/media/upkeep/test_fsck.py",
    "tests/media/upkeep/test_gc.py",
    "tests/media/upkeep/test_migrate.py",
    "tests/api/test_migrate_f601210.py",
    "tests/api/test_backup.py",
    "tests/api/test_backup_file.py",
    "tests/api/test_scale_bench.py",
    # the store model
    "tests/model/test_regressions.py",
    "tests/model/test_store_model.py",
})
