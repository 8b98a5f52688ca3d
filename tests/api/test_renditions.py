"""Renditions on request: the URL, who may ask for what, rendered once and stored, removal."""

from __future__ import annotations

import io
import threading
import time
import types

import pymongo
import pytest
from PIL import Image
from werkzeug.test import Client

from avenue.clock import as_utc
from avenue.media import AppMedia, Buckets, Media, UrlSigner
from avenue.media.buckets import RENDITIONS
from avenue.media.core import NO_PURGES
from avenue.media.effects.counters import of as counters_of
from avenue.media.serve import route
from avenue.media.serve.frontdoor import FrontDoor
from avenue.media.serve.signing import sign_rendition
from avenue.media.store import renditions
from avenue.media.store.originals import delete_image, store
from avenue.media.store.replace import replace_bytes
from avenue.media.transform import parse
from avenue.presentation.objects import signer_from_config
from tests.helpers import Auth, expires_after, image_bytes, listening, make_app, passed_to_route
from tests.support.commands import Matching, Recorder, namespaces, on_database

KEY = "test-secret-key-for-avenue"


def put(app, name="good/progressive.jpg", bucket=Buckets.PRODUCTS, **kwargs) -> dict:
    """Store a fixture through the media core; its files document."""
    from avenue.db import get_db, get_mongo

    with app.app_context():
        get_mongo().ensure_indexes()
        return store(get_db(), bucket, image_bytes(name), filename=name.split("/")[-1], **kwargs).doc


def path(doc, options: str, bucket_alias: str = "products") -> str:
    version = (doc.get("metadata") or {}).get("version") or ""
    token = f"{doc['_id']}~{version}" if version else str(doc["_id"])
    return f"/media/{bucket_alias}/{token}/{options}"


def stored(db) -> list[dict]:
    return list(db[f"{RENDITIONS}.files"].find())


@pytest.fixture
def renders(monkeypatch):
    """Counts the renders the route runs (each one the real renderer)."""
    calls = []
    real = route.render_spec

    def counted(*args, **kwargs):
        calls.append(args[2].key())
        return real(*args, **kwargs)

    monkeypatch.setattr(route, "render_spec", counted)
    return calls


def test_the_first_get_renders_and_stores_and_the_second_is_served_from_storage(app, client, db, renders):
    doc = put(app)
    first = client.get(path(doc, "w_320.webp"))
    assert first.status_code == 200, first.get_data()
    assert first.headers["Content-Type"] == "image/webp"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.headers["ETag"] and first.headers.get("X-Request-ID")
    assert "Vary" not in first.headers
    second = client.get(path(doc, "w_320.webp"))
    assert second.status_code == 200 and second.get_data() == first.get_data()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert renders == ["w_320"]
    files = stored(db)
    assert len(files) == 1
    meta = files[0]["metadata"]
    assert (meta["source"], meta["image_id"], meta["version"], meta["spec"], meta["format"]) == \
        (Buckets.PRODUCTS, doc["_id"], "", "w_320", "webp")
    with Image.open(io.BytesIO(first.get_data())) as im:
        assert (im.format, im.size) == ("WEBP", (320, 240))


def test_a_jpeg_rendition_records_the_baseline_recipe_it_was_made_with(app, client, db):
    from avenue.media import formats

    doc = put(app)
    sig = sign_rendition(KEY, Buckets.PRODUCTS, str(doc["_id"]), "", "w_320,q_80")
    made = client.get(path(doc, "w_320,q_80.jpg") + f"?sig={sig}")
    assert made.status_code == 200, made.get_data()
    assert "progressive" not in Image.open(io.BytesIO(made.get_data())).info
    files = stored(db)
    assert files[0]["metadata"]["recipe"] == formats.recipe("jpeg", 80, progressive=False)
    assert files[0]["metadata"]["recipe"] != formats.recipe("jpeg", 80)  # the fixed variants' (progressive)
    assert not renditions.is_stale(files[0])


def test_it_answers_ranges_and_304_like_any_file(app, client, db):
    doc = put(app)
    url = path(doc, "w_320.jpg")
    whole = client.get(url)
    part = client.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.get_data() == whole.get_data()[:10]
    again = client.get(url, headers={"If-None-Match": whole.headers["ETag"]})
    assert again.status_code == 304


def test_a_rendition_is_never_upscaled(app, client):
    doc = put(app)  # 1024 x 768
    response = client.get(path(doc, "w_1920.png"))
    with Image.open(io.BytesIO(response.get_data())) as im:
        assert (im.format, im.size) == ("PNG", (1024, 768))


def test_ladder_widths_above_the_image_s_own_are_one_stored_file_at_its_width(app, client, db, renders):
    doc = put(app)  # 1024 x 768
    answers = [client.get(path(doc, f"w_{width}.webp")) for width in (1280, 1600, 1920, 2560)]
    assert [answer.status_code for answer in answers] == [200] * 4
    assert len({answer.headers["ETag"] for answer in answers}) == 1
    assert renders == ["w_1024"]
    assert [(f["metadata"]["spec"], f["metadata"]["own_width"]) for f in stored(db)] == [("w_1024", True)]
    with Image.open(io.BytesIO(answers[0].get_data())) as im:
        assert im.size == (1024, 768)
    # Below its width nothing changes; w_1024 itself is not on the ladder: signed only.
    assert client.get(path(doc, "w_960.webp")).status_code == 200
    assert client.get(path(doc, "w_1024.webp")).status_code == 403
    assert sorted(f["metadata"]["spec"] for f in stored(db)) == ["w_1024", "w_960"]


def test_cover_crops_to_the_box(app, client):
    doc = put(app)
    response = client.get(path(doc, "w_400,h_400,fit_cover.jpg") + "?sig="
                          + sign_rendition(KEY, Buckets.PRODUCTS, str(doc["_id"]), "",
                                           "w_400,h_400,fit_cover"))
    assert response.status_code == 200, response.get_data()
    with Image.open(io.BytesIO(response.get_data())) as im:
        assert (im.format, im.size) == ("JPEG", (400, 400))


