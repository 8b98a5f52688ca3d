"""Every query the app issues for a request is served by an index (no COLLSCAN).

The app runs on the real wire backend with a command listener recording every ``find``,
``count``, ``aggregate``, ``findAndModify``, ``update`` and ``delete`` its requests send; each
recorded command is then explained, and its winning plan must not scan a collection. The
scenario uses every list (first page, a cursor page, each filter), every lookup (login, token,
product, media by id and by content, references before a delete) and the media route, so a
new query without an index fails here, not at ten million images.

Scans that are full by design (status sweeps, gc, fsck, backup) are not requests and are not
exercised here; they batch and stream (docs/production.md, "Scaling"). The two status reports are
requests like the others: they read counters and indexes only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pymongo
import pytest
from PIL import Image

from avenue.embedded import fences as fenced
from avenue.status.sweep import FENCED
from tests.helpers import image_bytes, listening, make_app
from tests.support.commands import Recorder
from tests.support.records import record


def scans(plan: dict) -> list[str]:
    """The collection scans anywhere in a winning plan."""
    found = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("stage") == "COLLSCAN":
            found.append(str(node.get("filter")))
        stack += [node.get("inputStage"), *node.get("inputStages", [])]
        stack += [value for key, value in node.items() if key in ("queryPlan", "winningPlan")]
    return found


def leading_keys(db, collection: str) -> set[str]:
    """The first key of each index of ``collection``: a filter on one can use that index."""
    return {next(iter(info["key"]))[0] for info in db[collection].index_information().values()}


def filter_fields(query: dict) -> set[str]:
    fields = {key for key in query if not key.startswith("$")}
    for clause in query.get("$and", []):
        fields |= filter_fields(clause)
    return fields


def unserved(db, commands: list[dict]) -> list[tuple[str, list[str]]]:
    """(command, why) for every command no index serves."""
    bad = []
    for command in commands:
        name = next(iter(command))
        collection = command[name]
        if name in ("update", "delete", "findAndModify"):
            # SecantusDB answers explain of a write without parsing it (always COLLSCAN), so a
            # write must select by the leading key of one of the collection's indexes.
            filters = ([statement["q"] for statement in command["updates"]] if name == "update" else
                       [statement["q"] for statement in command["deletes"]] if name == "delete" else
                       [command.get("query", {})])
            keys = leading_keys(db, collection)
            bad += [(str(command)[:300], [f"no indexed key in {sorted(filter_fields(f))}"])
                    for f in filters if not filter_fields(f) & keys]
            continue
        if name == "count" and not command.get("query"):
            continue  # the collection's metadata (estimated_document_count): no scan
        if name == "aggregate" and any("$changeStream" in stage for stage in command["pipeline"]):
            continue  # a change stream tails the oplog; it reads no collection
        answer = db.command("explain", command, verbosity="queryPlanner")
        found = scans(answer.get("queryPlanner", {}).get("winningPlan", {}))
        if found:
            bad.append((str(command)[:300], found))
    return bad


def assert_served(db, commands: list[dict]) -> None:
    bad = unserved(db, commands)
    assert bad == [], "\n".join(f"{command}\n  scans: {found}" for command, found in bad)


@contextmanager
def recorded_app(backend, db_name: str) -> Iterator[tuple]:
    """(app, recorder): an app on the real wire backend whose commands the recorder keeps
    while active; its database dropped after (skipped on mongomock: explain needs a planner)."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("explain needs a real server (mongomock has no query planner)")
    recorder = Recorder(db_name)
    app = make_app((listening(recorder), backend[1]), db_name)
    try:
        yield app, recorder
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()


@pytest.mark.slow
def test_every_query_a_request_sends_uses_an_index(backend, db_name, answers_wait_for_lookups):
    with recorded_app(backend, db_name) as (app, recorder):
        run_scenario(app, recorder, db_name)


