"""The test databases' pool (tests/support/databases.py): a database handed to a second test
holds nothing the first one wrote, and one whose shape a test changed is never handed again."""

from __future__ import annotations

import os

import pymongo
import pytest

from tests.support.databases import DatabasePool, secondary_indexes


@pytest.fixture
def pool(secantus):
    made = DatabasePool()
    yield made, (pymongo.MongoClient, secantus.uri)
    made.close()
    for client in made.clients.values():
        client.close()


def client_of(pool_and_backend):
    made, backend = pool_and_backend
    return pymongo.MongoClient(backend[1])


def test_a_database_given_back_is_handed_again_empty_with_its_indexes(pool):
    made, backend = pool
    name = made.take(backend)
    with client_of(pool) as client:
        indexes_before = secondary_indexes(client[name].command("dbStats"))
        client[name].media_images.insert_one({"x": 1})
        client[name].users.update_one({"_id": "u"}, {"$set": {"a": 1}}, upsert=True)
        made.give_back_all()
        assert made.take(backend) == name  # the same database, reused
        stats = client[name].command("dbStats")
        assert stats["objects"] == 0
        assert secondary_indexes(stats) == indexes_before  # (users: a new, empty collection)
    assert made.kept == 1 and made.dropped == 0


def test_a_database_with_an_index_of_a_tests_own_is_dropped_not_reused(pool):
    made, backend = pool
    name = made.take(backend)
    with client_of(pool) as client:
        client[name].media_images.create_index("made_by_the_test")
        made.give_back_all()
        assert name not in client.list_database_names()
    assert made.take(backend) != name
    assert made.dropped == 1


def test_a_database_whose_collection_was_dropped_is_dropped_not_reused(pool):
    made, backend = pool
    name = made.take(backend)
    with client_of(pool) as client:
        client[name].drop_collection("media_images")
        made.give_back_all()
        assert name not in client.list_database_names()
    assert made.dropped == 1


def test_a_write_the_listener_never_saw_drops_the_database(pool, tmp_path):
    """A subprocess's writes are not seen by this process's listener: dbStats finds them."""
    import subprocess
    import sys

    made, backend = pool
    name = made.take(backend)
    subprocess.run([sys.executable, "-c",
                    f"import pymongo; pymongo.MongoClient({backend[1]!r})[{name!r}].media_images"
                    ".insert_one({'from': 'elsewhere'})"], check=True, timeout=60)
    made.give_back_all()
    with client_of(pool) as client:
        assert name not in client.list_database_names()
    assert made.dropped == 1


def test_the_index_memo_asks_again_once_a_test_dropped_or_made_an_index(pool):
    """tests/support/databases.py's memoise_index_creation: a second ensure of the same
    collection is skipped only while nothing changed its indexes."""
    from pymongo import ASCENDING, IndexModel

    import avenue.indexes

    made, backend = pool
    name = made.take(backend)
    models = [IndexModel([("sku", ASCENDING)], name="sku_once", unique=True)]
    with client_of(pool) as client:
        things = client[name].things
        avenue.indexes.create_missing(things, models)
        things.drop_index("sku_once")
        avenue.indexes.create_missing(things, models)
        assert "sku_once" in things.index_information()  # made again, not remembered
        things.create_index("made_here", name="made_here")
        assert "made_here" in avenue.indexes.create_missing(things, models)  # listed, not remembered


def test_the_session_server_is_standalone_as_make_runs_and_keeps_no_retryable_writes(secantus):
    """tests/conftest.py's ``secantus`` runs without a replica set: on one, every write is
    retryable and SecantusDB sorts its record of them on each write (a quarter of the suite's
    time). Standalone, pymongo sends no transaction number, so nothing is recorded."""
    with pymongo.MongoClient(secantus.uri) as client:
        hello = client.admin.command("hello")
        assert "setName" not in hello and hello["isWritablePrimary"]
        assert client.topology_description.topology_type_name == "Single"


def test_a_servers_data_folder_is_in_memory_when_there_is_room_and_gone_after(tmp_path, monkeypatch):
    from tests.support import databases

    memory = tmp_path / "shm"
    memory.mkdir()
    monkeypatch.setattr(databases, "MEMORY", memory)
    monkeypatch.setattr(databases, "MEMORY_NEEDED", 1)
    gone = memory / "avenue-test-db-999999999-abc"  # an earlier run's, its process gone
    alive = memory / f"avenue-test-db-{os.getppid()}-abc"  # another run's, still going
    gone.mkdir()
    alive.mkdir()
    with databases.data_folder(tmp_path / "disk") as folder:
        assert folder.parent == memory and folder.name.startswith(f"avenue-test-db-{os.getpid()}-")
        (folder / "db").mkdir()
        assert not gone.exists() and alive.is_dir()
    assert not folder.exists()

    monkeypatch.setattr(databases, "MEMORY_NEEDED", 10**18)  # no room: the disk's folder
    with databases.data_folder(tmp_path / "disk") as folder:
        assert folder == tmp_path / "disk"