@pytest.mark.parametrize("accept,expected", [
    ("image/avif,image/webp,*/*", "image/avif"),
    ("image/webp,*/*", "image/webp"),
    ("*/*", "image/jpeg"),
    ("", "image/jpeg"),
    # q-values (issue 62: "image/avif;q=0" got AVIF): q=0 is never, the higher q wins.
    ("image/avif;q=0,image/webp,*/*", "image/webp"),
    ("image/avif;q=0,image/webp;q=0,*/*", "image/jpeg"),
    ("image/avif;q=0.5,image/webp,*/*;q=0.8", "image/webp"),
    ("image/avif;q=0.5,image/jpeg", "image/jpeg"),
])
def test_without_an_extension_the_format_follows_accept_and_says_so(app, client, accept, expected):
    doc = put(app)
    response = client.get(path(doc, "w_160"), headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == expected
    assert response.headers["Vary"] == "Accept"


def test_an_image_with_transparency_falls_back_to_png(app, client):
    doc = put(app, "good/alpha.png")
    response = client.get(path(doc, "w_160"), headers={"Accept": "*/*"})
    assert response.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("options", ["w_0", "w_800,w_800", "x_1", "w_08", "w_800.gif", "fit_cover", "w_abc"])
def test_malformed_options_are_400_bad_rendition(app, client, options):
    doc = put(app)
    response = client.get(path(doc, options))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_rendition"


def test_an_unsigned_rendition_off_the_ladder_is_403_saying_what_to_do(app, client, db):
    doc = put(app)
    response = client.get(path(doc, "w_333.webp"))
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "rendition_not_allowed" and "signed" in error["message"]
    for bad in ("nonsense",
                sign_rendition("another-key-entirely-0123456789", Buckets.PRODUCTS, str(doc["_id"]), "",
                                           "w_333")):
        assert client.get(path(doc, "w_333.webp") + f"?sig={bad}").status_code == 403
    assert stored(db) == []


def test_a_signed_rendition_renders_and_its_signature_covers_every_spelling(app, client):
    doc = put(app)
    signer = signer_from_config(app.config)
    url = signer.rendition_url(Buckets.PRODUCTS, doc["_id"], parse("w_333").spec, "webp")
    assert client.get(url).status_code == 200
    sig = url.split("sig=")[1]
    # dpr_1 is the same spec: the same canonical key, the same signature.
    assert client.get(path(doc, "w_333,dpr_1.webp") + f"?sig={sig}").status_code == 200
    # Another spec with this signature is refused.
    assert client.get(path(doc, "w_334.webp") + f"?sig={sig}").status_code == 403


def test_a_rotated_key_still_verifies_and_a_retired_one_does_not(app_factory):
    old = "the-old-secret-key-of-avenue-0001"
    app = app_factory(SECRET_KEY="the-new-secret-key-of-avenue-002", SECRET_KEY_FALLBACKS=[old])
    doc = put(app)
    url = UrlSigner(key=old).rendition_url(Buckets.PRODUCTS, doc["_id"], parse("w_333").spec, "webp")
    assert app.test_client().get(url).status_code == 200
    retired = UrlSigner(key="a-key-nobody-holds-any-more-0003").rendition_url(
        Buckets.PRODUCTS, doc["_id"], parse("w_334").spec, "webp")
    assert app.test_client().get(retired).status_code == 403


def test_presets_are_served_unsigned_at_1x_to_3x_and_by_name(app_factory):
    app = app_factory(AVENUE_RENDITION_PRESETS="hero=w_600,h_200,fit_cover")
    client = app.test_client()
    doc = put(app)
    assert client.get(path(doc, "w_600,h_200,fit_cover.webp")).status_code == 200
    assert client.get(path(doc, "w_600,h_200,fit_cover,dpr_2.webp")).status_code == 200
    named = client.get(path(doc, "hero.jpg"))
    assert named.status_code == 200
    with Image.open(io.BytesIO(named.get_data())) as im:
        assert im.size == (600, 200)
    assert client.get(path(doc, "w_600,h_201,fit_cover.webp")).status_code == 403


def test_a_preset_carrying_its_quality_is_served_unsigned(app_factory):
    app = app_factory(AVENUE_RENDITION_PRESETS="square=w_512,h_512,q_80")
    client = app.test_client()
    doc = put(app)
    for segment in ("square.webp", "w_512,h_512,q_80.webp"):
        answer = client.get(path(doc, segment))
        assert answer.status_code == 200, (segment, answer.get_data())
    refused = client.get(path(doc, "w_512,h_512,q_81.webp"))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "rendition_not_allowed"


@pytest.mark.parametrize("presets", ["card=w_100", "Hero=w_100", "hero=w_0", "hero=w_100.webp", "hero"])
def test_a_bad_preset_setting_stops_the_start(app_factory, presets):
    with pytest.raises(RuntimeError, match="AVENUE_RENDITION_PRESETS"):
        app_factory(AVENUE_RENDITION_PRESETS=presets)


def test_a_private_image_needs_its_signed_url(app, client):
    doc = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    signer = signer_from_config(app.config)
    url = signer.rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_320").spec, "webp", private=True)
    ok = client.get(url)
    assert ok.status_code == 200 and ok.headers["Cache-Control"].startswith("private")
    bare = url.split("?")[0]
    assert client.get(bare).status_code == 404  # as every private URL without its signature
    assert client.get(url.replace("sig=", "sig=x")).status_code == 403
    # A signature for another spec does not open this one.
    other = signer.rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_480").spec, "webp", private=True)
    assert client.get(bare + "?" + other.split("?")[1]).status_code == 403


def test_a_private_rendition_s_signature_covers_its_format(app, client):
    doc = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    signer = signer_from_config(app.config)
    urls = signer.rendition_urls(Buckets.UPLOADS, doc["_id"], parse("w_320").spec, ("webp", "jpeg", ""),
                                 private=True)
    assert [client.get(url).status_code for url in urls.values()] == [200, 200, 200]
    webp_path, webp_query = urls["webp"].split("?")
    for other in (webp_path.replace(".webp", ".avif"), webp_path.replace(".webp", ".jpg"),
                  webp_path.removesuffix(".webp")):
        refused = client.get(f"{other}?{webp_query}")
        assert refused.status_code == 403, other


def test_an_earlier_version_redirects_then_replace_removes_its_renditions(app, client, db):
    doc = put(app)
    assert client.get(path(doc, "w_320.webp")).status_code == 200
    with app.app_context():
        replaced = replace_bytes(db, Buckets.PRODUCTS, doc["_id"], image_bytes("good/grayscale.jpg"),
                           delete_lease=_lease(),
                           media=Media())
    assert replaced is not None and replaced.changed
    assert stored(db) == []
    moved = client.get(path(doc, "w_320.webp"))
    new_path = path(replaced.doc, "w_320.webp")
    assert moved.status_code == 308 and moved.headers["Location"] == new_path
    fresh = client.get(new_path)
    with Image.open(io.BytesIO(fresh.get_data())) as im:
        assert im.size == (320, 240)
    assert [f["metadata"]["version"] for f in stored(db)] == [replaced.doc["metadata"]["version"]]


def test_an_earlier_version_of_a_private_image_is_404(app, client, db):
    doc = put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner")
    with app.app_context():
        replaced = replace_bytes(db, Buckets.UPLOADS, doc["_id"], image_bytes("good/grayscale.jpg"),
                           delete_lease=_lease(), media=Media())
    assert replaced is not None
    signer = signer_from_config(app.config)
    url = signer.rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_320").spec, "webp", private=True)
    assert client.get(url).status_code == 404


def test_delete_removes_the_renditions(app, client, db):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    client.get(path(doc, "w_160.jpg"))
    assert len(stored(db)) == 2
    with app.app_context():
        assert delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=NO_PURGES)
    assert stored(db) == [] and db[f"{RENDITIONS}.chunks"].count_documents({}) == 0
    assert client.get(path(doc, "w_320.webp")).status_code == 404


