"""Wrong URLs of a cached image (issue 73, item 7): a wrong extension of its current version
pays no database read, and a 404 the database's document confirmed is kept for one poll
interval (``MediaCache.refuse``), so a flood of them reads at most once per URL and interval;
before, each request read the image's document again (``route.read_through``). The refusals
never hide a URL an answer gives: a new version's, or an earlier version's made current again
(docs/architecture.md, "Invariants": read_your_writes)."""

from __future__ import annotations

import datetime as dt
from hashlib import sha256

import pymongo
import pytest

from avenue.media.effects import invalidation
from avenue.media.records import MediaDoc
from avenue.media.serve.cache import MediaCache
from avenue.media.serve.http import MediaUrl
from avenue.media.serve.route import get_cache
from tests.helpers import Auth, form, library_upload, listening, make_app
from tests.support.commands import Matching

MEDIA = "/api/builder/media"


def wrong_urls(url: str, thumb: str) -> list[str]:
    """Wrong URLs of the image whose original is at ``url`` (``.jpg``) and whose thumb at
    ``thumb``: four that no write can make a file (another format's extension, an extension
    of no format, for the original and the thumb), three of versions it never had and one of
    a variant format it lacks (a repair can add one: ``store/regenerate.py``)."""
    base = url[url.index("/media/"):].rsplit(".", 1)[0]
    thumb = thumb[thumb.index("/media/"):].rsplit(".", 1)[0]
    return [f"{base}.gif", f"{base}~0123abcd.xyz", f"{thumb}.gif", f"{thumb}.xyz",
            f"{base}~00000000.jpg", f"{base}~0123abcd.jpg", f"{base}~0123abcd/thumb", f"{thumb}.png"]


def document_reads(db_name: str):
    """A finds of an image's files document by its id (``route._read``), on ``db_name``."""
    def match(event) -> bool:
        command = event.command
        return (event.database_name == db_name and event.command_name == "find"
                and str(command.get("find", "")).endswith(".files")
                and "_id" in (command.get("filter") or {}))
    return match


