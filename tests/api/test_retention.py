"""The retention TTL index shared by the audit log, the monitoring samples and alerts, and the
delivery numbers (avenue/retention.py)."""

from __future__ import annotations

from avenue.retention import ensure_retention
from tests.helpers import expires_after


def ttl_indexes(collection) -> dict[str, tuple[list, int | None]]:
    """Each index's key and its expiry (the server's TTL, or on the embedded database the app's)."""
    return {name: ([tuple(pair) for pair in info["key"]], expires_after(collection, name))
            for name, info in collection.index_information().items() if name != "_id_"}


def test_documents_expire_the_configured_days_after_the_field(db):
    ensure_retention(db.kept, "at", 30)
    assert ttl_indexes(db.kept) == {"retention_30d": ([("at", 1)], 30 * 86400)}


def test_a_changed_period_replaces_the_index_and_zero_keeps_documents_for_ever(db):
    ensure_retention(db.kept, "at", 30)
    ensure_retention(db.kept, "at", 7)
    assert ttl_indexes(db.kept) == {"retention_7d": ([("at", 1)], 7 * 86400)}
    ensure_retention(db.kept, "at", 0)
    assert ttl_indexes(db.kept) == {}


def test_kept_for_ever_a_plain_index_serves_the_queries_and_gives_way_to_a_period(db):
    ensure_retention(db.kept, "day", 0, otherwise="day")
    assert ttl_indexes(db.kept) == {"day": ([("day", 1)], None)}
    # mongod refuses a second index on the same key: the plain one goes first.
    ensure_retention(db.kept, "day", 30, otherwise="day")
    assert ttl_indexes(db.kept) == {"retention_30d": ([("day", 1)], 30 * 86400)}
    ensure_retention(db.kept, "day", 0, otherwise="day")
    assert ttl_indexes(db.kept) == {"day": ([("day", 1)], None)}


def test_ensuring_the_same_period_again_changes_nothing(db):
    ensure_retention(db.kept, "at", 30)
    before = db.kept.index_information()
    ensure_retention(db.kept, "at", 30)
    assert db.kept.index_information() == before