def test_deleting_to_the_trash_removes_the_renditions(app, client, db, auth):
    headers = auth.token("admin")
    sent = client.post("/api/uploads", headers=headers,
                       data={"file": (io.BytesIO(image_bytes("good/progressive.jpg")), "p.jpg"),
                             "visibility": "public"})
    assert sent.status_code == 201, sent.get_json()
    url = sent.get_json()["url"].rsplit(".", 1)[0] + "/w_320.webp"
    assert client.get(url).status_code == 200
    assert client.delete(f"/api/uploads/{sent.get_json()['id']}", headers=headers).status_code in (200, 204)
    assert stored(db) == []


def test_gc_removes_an_orphan(app, client, db, runner):
    doc = put(app)
    client.get(path(doc, "w_320.webp"))
    # A crash between the original's delete and its renditions': the original goes alone.
    db[f"{Buckets.PRODUCTS}.files"].delete_one({"_id": doc["_id"]})
    with app.app_context():
        assert [o["_id"] for o in renditions.orphans(db)] == [stored(db)[0]["_id"]]
    result = runner.invoke(args=["gc"])
    assert result.exit_code == 0, result.output
    assert stored(db) == []


def test_one_render_across_many_requests_at_once(app_factory, backend, renders):
    if backend[0].__name__ == "<lambda>":
        pytest.skip("threads against one database: the wire-protocol server's test")
    apps = [app_factory(), app_factory()]  # two workers on one database
    doc = put(apps[0])
    answers: list[int] = []
    start = threading.Barrier(8)

    def fetch(app):
        client = app.test_client()
        start.wait()
        answers.append(client.get(path(doc, "w_640.webp")).status_code)

    threads = [threading.Thread(target=fetch, args=(apps[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8
    assert renders == ["w_640"]
    with apps[0].app_context():
        from avenue.db import get_db

        assert len(stored(get_db())) == 1


def rendition_chunk_reads(event) -> bool:
    command = event.command
    name = command.get("find") if event.command_name == "find" else command.get("collection")
    return event.command_name in {"find", "getMore"} and name == f"{RENDITIONS}.chunks"


def _listened(backend, db_name, listener):
    """An app whose database commands ``listener`` sees (the wire-protocol server only), and
    the listener; its database dropped after the test."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    app = make_app((listening(listener), backend[1]), db_name)
    yield app, listener
    client = app.extensions["avenue.mongo"].client
    client.drop_database(db_name)
    client.close()


@pytest.fixture
def watched(backend, db_name):
    """An app whose reads of the renditions' chunks are counted, and the counter."""
    yield from _listened(backend, db_name, Matching(rendition_chunk_reads))


def test_the_request_that_rendered_is_answered_from_its_bytes_not_read_back(watched):
    """The rendered bytes are the answer: the stored file is not read back from GridFS for it
    (it was: a find of its chunks on every cold render); its ETag and length are the stored
    file's."""
    app, reads = watched
    doc = put(app)
    first = app.test_client().get(path(doc, "w_320.webp"))
    assert first.status_code == 200
    assert reads.count == 0
    from avenue.db import get_db

    with app.app_context():
        files = stored(get_db())
    assert len(files) == 1 and files[0]["length"] == len(first.get_data())
    assert first.headers["ETag"] == f'"{files[0]["metadata"]["sha256"]}"'


def assert_left_to_lapse(db) -> None:
    """The one claim, of a stored rendition: left to lapse within a claim's length (not
    deleted: one command fewer), and a TTL index removes it after."""
    import datetime as dt

    (claim,) = db[renditions.CLAIMS].find()
    assert as_utc(claim["until"]) <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=renditions.CLAIM_SECONDS)
    assert list(db[renditions.CLAIMS].index_information()["ttl"]["key"]) == [("until", 1)]
    assert expires_after(db[renditions.CLAIMS], "ttl") == 0


def test_as_deployed_a_rendition_is_stored_before_its_answer(app_factory, renders):
    """With the work after uploads' answers on (as deployed), a rendition on request is still
    stored before its answer: the answer's ETag is the stored file's, and its claim is left to
    lapse (bench/results/mechanisms-2026-11-28-lane-latency.md: storing it after the answer
    did not pay)."""
    from avenue.db import get_db

    app = app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True)
    doc = put(app)
    with app.app_context():
        db = get_db()
    answer = app.test_client().get(path(doc, "w_320.webp"))
    assert answer.status_code == 200
    (file,) = stored(db)  # written before the answer came back, not after its close
    assert f'"{file["metadata"]["sha256"]}"' == answer.headers["ETag"]
    assert file["length"] == len(answer.get_data())
    answer.close()
    assert_left_to_lapse(db)
    assert renders == ["w_320"]


def test_a_render_whose_store_loses_to_another_s_answers_with_the_stored_one(app, db, renders, monkeypatch):
    """A render whose store finds the rendition stored by another (a lapsed claim taken over)
    keeps that one and answers with it, not with its own bytes."""
    real = renditions._put

    def another_first(db_, wanted, new):
        real(db_, wanted, renditions._new_file(wanted, Fake(b"stored-by-another"), private=False))
        return real(db_, wanted, new)

    monkeypatch.setattr(renditions, "_put", another_first)
    doc = put(app)
    answer = app.test_client().get(path(doc, "w_320.webp"))
    assert answer.status_code == 200 and answer.get_data() == b"stored-by-another"
    (file,) = stored(db)
    assert answer.headers["ETag"] == f'"{file["metadata"]["sha256"]}"'
    assert_left_to_lapse(db)  # stored, if by another
    assert renders == ["w_320"]


def test_a_request_that_cannot_get_a_render_slot_is_503_busy(app, client, monkeypatch):
    doc = put(app)
    monkeypatch.setattr(route, "RENDER_SLOT_WAIT_SECONDS", 0.01)
    state = route.get_state(app)
    while state.renders.acquire(blocking=False):
        pass
    try:
        response = client.get(path(doc, "w_320.webp"))
    finally:
        state.renders.release()
        state.renders.release()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "busy" and response.headers["Retry-After"]


def _lease():
    import datetime as dt

    return dt.timedelta(minutes=5)


def _call(wsgi_app, url: str, headers: dict):
    response = Client(wsgi_app).get(url, headers=headers)
    return response.status, sorted(response.headers.items()), response.get_data()


@pytest.mark.parametrize("headers", [{"Accept": "image/webp"}, {"Accept": "*/*"},
                                     {"If-None-Match": "{etag}"}])
@pytest.mark.parametrize("options", ["w_320", "w_320.avif"])
def test_the_front_door_answers_a_warm_rendition_exactly_as_the_route_does(app, client, options, headers):
    doc = put(app)
    url = path(doc, options)
    warm = client.get(url, headers={"Accept": headers.get("Accept", "")})
    assert warm.status_code == 200 and warm.data  # read whole: the bytes are cached
    headers = {name: value.format(etag=warm.headers["ETag"]) for name, value in headers.items()}
    headers["X-Request-ID"] = "cmp-1"

    def flask_must_not_run(environ, start_response):
        pytest.fail(f"the front door passed {url} on to Flask")

    by_front = _call(FrontDoor(app, flask_must_not_run), url, headers)
    by_route = _call(app.wsgi_app.wsgi_app, url, headers)
    assert by_front == by_route
    assert by_front[0] in ("200 OK", "304 NOT MODIFIED")


def test_the_front_door_never_answers_a_format_the_accept_refuses(app, client):
    """The AVIF rendition cached by a browser's request is not what the front door answers to
    "image/avif;q=0": the format is chosen before the cache is asked (its key holds it)."""
    doc = put(app)
    url = path(doc, "w_320")
    assert client.get(url, headers={"Accept": "image/avif,image/webp,*/*"}).data  # AVIF, now cached
    refusing = {"Accept": "image/avif;q=0,image/webp,*/*"}
    assert passed_to_route(app, url, refusing) == [url]  # no WebP cached yet: the route renders it
    answer = client.get(url, headers=refusing)
    assert answer.headers["Content-Type"] == "image/webp" and answer.headers["Vary"] == "Accept"
    assert passed_to_route(app, url, refusing) == []  # now the front door answers it, as WebP
    by_front = Client(FrontDoor(app, lambda environ, start_response: pytest.fail("passed on"))).get(
        url, headers=refusing)
    assert by_front.headers["Content-Type"] == "image/webp"


@pytest.mark.parametrize("case", ["not rendered yet", "signed", "malformed", "private", "deleted"])
def test_the_front_door_leaves_other_renditions_to_the_route(app, client, db, case):
    doc = (put(app, bucket=Buckets.UPLOADS, visibility="private", scope="owner") if case == "private"
           else put(app))
    alias = "uploads" if case == "private" else "products"
    url = path(doc, {"signed": "w_333.webp", "malformed": "w_08"}.get(case, "w_320.webp"), alias)
    if case == "signed":
        url += "?sig=" + sign_rendition(KEY, Buckets.PRODUCTS, str(doc["_id"]), "", "w_333")
    if case == "private":
        url = signer_from_config(app.config).rendition_url(Buckets.UPLOADS, doc["_id"], parse("w_320").spec,
                                                           "webp",
                                                           private=True)
    if case != "not rendered yet" and case != "malformed":
        assert client.get(url).status_code == 200
    if case == "deleted":
        with app.app_context():
            delete_image(db, Buckets.PRODUCTS, doc["_id"], purges=NO_PURGES)
    assert passed_to_route(app, url) == [url.split("?")[0]]


def test_fsck_checks_the_renditions_and_repair_removes_a_damaged_one(app, client, db, media_core):

    doc = put(app)
    assert client.get(path(doc, "w_320.webp")).status_code == 200
    with app.app_context():
        assert AppMedia.on(db).maintenance.fsck().ok
        rendition = stored(db)[0]
        db[f"{RENDITIONS}.chunks"].delete_many({"files_id": rendition["_id"]})
        report = AppMedia.on(db).maintenance.fsck()
        assert [f.doc["_id"] for f in report.findings] == [rendition["_id"]]
        assert AppMedia.on(db, media_core).maintenance.fsck(repair=True).ok
    assert stored(db) == []
    # Its claim went with it, as every removal's does (renditions.forget_claims): left to
    # lapse, it held the next request back for up to CLAIM_SECONDS (15 s) before rendering.
    assert db[renditions.CLAIMS].count_documents({}) == 0
    assert client.get(path(doc, "w_320.webp")).status_code == 200  # rendered again


class Fake:
    """A rendered payload passed in directly: what a renderer returns."""

    def __init__(self, data: bytes = b"fake-webp-bytes") -> None:
        self.data, self.width, self.height, self.format = data, 10, 10, "webp"


def _original(app):
    from avenue.media.records import MediaDoc

    return MediaDoc.from_files_doc(Buckets.PRODUCTS, put(app))


def test_a_lapsed_claim_is_taken_over(app, db):
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    # A renderer that died holding the claim: its claim has lapsed.
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "dead",
                                      "until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    with app.app_context():
        found = renditions.obtain(db, wanted, original, lambda data: Fake(), wait=1)
    assert found["metadata"]["spec"] == "w_320"
    assert_left_to_lapse(db)  # ours now, left to lapse after the store


def test_a_render_longer_than_the_claim_keeps_it_and_nobody_takes_it_over(app, db, backend, lease_clock):
    """The holder renews its claim while it renders, however long: a render that outlasts
    the claim's length is not taken over (nor rendered twice) while it runs; the claim is
    released after it. The claims' clock is stepped (tests/support/leaseclock.py): with a real
    0.4 s claim, one renewal slower than 0.27 s on a loaded machine let it lapse."""
    from avenue.leases import Lease

    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    rendering = threading.Event()
    taken_over = []

    def slow_render(data):
        rendering.set()
        for _ in range(4):  # 1.2 s of claim time: three claim lengths
            lease_clock.advance(0.3)
            deadline = time.monotonic() + 30  # the heartbeat renews it past the clock
            claim = {"_id": wanted.claim_id()}
            while as_utc(db[renditions.CLAIMS].find_one(claim)["until"]) <= lease_clock() \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            taken_over.append(Lease(db[renditions.CLAIMS], wanted.claim_id(), "other", 0.4).take())
        return Fake()

    with app.app_context():
        found = renditions.obtain(db, wanted, original, slow_render, claim_seconds=0.4)
    assert rendering.is_set() and found["metadata"]["spec"] == "w_320"
    assert taken_over and not any(taken_over)
    assert db[renditions.CLAIMS].count_documents({}) == 1  # left to lapse after the store


def test_a_live_claim_that_stores_nothing_ends_in_503_busy(app, db):
    from avenue.errors import ServerBusy

    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "busy elsewhere",
                                      "until": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})
    rendered = []
    with app.app_context(), pytest.raises(ServerBusy):
        renditions.obtain(db, wanted, original, lambda data: rendered.append(1) or Fake(), wait=0.2)
    assert rendered == [] and stored(db) == []