def test_a_flood_of_wrong_urls_of_a_cached_image_reads_once_per_url(backend, db_name):
    """Eighty requests of eight wrong URLs: four that no write can make a file (no read), and
    four a write could (a read each, then refused from the cache for the poll interval, long
    here so that it does not lapse mid-test). Before: eighty reads of the image's document."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    reads = Matching(document_reads(db_name))
    app = make_app((listening(reads), backend[1]), db_name, AVENUE_DELETIONS_POLL_MS=60_000)
    try:
        client = app.test_client()
        media = library_upload(client, Auth(app).token("editor"))
        assert client.get(media["url"]).status_code == 200  # cached
        urls = wrong_urls(media["url"], media["variants"]["thumb"])
        before = reads.count
        for _ in range(10):
            for url in urls:
                assert client.get(url).status_code == 404, url
        assert reads.count - before == 4
        assert client.get(media["url"]).status_code == 200  # the image itself still served
    finally:
        mongo = app.extensions["avenue.mongo"].client
        mongo.drop_database(db_name)
        mongo.close()


def test_a_flood_of_wrong_extensions_of_a_readable_name_reads_nothing(backend, db_name):
    """A public image's named URL in another format's extension, or in none a format has: no
    write can make it a file (a name is the current version's original), so no read. Before:
    a read each."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    reads = Matching(document_reads(db_name))
    app = make_app((listening(reads), backend[1]), db_name, AVENUE_DELETIONS_POLL_MS=60_000)
    try:
        client, editor = app.test_client(), Auth(app).token("editor")
        media = library_upload(client, editor)
        named = client.put(f"{MEDIA}/{media['id']}/name", headers=editor, json={"name": "red boot"})
        assert named.status_code == 200, named.get_json()
        url = named.get_json()["named_url"]
        assert client.get(url).status_code == 200  # cached
        stem = url[url.index("/media/"):].rsplit(".", 1)[0]
        before = reads.count
        for _ in range(10):
            for wrong in (f"{stem}.png", f"{stem}.xyz"):
                assert client.get(wrong).status_code == 404, wrong
        assert reads.count == before
    finally:
        mongo = app.extensions["avenue.mongo"].client
        mongo.drop_database(db_name)
        mongo.close()


def two_workers(app_factory, **config):
    """A writer and a reader on one database (both with ``config``), the reader's cache not
    told of the writer's evictions (as another process's) and polling only every minute: what
    it learns of the writer's changes, it learns by reading through (``route.read_through``)."""
    writer = app_factory(**config)
    reader = app_factory(**{**config, "AVENUE_DELETIONS_POLL_MS": 60_000})
    invalidation.LOCAL_CACHES.discard(get_cache(reader))
    return writer.test_client(), Auth(writer).token("editor"), reader.test_client()


def test_refused_urls_do_not_hide_a_new_version_on_another_worker(app_factory):
    client, editor, reader = two_workers(app_factory)
    media = library_upload(client, editor)
    assert reader.get(media["url"]).status_code == 200
    for url in wrong_urls(media["url"], media["variants"]["thumb"]) * 2:
        assert reader.get(url).status_code == 404
    answer = client.put(f"{MEDIA}/{media['id']}", data=form("good/grayscale.jpg"), headers=editor)
    assert answer.status_code == 200, answer.get_json()
    new = answer.get_json()
    served = reader.get(new["url"])
    assert served.status_code == 200 and sha256(served.data).hexdigest() == new["sha256"]
    assert reader.get(new["variants"]["thumb"]).status_code == 200


def test_an_earlier_version_refused_before_its_restore_serves_at_once_after_it(app_factory):
    """With no redirect window an earlier version's URL is 404; the version is in the image's
    history, so its 404 is not kept (``http.refusable``): its restore's answer gives that very
    URL, which then serves at once on the worker that answered 404 a moment before."""
    client, editor, reader = two_workers(app_factory, AVENUE_REPLACED_REDIRECT_DAYS=0)
    media = library_upload(client, editor)
    assert reader.get(media["url"]).status_code == 200
    second = client.put(f"{MEDIA}/{media['id']}", data=form("good/grayscale.jpg"), headers=editor).get_json()
    third = client.put(f"{MEDIA}/{media['id']}", data=form("good/cmyk.jpg"), headers=editor)
    assert third.status_code == 200, third.get_json()
    for _ in range(3):
        assert reader.get(second["url"]).status_code == 404
    restored = client.post(f"{MEDIA}/{media['id']}/versions/{second['version']}/restore", headers=editor)
    assert restored.status_code == 200, restored.get_json()
    assert restored.get_json()["url"] == second["url"]
    served = reader.get(second["url"])
    assert served.status_code == 200 and sha256(served.data).hexdigest() == second["sha256"]


def _doc(version: str = "") -> MediaDoc:
    return MediaDoc(file_id="a", length=1, chunk_size=1, sha256="", content_type="image/jpeg",
                    upload_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), filename="a.jpg", format="jpeg",
                    visibility="public", variants={}, version=version)


def test_a_refusal_lasts_one_poll_interval_and_only_for_the_document_that_refused():
    cache = MediaCache(1 << 20, 1 << 16, poll_interval=1.0)
    doc, url = _doc(), MediaUrl("media", "a~00000000.jpg")
    cache.refuse("media", doc, url, clock=lambda: 100.0)
    assert cache.refused("media", doc, url, clock=lambda: 100.9)
    assert not cache.refused("media", doc, MediaUrl("media", "a~00000001.jpg"), clock=lambda: 100.9)
    assert not cache.refused("media", doc, url, clock=lambda: 101.0)  # lapsed: read again
    cache.refuse("media", doc, url, clock=lambda: 200.0)
    # Read again the same, it still refuses; changed (a tombstone evicted it, the next request
    # read it again: replaced meanwhile), the refusal was another document's.
    assert cache.refused("media", _doc(), url, clock=lambda: 200.1)
    assert not cache.refused("media", _doc("0123abcd"), url, clock=lambda: 200.2)
    cache.refuse("media", doc, url, clock=lambda: 300.0)
    cache.clear()
    assert not cache.refused("media", doc, url, clock=lambda: 300.1)


def test_refusals_are_bounded():
    cache = MediaCache(1 << 20, 1 << 16, poll_interval=60.0, max_refusals=3)
    doc = _doc()
    urls = [MediaUrl("media", f"a~0000000{n}.jpg") for n in range(5)]
    for url in urls:
        cache.refuse("media", doc, url, clock=lambda: 0.0)
    kept = [cache.refused("media", doc, url, clock=lambda: 1.0) for url in urls]
    assert kept == [False, False, True, True, True]  # the least recently refused dropped