def run_scenario(app, recorder: Recorder, db_name: str) -> None:
    from tests.helpers import Auth

    auth = Auth(app)
    admin = auth.token("admin")
    email, password = auth.user("editor")
    client = app.test_client()
    with app.app_context():
        from avenue.db import get_mongo

        get_mongo().ensure_indexes()
        # Enough documents that a planner prefers an index to a scan wherever one applies.
        db = get_mongo().db
        db.audit_logs.insert_many([{"at": None, "action": "seed", "actor": None, "target": {}}
                                   for _ in range(50)])
    recorder.active = True

    photo = image_bytes("good/grayscale.jpg")
    editor = client.post("/api/auth/login", json={"email": email, "password": password})
    assert editor.status_code == 200
    csrf = {"X-CSRF-Token": editor.get_json()["csrf_token"]}
    for n in range(3):
        assert client.post("/api/shop/products", headers=admin,
                           json={"sku": f"IX-{n}", "name": "x", "price": 1}).status_code == 201
    added = client.post("/api/shop/products/IX-0/images", headers=admin,
                        data={"images": (io.BytesIO(photo), "lamp.jpg")})
    assert added.status_code == 201
    image_id = added.get_json()["added"][0]["id"]
    # The same bytes again: the dedupe lookup by content.
    assert client.post("/api/shop/products/IX-1/images", headers=admin,
                       data={"images": (io.BytesIO(photo), "lamp.jpg")}).status_code == 201
    temp = client.post("/api/shop/temp-images", headers=admin,
                       data={"images": (io.BytesIO(image_bytes("good/alpha.png")), "t.png")})
    assert temp.status_code == 201
    temp_id = temp.get_json()["images"][0]["id"]
    assert client.post("/api/shop/products", headers=admin, json={
        "sku": "IX-9", "name": "x", "price": 1, "temp_image_ids": [temp_id]}).status_code == 201
    media = client.post("/api/builder/media", headers=csrf,
                        data={"file": (io.BytesIO(photo), "red lamp.jpg"), "folder": "/shop", "tags": "red"})
    assert media.status_code == 201
    media_id = media.get_json()["id"]
    # A near copy (re-encoded): the near-duplicate lookup by hash bands, and the group labels written.
    copy = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(copy, "JPEG", quality=60)
    near = client.post("/api/builder/media", headers=csrf,
                       data={"file": (io.BytesIO(copy.getvalue()), "c.jpg")})
    assert near.status_code == 201 and near.get_json()["near_duplicates"], near.get_json()
    page = client.put("/api/builder/pages/home", headers=csrf, json={
        "title": "Home", "blocks": [{"type": "image", "media_id": media_id}]})
    assert page.status_code in (200, 201), page.get_json()
    upload = client.post("/api/uploads", headers=csrf, data={"file": (io.BytesIO(photo), "mine.jpg")})
    assert upload.status_code == 201
    # A resumable (tus) upload: created, its offset asked, bytes in two requests, its record read;
    # another one terminated.
    tus_bytes, tus = image_bytes("good/cmyk.jpg"), {**csrf, "Tus-Resumable": "1.0.0"}
    for finish in (True, False):
        # Finished: the whole file in one (final) piece. Unfinished: one piece short of the end,
        # of AVENUE_TUS_MIN_CHUNK_BYTES (256 KiB), the least such a piece may bring.
        body = tus_bytes if finish else (tus_bytes * 2)[:256 * 1024]
        length = len(body) if finish else 2 * len(body)
        created = client.post("/api/tus", headers={**tus, "Upload-Length": str(length)})
        assert created.status_code == 201
        url = "/api/tus/" + created.headers["Location"].rsplit("/", 1)[-1]
        sent = client.patch(url, data=body, headers={
            **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert sent.status_code == 204
        assert client.head(url, headers=tus).status_code == 200
        assert client.get(url, headers=tus).status_code == 200
        if not finish:
            assert client.delete(url, headers=tus).status_code == 204
    # Upload links: created, a holder's file and tus upload through one (the lookup by secret,
    # the use taken and given back), the list, a revoke.
    link_body = {"target": {"kind": "uploads"}, "max_uses": 3}
    links = [client.post("/api/upload-links", headers=csrf, json=link_body).get_json() for _ in range(2)]
    holder = {"Authorization": f"UploadLink {links[0]['secret']}"}
    assert client.post("/api/upload-links/files", headers=holder,
                       data={"file": (io.BytesIO(image_bytes("good/alpha.png")), "l.png")}).status_code == 201
    assert client.post("/api/upload-links/files", headers=holder,
                       data={"file": (io.BytesIO(b"%PDF-1.4"), "l.pdf")}).status_code == 415
    made = client.post("/api/upload-links/tus", headers={**holder, "Tus-Resumable": "1.0.0",
                                                         "Upload-Length": str(len(tus_bytes))})
    assert made.status_code == 201
    url = "/api/upload-links/tus/" + made.headers["Location"].rsplit("/", 1)[-1]
    assert client.patch(url, data=tus_bytes, headers={
        **holder, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"}).status_code == 204
    assert client.delete(f"/api/upload-links/{links[1]['link']['id']}", headers=csrf).status_code == 200

    requests = [
        ("/api/shop/products", {}, {}),
        ("/api/shop/products/IX-0", {}, {}),
        ("/api/builder/media", csrf, {}),
        ("/api/builder/media", csrf, {"q": "lamp"}),
        ("/api/builder/media", csrf, {"folder": "/shop"}),
        ("/api/builder/media", csrf, {"folder": "/"}),
        ("/api/builder/media", csrf, {"tag": "red"}),
        ("/api/builder/media", csrf, {"color": "#808080"}),
        ("/api/builder/media", csrf, {"sort": "oldest"}),
        ("/api/builder/media", csrf, {"sort": "name"}),
        ("/api/builder/media", csrf, {"sort": "size"}),
        ("/api/builder/media", csrf, {"sort": "name", "folder": "/shop"}),
        ("/api/builder/media", csrf, {"sort": "size", "tag": "red"}),
        ("/api/builder/media", csrf, {"unused": "0"}),
        ("/api/builder/media/near-duplicates", csrf, {}),
        ("/api/builder/media/near-duplicates", csrf, {"per_page": 1}),
        ("/api/builder/folders", csrf, {}),
        ("/api/builder/tags", csrf, {}),
        (f"/api/builder/media/{media_id}", csrf, {}),
        ("/api/builder/pages/home", csrf, {}),
        ("/api/uploads", csrf, {}),
        ("/api/uploads", admin, {"owner": "someone"}),
        ("/api/upload-links", csrf, {}),
        ("/api/upload-links", admin, {}),
        ("/api/admin/audit", admin, {}),
        ("/api/admin/audit", admin, {"action": "product_created"}),
        ("/api/admin/audit", admin, {"user": email}),
        ("/api/admin/audit", admin, {"user": "nobody@example.com"}),
        ("/api/auth/me", csrf, {}),
        # Status: counters, index counts and the sweep's one document; never a scan.
        ("/api/shop/debug/products-status", admin, {}),
        ("/api/shop/debug/storage-status", admin, {}),
        # The dashboard's history: samples by time, the upload counts by hour (their _id).
        ("/api/admin/history", admin, {"range": "30d"}),
    ]
    for with_fences in (False, True):
        if with_fences:
            # The same requests again with fences every item apart (what the status sweep
            # builds every FENCE_EVERY items): each page is then asked for in windows.
            recorder.active = False
            with app.app_context():
                for listed in FENCED:
                    fenced.build_fences(get_mongo().db, listed, every=1)
            fenced.forget_fences()
            recorder.active = True
        for path, headers, query in requests:
            first = client.get(path, headers=headers, query_string={**query, "per_page": 1})
            assert first.status_code == 200, (path, first.get_json())
            body = first.get_json()
            if isinstance(body, dict) and body.get("next"):
                following = client.get(path, headers=headers,
                                       query_string={**query, "per_page": 1, "after": body["next"]})
                assert following.status_code == 200
    product = client.get("/api/shop/products/IX-0").get_json()
    for url in (product["images"][0]["url"], *product["images"][0]["variants"].values()):
        if isinstance(url, str):
            assert client.get(url).status_code in (200, 304)
    # Replace in place (a product photo, library media, an upload), a focal point, and an
    # earlier version's URL (the 308).
    other = image_bytes("good/progressive.jpg")
    replaced = client.put(f"/api/shop/products/IX-0/images/{image_id}", headers=admin,
                          data={"file": (io.BytesIO(other), "other.jpg")})
    assert replaced.status_code == 200, replaced.get_json()
    assert client.put(f"/api/builder/media/{media_id}/focal-point", headers=csrf,
                      json={"x": 0.2, "y": 0.3}).status_code == 200
    assert client.put(f"/api/uploads/{upload.get_json()['id']}", headers=csrf,
                      data={"file": (io.BytesIO(other), "other.jpg")}).status_code == 200
    assert client.get(product["images"][0]["url"]).status_code == 308
    # Deletes look for references first.
    assert client.delete(f"/api/builder/media/{media_id}", headers=csrf).status_code == 409
    assert client.delete(f"/api/shop/products/IX-0/images/{image_id}", headers=admin).status_code == 200
    assert client.delete("/api/shop/products/IX-1", headers=admin).status_code == 204
    # The trash: its list (all, per bucket, by cursor), one item, a restore onto its product,
    # an upload that brings trashed bytes back, a purge.
    assert client.delete(f"/api/builder/media/{media_id}?force=1", headers=csrf).status_code == 204
    listed = client.get("/api/trash", headers=admin, query_string={"per_page": 1})
    assert listed.status_code == 200 and listed.get_json()["next"]
    assert client.get("/api/trash", headers=admin, query_string={
        "per_page": 1, "after": listed.get_json()["next"]}).status_code == 200
    assert client.get("/api/trash", headers=csrf).status_code == 200  # an editor's: the library's
    assert client.get(f"/api/trash/{media_id}", headers=csrf).status_code == 200
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": "IX-1", "name": "again", "price": 1}).status_code == 201
    assert client.post(f"/api/trash/{image_id}/restore", headers=admin).status_code == 200
    assert client.post("/api/builder/media", headers=csrf,
                       data={"file": (io.BytesIO(photo), "again.jpg")}).status_code == 200
    assert client.delete(f"/api/uploads/{upload.get_json()['id']}", headers=csrf).status_code == 204
    assert client.delete(f"/api/trash/{upload.get_json()['id']}", headers=admin).status_code == 204
    recorder.active = False

    assert len(recorder.commands) > 40
    with app.app_context():
        assert_served(get_mongo().db, recorder.commands)


def stored(db, bucket: str) -> dict:
    """A photo stored in ``bucket`` through the library door, as its record."""
    from avenue.media import AppMedia, Library

    upload = Library.Upload("p.jpg", image_bytes("good/progressive.jpg"))
    image = AppMedia.on(db).library(bucket).store(upload).image
    doc = record(db, bucket, image.id)
    assert doc is not None, image.id
    return doc


@pytest.mark.slow
def test_the_rendition_budget_and_recency_use_indexes(backend, db_name):
    """Not requests, but they run at any size, every minute: the eviction walks the recency
    index (never a scan and a sort of ten million renditions), the deliveries' flush writes by
    ``_id``, the running total is one read by ``_id``."""
    from avenue.db import get_mongo
    from avenue.media import AppMedia, Buckets
    from avenue.media.wiring import Route

    with recorded_app(backend, db_name) as (app, recorder):
        client = app.test_client()
        with app.app_context():
            get_mongo().ensure_indexes()
            db = get_mongo().db
            doc = stored(db, Buckets.PRODUCTS)
        urls = [f"/media/products/{doc['_id']}/w_{width}.webp" for width in (160, 320, 480, 640, 800)]
        for url in urls:
            assert client.get(url).status_code == 200
        recorder.active = True
        assert client.get(urls[0]).status_code == 200
        with app.app_context():
            # One write for the five renditions served (never one each), per minute the
            # answers' times fall in (renditions.record_used): two when they straddle one.
            assert Route.flush_deliveries(app, 60.0)["renditions"] in (1, 2)
            assert AppMedia.on(db).maintenance.evict_renditions(1).files == len(urls)
        recorder.active = False
        names = {"find", "update", "delete"}
        recorded = [c for c in recorder.commands if next(iter(c)) in names]
        assert any(next(iter(c)) == "find" and c.get("sort") for c in recorded)  # the eviction's walk
        assert_served(db, recorded)


@pytest.mark.slow
def test_the_delivery_numbers_are_written_and_read_by_indexes(backend, db_name):
    """The flush writes by ``_id``; top and heaviest read the range by the ``day`` index, one
    image's days by ``image_day``, last served by ``_id``: never a scan of ten million images'
    days."""
    from avenue.db import get_mongo
    from avenue.media import Buckets
    from avenue.media.wiring import Route
    from tests.helpers import Auth

    with recorded_app(backend, db_name) as (app, recorder):
        client = app.test_client()
        with app.app_context():
            get_mongo().ensure_indexes()
            db = get_mongo().db
            doc = stored(db, Buckets.BUILDER)
        ops = Auth(app).token("ops")
        assert client.get(f"/media/builder/{doc['_id']}").status_code == 200
        recorder.active = True
        with app.app_context():
            assert Route.flush_deliveries(app, 60.0)["images"] == 1
        for path in ("/api/admin/deliveries/top", "/api/admin/deliveries/top?by=bytes",
                     f"/api/admin/deliveries/images/builder/{doc['_id']}",
                     "/api/admin/deliveries/never-served", "/api/admin/cleanup?days=1"):
            assert client.get(path, headers=ops).status_code == 200, path
        recorder.active = False
        names = {"find", "update", "aggregate"}
        recorded = [c for c in recorder.commands
                    if next(iter(c)) in names and c[next(iter(c))] == "media_deliveries"]
        assert {next(iter(c)) for c in recorded} == {"find", "update", "aggregate"}
        assert_served(db, recorded)