def test_a_waiter_serves_what_the_claimant_stored(app, db):
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "elsewhere",
                                      "until": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})
    with app.app_context():
        def finish_elsewhere():
            renditions._render_and_store(db, wanted, original, lambda data: Fake(b"from-elsewhere"))

        timer = threading.Timer(0.2, finish_elsewhere)
        timer.start()
        found = renditions.obtain(db, wanted, original, lambda data: Fake(b"mine"), wait=5)
        timer.join()
    assert found["length"] == len(b"from-elsewhere") and len(stored(db)) == 1


@pytest.fixture
def recorded(backend, db_name):
    """An app whose database commands are recorded, and the recorder."""
    yield from _listened(backend, db_name, Recorder(db_name))


def test_waiters_in_the_renderer_s_process_ask_the_database_nothing_while_it_renders(recorded):
    """Eight requests for one cold rendition on one worker: one renders, the seven others wait
    on it in memory (they used to ask the database twice every 50 ms: over 200 commands
    over this one-second render)."""
    app, recorder = recorded
    original = _original(app)
    from avenue.db import get_db

    with app.app_context():
        db = get_db()
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    waiters = 8
    start = threading.Barrier(waiters)
    rendered, found = [], []

    def slow_render(data):
        rendered.append(1)
        time.sleep(1.0)
        return Fake()

    def ask():
        with app.app_context():
            start.wait()
            found.append(renditions.obtain(db, wanted, original, slow_render)["_id"])

    recorder.active = True
    threads = [threading.Thread(target=ask) for _ in range(waiters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.active = False
    assert rendered == [1] and len(set(found)) == 1 and len(found) == waiters
    # Each: a look before, and one after the render; the renderer: its claim, the store, the
    # counters, the release.
    assert len(recorder.commands) <= 3 * waiters + 10, len(recorder.commands)


def test_a_waiter_on_another_process_s_claim_backs_off(recorded):
    """A claim held elsewhere for the whole wait: one waiter polls it 50 ms, 100 ms, ... (not
    every 50 ms: about 50 commands in 1.5 s), then answers 503 busy."""
    from avenue.errors import ServerBusy

    app, recorder = recorded
    original = _original(app)
    from avenue.db import get_db

    with app.app_context():
        db = get_db()
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    import datetime as dt

    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "busy elsewhere",
                                      "until": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})
    recorder.active = True
    started = time.monotonic()
    with app.app_context(), pytest.raises(ServerBusy):
        renditions.obtain(db, wanted, original, lambda data: Fake(), wait=1.5)
    recorder.active = False
    # It gave up at its 1.5 s wait, not when the claim lapses a minute on (10 s: the attempts
    # each wait on the database, which can take a second on a loaded machine); the count of
    # commands below is what shows the back-off.
    assert time.monotonic() - started < 10
    # 0.05 + 0.1 + 0.2 + 0.4 + 0.8 (cut to the deadline): six rounds of a claim attempt and a look.
    assert len(recorder.commands) <= 16, len(recorder.commands)


