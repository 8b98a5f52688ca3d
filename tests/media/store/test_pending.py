"""An upload answers before the variants it does not need (avenue/media/store/pending.py): every
URL of the answer serves the right image at once, the render after the answer completes them,
a worker that died before it leaves variants that still serve and that fsck repairs, and one
pending variant asked for at once by many is rendered once."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading

import pytest
from PIL import Image

from avenue.media import AppMedia, Buckets
from avenue.media.buckets import TRASH
from avenue.media.core import MediaSettings
from avenue.media.ingest import pipeline
from avenue.media.serve import route
from avenue.media.serve.frontdoor import front_door_of
from avenue.media.store import pending
from tests.helpers import image_bytes
from tests.support.client import upload
from tests.support.records import images, record

FORMATS = {"webp": "WEBP", "jpg": "JPEG", "png": "PNG"}


@pytest.fixture
def app(app_factory):
    """The app as deployed: pending variants rendered after the answer."""
    return app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True)


@pytest.fixture
def held(monkeypatch) -> list:
    """The renders after the answer, kept here instead of started: a test runs them when it
    chooses (never, to be the worker that died)."""
    jobs: list = []
    monkeypatch.setattr(route, "start_after_answer", jobs.extend)
    return jobs


@pytest.fixture
def renders(monkeypatch) -> list:
    """Every render of stored bytes (pending variants, repairs): the (name, format) pairs asked."""
    seen: list = []
    real = pipeline.render_stored

    def counting(data, focal, only=None, **kwargs):
        seen.append(sorted(only or ()))
        return real(data, focal, only, **kwargs)

    monkeypatch.setattr(pipeline, "render_stored", counting)
    return seen


def answered(client, headers, name="good/progressive.jpg", **fields) -> dict:
    """Upload ``name`` and close the answer (what the server does once it is sent: the render
    after it is handed to ``start_after_answer``); the image object."""
    response = upload(client, headers, name, **fields)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    response.close()
    return body


def original(db, body: dict) -> dict:
    from bson import ObjectId

    return record(db, Buckets.UPLOADS, ObjectId(body["id"]))


def every_variant_url(body: dict) -> list[tuple[str, str, str]]:
    """(variant, extension or "" when negotiated, URL) for every variant URL of an answer."""
    urls = [(name, "", url) for name, url in body["variants"].items()]
    urls += [(name, ext, url) for name, formats in body["variant_urls"].items()
             for ext, url in formats.items()]
    return urls


def served_image(client, url: str, accept: str = "image/webp,*/*") -> tuple[Image.Image, bytes, str]:
    response = client.get(url, headers={"Accept": accept})
    assert response.status_code == 200, (url, response.status_code, response.data[:200])
    data = response.data
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes: not a truncated or stand-in body
    return image, data, response.headers["Content-Type"]


@pytest.mark.parametrize("name,visibility", [("good/progressive.jpg", "public"),
                                             ("good/alpha.png", "private")])
def test_every_url_in_the_answer_serves_the_right_image_before_any_render_after_it(
        client, db, auth, held, name, visibility):
    body = answered(client, auth.token("editor"), name, visibility=visibility)
    assert len(held) == 1  # the render after the answer was handed over, not run
    assert len(pending.pending_of(original(db, body))) == 7  # every variant but the WebP thumb
    image, data, _ = served_image(client, body["url"])
    assert len(data) == body["bytes"] and (image.width, image.height) == (body["width"], body["height"])
    for variant, ext, url in every_variant_url(body):
        for accept in ("image/webp,*/*", "image/*"):
            image, data, content_type = served_image(client, url, accept)
            size = body["variant_sizes"][variant]
            assert (image.width, image.height) == (size["width"], size["height"]), (variant, ext, url)
            if ext:
                assert image.format == FORMATS[ext] and content_type == f"image/{FORMATS[ext].lower()}"
            listed = original(db, body)["metadata"]["variants"][variant]
            fmt = {"WEBP": "webp", "JPEG": "jpeg", "PNG": "png"}[image.format]
            # The bytes the original lists for that variant now: the real rendition, no stand-in.
            assert hashlib.sha256(data).hexdigest() == listed[fmt]["sha256"]
    assert pending.pending_of(original(db, body)) == []


def test_the_render_after_the_answer_completes_every_pending_variant_once(client, db, auth, held, renders):
    body = answered(client, auth.token("editor"), "good/grayscale.jpg", visibility="public")
    assert renders == []  # nothing rendered from the stored bytes before the answer
    for job in held:
        job()
    doc = original(db, body)
    assert pending.pending_of(doc) == []
    listed = [info for formats in doc["metadata"]["variants"].values() for info in formats.values()]
    assert len(listed) == 8
    # Its 8 variants and its bytes' file.
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({"metadata.original_id": doc["_id"]}) == 9
    assert len(renders) == 1 and len(renders[0]) == 7  # one decode for the seven
    for job in held:
        job()  # again (a retry): nothing left to render
    assert len(renders) == 1
    for variant, ext, url in every_variant_url(body):
        assert client.get(url).status_code == 200, (variant, ext)


def test_the_render_after_the_answer_of_an_image_deleted_meanwhile_writes_nothing(client, db, auth, held):
    headers = auth.token("editor")
    body = answered(client, headers, "good/grayscale.jpg", visibility="public")
    assert client.delete(f"/api/uploads/{body['id']}", headers=headers).status_code in (200, 204)
    for job in held:
        job()
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({"metadata.role": "variant"}) == 0


def test_a_render_after_the_answer_that_lands_in_the_middle_of_a_delete_leaves_no_file_behind(
        client, db, auth, held, runner, monkeypatch):
    from avenue.media.store import storage

    headers = auth.token("editor")
    body = answered(client, headers, "good/grayscale.jpg", visibility="public")
    image_id = original(db, body)["_id"]
    real = storage.delete_file

    def render_lands_first(*args, **kwargs):
        # The delete has read the image (seven variants pending) and copied it to the trash;
        # the render after the answer runs whole now, before the original goes.
        while held:
            held.pop()()
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, "delete_file", render_lands_first)
    assert client.delete(f"/api/uploads/{body['id']}", headers=headers).status_code == 204
    monkeypatch.setattr(storage, "delete_file", real)
    # Its variants left with it (they were seven orphans, fsck's orphan_variant, exit 1).
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({"metadata.original_id": image_id}) == 0
    # The trash's copy keeps them pending: a state fsck lists, not a fault.
    assert len(pending.pending_of(record(db, TRASH, image_id))) == 7
    checked = runner.invoke(args=["fsck"])
    assert checked.exit_code == 0, checked.output
    assert "states (not problems):" in checked.output and f"{TRASH} {image_id}" in checked.output
    # Restored, its first GET renders them.
    assert client.post(f"/api/trash/{body['id']}/restore", headers=auth.token("admin")).status_code == 200
    served_image(client, body["variant_urls"]["og"]["jpg"])
    assert pending.pending_of(original(db, body)) == []


def test_a_lapsed_render_whose_files_the_next_listed_leaves_them_listed(client, db, auth, held, monkeypatch):
    from avenue.media.store import storage

    body = answered(client, auth.token("editor"), "good/grayscale.jpg", visibility="public")
    first = original(db, body)
    real = storage.put_files
    nested = []

    def taken_over(*args, **kwargs):
        written = real(*args, **kwargs)
        # Its claim lapsed here: the next renderer finds these files by their keys and lists them.
        monkeypatch.setattr(storage, "put_files", real)
        nested.append(pending._render(db, Buckets.UPLOADS, original(db, body), MediaSettings()))
        return written

    monkeypatch.setattr(storage, "put_files", taken_over)
    # Its own listing misses: none are pending now.
    pending._render(db, Buckets.UPLOADS, first, MediaSettings())
    doc = original(db, body)
    assert nested[0] is not None and pending.pending_of(doc) == []
    listed = [info["id"] for formats in doc["metadata"]["variants"].values() for info in formats.values()]
    # None removed under it.
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({"_id": {"$in": listed}}) == 8
    assert AppMedia.on(db).maintenance.fsck().ok


def test_the_front_door_leaves_a_pending_variant_to_the_route(app, client, auth, held):
    body = answered(client, auth.token("editor"), visibility="public")
    assert client.get(body["url"]).status_code == 200  # the original's document is cached now
    front = front_door_of(app)
    assert front is not None
    path = body["variant_urls"]["card"]["webp"]
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_ACCEPT": "image/webp"}
    assert front.answer(environ, path) is None  # not a 404, not a stand-in: the route renders it
    assert client.get(path).status_code == 200


def test_a_worker_that_died_before_rendering_leaves_variants_that_serve_and_fsck_repairs(
        app, client, db, auth, held, runner, media_core):
    body = answered(client, auth.token("editor"), "good/alpha.png", visibility="public")
    held.clear()  # the worker died: its render never runs
    files = db[f"{Buckets.UPLOADS}.files"]
    doc = original(db, body)
    hour_ago = doc["uploadDate"] - dt.timedelta(hours=1)
    images(db, Buckets.UPLOADS).update_one({"_id": doc["_id"]}, {"$set": {"uploadDate": hour_ago}})
    # Pending variants are a state, fresh or old: reported, never a fault (the render is due,
    # or its worker died: the first GET or --repair renders them).
    report = AppMedia.on(db).maintenance.fsck()
    assert report.ok and [f for f in report.findings if f.doc["_id"] == doc["_id"]] == []
    (state,) = [f for f in report.states if f.doc["_id"] == doc["_id"]]
    assert {s["code"] for s in state.states} == {"pending_variant"} and len(state.states) == 7
    assert report.state_counts == {"pending_variant": 7}
    before = files.count_documents({})
    assert runner.invoke(args=["gc"]).exit_code == 0
    assert files.count_documents({}) == before  # gc neither removes nor misses anything
    repaired = AppMedia.on(db, media_core).maintenance.fsck(repair=True)
    assert repaired.ok and repaired.remaining is not None, repaired.summary()
    assert repaired.remaining.states == []  # --repair rendered them
    assert pending.pending_of(original(db, body)) == []
    for variant, ext, url in every_variant_url(body):
        assert client.get(url).status_code == 200, (variant, ext)


def test_a_variant_of_a_worker_that_died_serves_on_its_first_get(client, db, auth, held):
    body = answered(client, auth.token("editor"), visibility="public")
    held.clear()
    image, _, _ = served_image(client, body["variant_urls"]["og"]["jpg"])
    assert (image.width, image.height) == (body["variant_sizes"]["og"]["width"],
                                           body["variant_sizes"]["og"]["height"])
    assert pending.pending_of(original(db, body)) == []  # the GET rendered them all, once


@pytest.mark.database
def test_many_gets_of_one_pending_variant_at_once_render_it_once(app_factory, backend, auth, held, renders):
    if backend[0].__name__ == "<lambda>":
        pytest.skip("threads against one database: the wire-protocol server's test")
    apps = [app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True), app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True)]
    body = answered(apps[0].test_client(), auth.token("editor"), "good/grayscale.jpg", visibility="public")
    url = body["variant_urls"]["gallery"]["webp"]
    answers: list[tuple[int, bytes]] = []
    start = threading.Barrier(8)

    def fetch(app):
        client = app.test_client()
        start.wait()
        response = client.get(url)
        answers.append((response.status_code, response.data))

    threads = [threading.Thread(target=fetch, args=(apps[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * 8
    assert len({data for _, data in answers}) == 1
    for job in held:
        job()  # the render after the answer, late: finds them done
    assert len(renders) == 1


def test_a_pending_variant_of_a_private_image_is_refused_without_its_signature_and_not_rendered(
        client, db, auth, held, renders):
    body = answered(client, auth.token("editor"), visibility="private")
    url = body["variant_urls"]["card"]["webp"]
    assert client.get(url.split("?")[0]).status_code == 404
    assert client.get(url.replace("sig=", "sig=0")).status_code == 403
    assert renders == [] and len(pending.pending_of(original(db, body))) == 7


def test_a_render_that_died_after_writing_its_files_is_finished_by_the_next_without_rendering_again(
        client, db, auth, held, renders, monkeypatch):
    from avenue.media.store import storage

    body = answered(client, auth.token("editor"), "good/grayscale.jpg", visibility="public")
    real = storage.put_files

    def dies_after_writing(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("the worker died before listing them")

    monkeypatch.setattr(storage, "put_files", dies_after_writing)
    for job in held:
        job()  # logged, not raised: the image keeps its pending variants and the written files
    monkeypatch.setattr(storage, "put_files", real)
    assert len(pending.pending_of(original(db, body))) == 7
    image, _, _ = served_image(client, body["variant_urls"]["card"]["jpg"])
    assert image.format == "JPEG"
    doc = original(db, body)
    assert pending.pending_of(doc) == [] and len(renders) == 1  # listed by their keys, not rendered again
    # Its 8 variants and its bytes' file.
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({"metadata.original_id": doc["_id"]}) == 9


def test_a_render_after_the_answer_cut_across_by_a_replace_leaves_only_the_new_version(
        client, db, auth, held, monkeypatch):
    headers = auth.token("editor")
    body = answered(client, headers, "good/grayscale.jpg", visibility="public")
    real = pipeline.render_stored
    replaced = []

    def replace_while_rendering(data, focal, only=None, **kwargs):
        rendered = real(data, focal, only, **kwargs)  # the first version's seven, rendered...
        replaced.append(client.put(  # ...while the image is replaced in place
            f"/api/uploads/{body['id']}", headers=headers, content_type="multipart/form-data",
            data={"file": (io.BytesIO(image_bytes("good/progressive.jpg")), "p.jpg")}))
        return rendered

    monkeypatch.setattr(pipeline, "render_stored", replace_while_rendering)
    first_version = list(held)
    held.clear()
    for job in first_version:
        job()
    assert replaced[0].status_code == 200, replaced[0].get_json()
    # The new version's seven are pending too (a replace answers before them): the first
    # version's render, cut across, listed none of its files under them.
    doc = original(db, body)
    assert len(pending.pending_of(doc)) == 7
    assert db[f"{Buckets.UPLOADS}.files"].count_documents({"metadata.original_id": doc["_id"],
                                                           "metadata.variant": {"$ne": "original"}}) == 1
    monkeypatch.setattr(pipeline, "render_stored", real)
    replaced[0].close()  # the replace's answer is sent: its own render is handed over
    for job in held:
        job()
    doc = original(db, body)
    assert pending.pending_of(doc) == []
    listed = {info["id"] for formats in doc["metadata"]["variants"].values() for info in formats.values()}
    variants = {v["_id"] for v in db[f"{Buckets.UPLOADS}.files"].find({"metadata.role": "variant",
                                                                "metadata.variant": {"$ne": "original"}})}
    assert variants == listed  # the new version's eight: the cut-off render took its files back
    for variant, ext, url in every_variant_url(replaced[0].get_json()):
        assert client.get(url).status_code == 200, (variant, ext)


def test_pending_renders_take_a_render_slot_like_renditions_on_request(app_factory, db, auth, held, renders,
                                                                       monkeypatch):
    app = app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True, AVENUE_RENDER_CONCURRENCY=1)
    client = app.test_client()
    monkeypatch.setattr(route, "RENDER_SLOT_WAIT_SECONDS", 0.05)
    body = answered(client, auth.token("editor"), "good/grayscale.jpg", visibility="public")
    url = body["variant_urls"]["card"]["webp"]
    slots = route.get_state(app).renders
    assert slots.acquire(timeout=1)  # the one slot, taken by a rendition on request
    try:
        for job in held:
            job()  # waits for the slot, gives up: logged, left for the first GET
        answer = client.get(url)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert answer.get_json()["error"]["code"] == "busy"
        assert renders == [] and len(pending.pending_of(original(db, body))) == 7
    finally:
        slots.release()
    served_image(client, url)  # the slot is free: rendered now
    assert len(renders) == 1 and pending.pending_of(original(db, body)) == []
    assert slots.acquire(timeout=0)  # and given back
    slots.release()


def test_renders_of_stored_originals_count_against_the_apps_decode_budget(app_factory, db, auth, held):
    from avenue.media.ingest.images import decode_budget

    capacity = 150 * 2**20  # this app's own budget: a size no other test's app shares
    app = app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True, AVENUE_DECODE_BUDGET_BYTES=capacity,
                      AVENUE_DECODE_WAIT_SECONDS=0)
    client = app.test_client()
    body = answered(client, auth.token("editor"), "good/grayscale.jpg", visibility="public")
    variant = body["variant_urls"]["card"]["webp"]
    rendition = body["renditions"]["srcset"]["webp"].split(", ")[0].split(" ")[0]
    budget = decode_budget(capacity)
    budget.reserve(capacity, 1)  # every byte of it held by uploads being decoded
    try:
        for url in (variant, rendition):
            answer = client.get(url)
            assert answer.status_code == 503, (url, answer.status_code)
            assert answer.get_json()["error"]["code"] == "busy"
        assert len(pending.pending_of(original(db, body))) == 7
    finally:
        budget.release(capacity)
    served_image(client, variant)
    served_image(client, rendition)
    assert budget.in_use == 0


def test_a_replace_in_place_answers_before_its_variants_and_every_url_serves_the_new_version(
        client, db, auth, held, renders):
    headers = auth.token("editor")
    body = answered(client, headers, "good/grayscale.jpg", visibility="public")
    for job in held:
        job()
    held.clear()
    renders.clear()
    response = client.put(f"/api/uploads/{body['id']}", headers=headers, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(image_bytes("good/progressive.jpg")), "p.jpg")})
    assert response.status_code == 200, response.get_json()
    replaced = response.get_json()
    response.close()
    assert replaced["version"] != body.get("version")
    assert renders == [] and len(held) == 1  # nothing but the WebP thumb before the answer
    doc = original(db, replaced)
    assert len(pending.pending_of(doc)) == 7
    assert doc["metadata"]["version"] == replaced["version"]
    for variant, ext, url in every_variant_url(replaced):
        image, data, _ = served_image(client, url)
        size = replaced["variant_sizes"][variant]
        assert (image.width, image.height) == (size["width"], size["height"]), (variant, ext, url)
        assert replaced["version"] in url
    assert len(renders) == 1  # the first GET rendered the seven, once
    for job in held:
        job()  # the render after the answer, late: finds them done
    doc = original(db, replaced)
    assert pending.pending_of(doc) == [] and len(renders) == 1
    listed = {info["id"] for formats in doc["metadata"]["variants"].values() for info in formats.values()}
    files = {v["_id"] for v in db[f"{Buckets.UPLOADS}.files"].find({"metadata.original_id": doc["_id"],
                                                             "metadata.variant": {"$ne": "original"}})}
    assert files == listed  # the first version's variants gone, the new version's eight

