"""Sharding that works: every unique index fits the declared shard keys (avenue/db.py SHARD_KEYS),
and every upsert or findAndModify on a sharded collection names its shard key.

MongoDB enforces a unique index on a sharded collection only when the shard key is a prefix
of it, and refuses an upsert whose filter lacks the shard key. No sharded cluster runs here,
so these are checked against the declaration: a new unique index or upsert that would break
a sharded deployment fails this test instead of a production migration.
"""

from __future__ import annotations

import io

import pymongo
import pytest

from avenue.db import SHARD_KEYS, shard_key
from tests.helpers import Auth, image_bytes, listening, make_app
from tests.support.commands import Recorder


def unique_index_problems(indexes: dict[str, dict], key: tuple[str, ...] | None,
                          collection: str) -> list[str]:
    """Unique indexes of ``collection`` that a cluster sharded on ``key`` could not enforce.
    (The ``_id`` index is exempt: MongoDB shards with it and ObjectIds are unique anyway.)"""
    if key is None:
        return []
    problems = []
    for name, info in indexes.items():
        if not info.get("unique") or name == "_id_":
            continue
        fields = tuple(field for field, _ in info["key"])
        if fields[: len(key)] != key:
            problems.append(f"{collection}.{name} {fields} is unique but not prefixed by the shard key {key}")
    return problems


def exercise(app) -> None:
    """Touch every collection the app writes: users, tokens, products, pages, media, status."""
    auth = Auth(app)
    admin = auth.token("admin")
    client = app.test_client()
    photo = image_bytes("good/grayscale.jpg")
    assert client.post("/api/shop/products", headers=admin, json={"sku": "SH-1", "name": "x", "price": 1}
                       ).status_code == 201
    assert client.post("/api/shop/products/SH-1/images", headers=admin,
                       data={"images": (io.BytesIO(photo), "a.jpg")}).status_code == 201
    media = client.post("/api/builder/media", headers=admin, data={"file": (io.BytesIO(photo), "b.jpg")})
    assert media.status_code == 201
    page = {"title": "Home", "blocks": [{"type": "image", "media_id": media.get_json()["id"]}]}
    assert client.put("/api/builder/pages/home", headers=admin, json=page).status_code in (200, 201)
    upload = client.post("/api/uploads", headers=admin, data={"file": (io.BytesIO(photo), "c.jpg")})
    assert upload.status_code == 201
    assert client.get("/api/shop/debug/products-status", headers=admin).status_code == 200
    assert client.get("/api/shop/debug/storage-status", headers=admin).status_code == 200
    deleted = client.delete(f"/api/builder/media/{media.get_json()['id']}?force=1", headers=admin)
    assert deleted.status_code in (200, 204, 409)
    # The background and ops writers too: the status sweep (its report, the lists' fences) and
    # gc (its run, in ops_runs). Without them only a database reused from another test held
    # those collections, and the check found them undeclared by luck.
    with app.app_context():
        from avenue import status
        from avenue.db import get_db
        from avenue.media import AppMedia

        assert status.sweep_now(get_db(), app.config, AppMedia.of(app).core.referrers(get_db())) is not None
    ran = app.test_cli_runner().invoke(args=["gc", "--quiet"])
    assert ran.exit_code == 0, ran.output


def test_every_collection_is_declared_and_its_unique_indexes_fit_its_shard_key(app, db):
    exercise(app)
    problems = []
    for name in sorted(db.list_collection_names()):
        try:
            key = shard_key(name)
        except KeyError:
            problems.append(f"{name} has no entry in avenue.db.SHARD_KEYS (sharded or not, and why)")
            continue
        problems += unique_index_problems(db[name].index_information(), key, name)
    assert problems == []


def test_the_check_catches_a_unique_index_that_sharding_could_not_enforce():
    indexes = {"_id_": {"key": [("_id", 1)]}, "sku_unique": {"key": [("sku", 1)], "unique": True},
               "name_unique": {"key": [("name", 1), ("sku", 1)], "unique": True}}
    assert unique_index_problems(indexes, ("sku",), "shop_products") == [
        "shop_products.name_unique ('name', 'sku') is unique but not prefixed by the shard key ('sku',)"]
    assert unique_index_problems(indexes, None, "users") == []


def test_every_declaration_says_why():
    assert all(reason.strip() for _, reason in SHARD_KEYS.values())


@pytest.mark.slow
def test_every_upsert_and_find_and_modify_on_a_sharded_collection_names_its_key(backend, db_name, tmp_path):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    recorder = Recorder(db_name)
    app = make_app((listening(recorder),
                    backend[1]), db_name)
    try:
        recorder.active = True
        exercise(app)
        archive = tmp_path / "backup.tar"
        runner = app.test_cli_runner()
        assert runner.invoke(args=["backup", str(archive), "--quiet"]).exit_code == 0
        restored = runner.invoke(args=["restore", str(archive), "--force"])
        assert restored.exit_code == 0, restored.output
        recorder.active = False
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()
    problems = []
    for command in recorder.commands:
        name = next(iter(command))
        key = shard_key(command[name]) if name in ("update", "findAndModify") else None
        if not key or key == ("_id",):
            continue
        if name == "update":
            selections = [(statement["q"], statement.get("upsert")) for statement in command["updates"]]
        else:
            selections = [(command.get("query", {}), True)]  # findAndModify: needs the key pre-7.1
        for query, needs_key in selections:
            if needs_key and not all(field in query for field in key):
                problems.append(f"{name} on {command[name]} without {key}: {str(query)[:200]}")
    assert problems == []