@pytest.fixture
def every_command(backend, db_name):
    """An app whose database commands (on its database) are all seen, and the listener."""
    yield from _listened(backend, db_name, Matching(lambda event: on_database(event, db_name)))


def test_a_cold_render_looks_claims_reads_and_stores_in_four_commands(every_command):
    """The commands of one cold render, store included: a look, the claim (an insert; no
    second look, since no claim document means nothing was stored since the first), the
    original's chunks, and the store: its chunks, its files document and the counters in one
    command (a bulkWrite, in that order: three commands before). The claim is left to lapse,
    not deleted (there were eight: a second look, and the delete)."""
    app, seen = every_command
    original = _original(app)
    from avenue.db import get_db
    from avenue.dialect import dialect_of

    with app.app_context():
        db = get_db()
    assert dialect_of(db).cross_collection_writes  # SecantusDB
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with seen.lock:
        seen.commands.clear()
    with app.app_context():
        renditions.obtain(db, wanted, original, lambda data: Fake())
    sent = [f"{name} {'+'.join(namespaces(command)) if name == 'bulkWrite' else command[name]}"
            for command in seen.commands
            for name in [next(iter(command))] if name not in {"hello", "ismaster", "endSessions"}]
    assert sorted(sent) == sorted([
        f"find {RENDITIONS}.files", f"insert {renditions.CLAIMS}", f"find {Buckets.PRODUCTS}.chunks",
        f"bulkWrite {RENDITIONS}.chunks+{RENDITIONS}.files+media_counters"]), sent
    # The claim is coordination, not data: acknowledged by the primary, no journal wait.
    (claim,) = [command for command in seen.commands if command.get("insert") == renditions.CLAIMS]
    assert claim["writeConcern"] == {"w": 1, "j": False}
    assert_left_to_lapse(db)
    assert counters_of(db, RENDITIONS)["files"] == 1


def test_a_store_that_loses_to_another_s_files_document_counts_nothing(app, db):
    """The files document the unique index refuses stops the store's command before the
    counters' update (and its chunks are taken back): the counters count the one stored."""
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    first = renditions.keep(db, wanted, Fake(b"first"), private=False)
    again = renditions.keep(db, wanted, Fake(b"second, longer"), private=False)
    assert again["_id"] == first["_id"]
    held = counters_of(db, RENDITIONS)
    assert (held["files"], held["bytes"], held["chunks"]) == (1, len(b"first"), 1)
    assert db[f"{RENDITIONS}.chunks"].count_documents({}) == 1


def test_a_counters_update_that_fails_leaves_the_stored_rendition_and_is_logged(app, db, backend, caplog):
    """The store's counters' update (last in its command) refused by the server: the
    rendition stays stored and served, the drift is logged for the reconciliation."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("mongomock raises a TypeError for an $inc of a string, not the server's write error")
    db["media_counters"].insert_one({"_id": RENDITIONS, "files": "not a number"})
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    kept = renditions.keep(db, wanted, Fake(b"kept"), private=False)
    assert renditions.find(db, wanted)["_id"] == kept["_id"]
    assert db[f"{RENDITIONS}.chunks"].count_documents({"files_id": kept["_id"]}) == 1
    assert "media counters of media_renditions not updated" in caplog.text


def test_a_claim_taken_over_looks_again_and_serves_what_was_stored_meanwhile(app, db, monkeypatch):
    """Only a claim taken on no document skips the second look: one taken over (here the
    lapsed claim of a render stored between this request's first look and its claim) looks
    again, and serves the stored file instead of rendering it a second time."""
    import datetime as dt

    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with app.app_context():
        first = renditions.keep(db, wanted, Fake(b"first"), private=False)
    # Lapsed but not swept yet (mongomock's TTL index removes a lapsed claim at once).
    db[renditions.CLAIMS].drop_index("ttl")
    db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "stored it",
                                      "until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    looks, real = [], renditions.find

    def find(db, wanted):
        looks.append(1)
        return None if len(looks) == 1 else real(db, wanted)  # the first look came too early

    monkeypatch.setattr(renditions, "find", find)
    rendered = []
    with app.app_context():
        found = renditions.obtain(db, wanted, original, lambda data: rendered.append(1) or Fake(b"second"))
    assert rendered == [] and found["_id"] == first["_id"] and len(looks) == 2


def test_a_store_that_fails_deletes_its_claim_so_the_next_request_renders_at_once(app, db, monkeypatch):
    """Only a stored rendition's claim is left to lapse: a store that fails gives the claim
    back, and the next request renders at once instead of waiting up to a claim's length for
    it."""
    from pymongo.errors import AutoReconnect

    from avenue.media.store import storage

    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    real = storage.put_files

    def failing(*args, **kwargs):
        raise AutoReconnect("the database went away")

    monkeypatch.setattr(storage, "put_files", failing)
    with app.app_context(), pytest.raises(AutoReconnect):
        renditions.obtain(db, wanted, original, lambda data: Fake())
    assert db[renditions.CLAIMS].count_documents({}) == 0
    monkeypatch.setattr(storage, "put_files", real)
    with app.app_context():
        found = renditions.obtain(db, wanted, original, lambda data: Fake(), wait=0)
    assert len(stored(db)) == 1 and found["_id"] == stored(db)[0]["_id"]


@pytest.mark.parametrize("removal", ["image", "budget", "stale"])
def test_a_rendition_removed_right_after_its_store_is_rendered_again_at_once(app, db, removal):
    """A stored rendition's claim is left to lapse, so every removal deletes the claims of
    what it removed: the next request renders at once, not after the claim's 15 s."""
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    rendered = []

    def render(data):
        rendered.append(1)
        return Fake()

    with app.app_context():
        renditions.obtain(db, wanted, original, render)
        assert db[renditions.CLAIMS].count_documents({}) == 1
        if removal == "image":
            assert renditions.remove_for(db, Buckets.PRODUCTS, original.file_id, purges=NO_PURGES) == 1
        elif removal == "budget":
            assert renditions.evict(db, 1).files == 1
        else:
            assert renditions.remove_stale(db, stored(db), purges=NO_PURGES) == 1
        assert stored(db) == [] and db[renditions.CLAIMS].count_documents({}) == 0
        renditions.obtain(db, wanted, original, render, wait=0.5)
    assert rendered == [1, 1] and len(stored(db)) == 1


def test_a_second_store_of_one_rendition_keeps_the_first(app, db):
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with app.app_context():
        first = renditions._render_and_store(db, wanted, original, lambda data: Fake(b"first"))
        second = renditions._render_and_store(db, wanted, original, lambda data: Fake(b"second"))
    assert second["_id"] == first["_id"] and len(stored(db)) == 1
    assert db[f"{RENDITIONS}.chunks"].count_documents({}) == 1  # the loser's chunks went


def test_a_render_whose_store_loses_is_answered_with_the_stored_file_not_its_own_bytes(app, db):
    """Its bytes may differ from the stored file's (another instance on other code): the
    answer is the stored file, whose ETag and length its body must match."""
    original = _original(app)
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    with app.app_context():
        def render(data):
            # Another renderer (a lapsed claim taken over) stores first.
            renditions.keep(db, wanted, Fake(b"stored-meanwhile"), private=False)
            return Fake(b"mine")

        got = renditions.answer(db, wanted, original, render)
    assert got.data is None and got.doc["length"] == len(b"stored-meanwhile")


# --- the limit of unsigned cold renders ------------------------------------------------------


def limited(app_factory, monkeypatch, address="2/minute", instance="100/minute"):
    """An app with these limits of unsigned cold renders, their clock held still at the middle of
    this minute or the next (not behind the real one: the windows' documents expire by it). The
    windows are aligned to the clock, and a loaded run's requests once straddled the turn of a
    minute (the third of "2/minute" was admitted into the next window)."""
    from avenue import ratelimit

    now = time.time()
    held = (now // 60) * 60 + 30.0 + (60.0 if now % 60 >= 30 else 0.0)
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: held))
    return app_factory(RATELIMIT_ENABLED=True, AVENUE_RENDER_ADDRESS_LIMIT=address,
                       AVENUE_RENDER_INSTANCE_LIMIT=instance)


def test_unsigned_cold_renders_past_the_address_limit_are_429_and_store_nothing(app_factory, monkeypatch):
    from avenue.db import get_db

    app = limited(app_factory, monkeypatch)
    client = app.test_client()
    doc = put(app)
    for options in ("w_160.webp", "w_320.webp"):
        assert client.get(path(doc, options)).status_code == 200
    refused = client.get(path(doc, "w_480.webp"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["code"] == "rate_limited"
    with app.app_context():
        assert sorted(f["metadata"]["spec"] for f in stored(get_db())) == ["w_160", "w_320"]
    # What is stored is still served (a warm rendition costs no render), to this address too.
    assert client.get(path(doc, "w_320.webp")).status_code == 200
    # Another address has its own count.
    assert client.get(path(doc, "w_480.webp"), environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


def test_the_instance_limit_holds_over_every_address(app_factory, monkeypatch):
    app = limited(app_factory, monkeypatch, address="100/minute", instance="2/minute")
    client = app.test_client()
    doc = put(app)
    answers = [client.get(path(doc, f"w_{width}.webp"), environ_base={"REMOTE_ADDR": f"10.0.0.{index}"})
               for index, width in enumerate((160, 320, 480))]
    assert [answer.status_code for answer in answers] == [200, 200, 429]


def test_editors_and_signed_urls_are_not_counted_against_the_anonymous_limit(app_factory, monkeypatch):
    app = limited(app_factory, monkeypatch, address="1/hour")
    client = app.test_client()
    doc = put(app)
    assert client.get(path(doc, "w_160.webp")).status_code == 200
    assert client.get(path(doc, "w_320.webp")).status_code == 429  # the address's one is used
    by_token = Auth(app).token("editor")
    assert client.get(path(doc, "w_320.webp"), headers=by_token).status_code == 200
    session_client, _ = Auth(app).login("admin")
    answer = session_client.get(path(doc, "w_480.webp"))
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers and "Vary" not in answer.headers
    signed = signer_from_config(app.config).rendition_url(Buckets.PRODUCTS, doc["_id"], parse("w_640").spec,
                                                          "webp")
    assert client.get(signed).status_code == 200
    signed_off_list = signer_from_config(app.config).rendition_url(Buckets.PRODUCTS, doc["_id"],
                                                                   parse("w_333").spec,
                                                                   "webp")
    assert client.get(signed_off_list).status_code == 200
    # A viewer's token is no editor's: counted like anyone.
    assert client.get(path(doc, "w_800.webp"), headers=Auth(app).token("ops")).status_code == 429


def test_an_editor_s_ended_or_replayed_session_is_counted_like_anyone(app_factory, monkeypatch):
    app = limited(app_factory, monkeypatch, address="1/hour")
    doc = put(app)
    session_client, csrf = Auth(app).login("admin")
    assert app.test_client().get(path(doc, "w_160.webp")).status_code == 200  # the address's one
    # The cookie sent by another browser is not the editor's session (bound to the browser).
    assert session_client.get(path(doc, "w_320.webp"), headers={"User-Agent": "curl/8.0"}).status_code == 429
    saved = app.test_client()
    saved.set_cookie("session", session_client.get_cookie("session").value)
    assert session_client.post("/api/auth/logout", headers=csrf).status_code == 204
    assert saved.get(path(doc, "w_480.webp")).status_code == 429  # a copy of an ended session
    assert saved.get("/api/auth/me").status_code == 401


def test_an_unsigned_cold_render_counts_against_its_limits_in_one_command(backend, db_name):
    """The limits of unsigned cold renders, each window counted in one command of two
    upserting updates: the address's minute and hour (one document), the instance's minute
    (another); a new window is opened by the same command, and the render's claim is inserted
    in it too, after them (a bulkWrite, where the dialect takes several collections' writes
    in one; an ``update`` and an ``insert`` elsewhere). (There were three commands, each
    window's own, a new window a delete and an insert more; then a findAndModify per
    document; then the update and the claim's insert.)"""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    from avenue.dialect import dialect_of
    from avenue.ratelimit import COLLECTION

    seen = Matching(lambda event: on_database(event, db_name) and (
        COLLECTION in {next(iter(event.command.values()), None), *namespaces(event.command)}))
    app = make_app((listening(seen), backend[1]), db_name, RATELIMIT_ENABLED=True,
                   AVENUE_RENDER_ADDRESS_LIMIT="60/minute;600/hour",
                   AVENUE_RENDER_INSTANCE_LIMIT="600/minute")
    try:
        doc = put(app)
        from avenue.db import get_db

        with app.app_context():
            assert dialect_of(get_db()).cross_collection_writes  # SecantusDB
        for options in ("w_160.webp", "w_320.webp"):  # the first opens the windows
            with seen.lock:
                seen.commands.clear()
            assert app.test_client().get(path(doc, options)).status_code == 200
            assert [next(iter(command)) for command in seen.commands] == ["bulkWrite"]
            assert namespaces(seen.commands[0]) == [COLLECTION, COLLECTION, renditions.CLAIMS]
            # Both coordination, not data: acknowledged by the primary, no journal wait.
            assert seen.commands[0]["writeConcern"] == {"w": 1, "j": False}
        with app.app_context():
            (claim,) = get_db()[renditions.CLAIMS].find({"_id": {"$regex": "w_320"}})
        assert claim["owner"]
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()


def test_a_refused_cold_render_writes_no_claim(app_factory, monkeypatch):
    """The hits go before the claim in their command: a render the limits refuse inserts no
    claim (nothing holds the next request back), on every backend."""
    from avenue.db import get_db

    app = limited(app_factory, monkeypatch, address="1/minute")
    client = app.test_client()
    doc = put(app)
    assert client.get(path(doc, "w_160.webp")).status_code == 200
    assert client.get(path(doc, "w_320.webp")).status_code == 429
    with app.app_context():
        claimed = [claim["_id"].rsplit("/", 1)[1] for claim in get_db()[renditions.CLAIMS].find()]
    assert claimed == ["w_160.webp"]


def test_a_cold_render_whose_claim_is_held_elsewhere_is_counted_and_waits(app_factory, monkeypatch):
    """A claim another process holds: the claim's insert, after the hits in their command,
    is refused by its _id; the render is counted all the same (as when the hits were a
    command of their own) and waits for that claim (503 busy here: nobody stores it)."""
    import datetime as dt

    from avenue import ratelimit
    from avenue.db import get_db
    from avenue.errors import ServerBusy
    from avenue.media.records import MediaDoc

    app = limited(app_factory, monkeypatch, address="5/minute")
    original = MediaDoc.from_files_doc(Buckets.PRODUCTS, put(app))
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_160", "webp")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.7"}):
        db = get_db()
        db[renditions.CLAIMS].insert_one({"_id": wanted.claim_id(), "owner": "elsewhere",
                                          "until": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)})
        with pytest.raises(ServerBusy):
            renditions.answer(db, wanted, original, lambda data: Fake(), wait=0.3,
                              admit=ratelimit.cold_render_gate(lambda: False))
        (counted,) = db[ratelimit.COLLECTION].find({"_id": {"$regex": "^render-address/198.51.100.7/"}})
        assert sum(value for name, value in counted.items() if name.startswith("w60_")) == 1
        assert db[renditions.CLAIMS].find_one({"_id": wanted.claim_id()})["owner"] == "elsewhere"


def test_each_request_for_a_cold_rendition_is_counted_once_whoever_renders_it(app_factory, backend,
                                                                              monkeypatch):
    """Four requests for one cold rendition on one worker: the one that renders is counted
    with its claim's insert, the three that wait for it in memory each alone before waiting
    (as every request that found it not stored was): four hits, one render, one claim."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    from avenue import ratelimit
    from avenue.db import get_db
    from avenue.media.records import MediaDoc

    app = limited(app_factory, monkeypatch, address="100/minute")
    original = MediaDoc.from_files_doc(Buckets.PRODUCTS, put(app))
    wanted = renditions.Wanted(Buckets.PRODUCTS, original.file_id, "", "w_320", "webp")
    admit = ratelimit.cold_render_gate(lambda: False)
    requests = 4
    start, rendering = threading.Barrier(requests), threading.Event()
    rendered, found, errors = [], [], []

    def slow_render(data):
        rendered.append(1)
        rendering.set()
        time.sleep(0.5)
        return Fake()

    def ask(first: bool):
        try:
            with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.7"}):
                db = get_db()
                start.wait()
                if not first:
                    rendering.wait(10)
                found.append(renditions.obtain(db, wanted, original, slow_render, admit=admit)["_id"])
        except BaseException as error:  # noqa: BLE001 - every failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(n == 0,)) for n in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and rendered == [1] and len(set(found)) == 1 and len(found) == requests
    with app.app_context():
        db = get_db()
        (counted,) = db[ratelimit.COLLECTION].find({"_id": {"$regex": "^render-address/198.51.100.7/"}})
        assert sum(value for name, value in counted.items() if name.startswith("w60_")) == requests
        assert db[renditions.CLAIMS].count_documents({}) == 1


def test_a_cold_rendition_s_path_is_parsed_once_by_the_front_door_and_the_route(app, client, monkeypatch):
    """The front door (which declines a rendition not rendered yet) and the route share one
    parse of the path (MediaUrl.of keeps it in the request's environ)."""
    from avenue.media.serve.http import MediaUrl

    doc = put(app)
    parses = []
    real = MediaUrl.parse
    monkeypatch.setattr(MediaUrl, "parse", staticmethod(lambda path: parses.append(path) or real(path)))
    assert client.get(path(doc, "w_160.webp")).status_code == 200
    assert parses == [path(doc, "w_160.webp")]
