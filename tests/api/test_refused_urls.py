"""Wrong URLs of a cached image (issue 73, item 7): a wrong extension of its current version
pays no database read, and a 404 the database's document confirmed is kept for one poll
interval (``MediaCache.refuse``), so a flood of them reads at most once per URL and interval;
before, each request read the image's document again (``route.read_through``). That the
refusals never hide a URL an answer gives (docs/architecture.md, "Invariants":
read_your_writes) is tested in tests/media/serve/test_route.py, their bounds in
tests/media/serve/test_cache.py."""

from __future__ import annotations

import pymongo
import pytest

from tests.helpers import Auth, library_upload, listening, make_app
from tests.support.commands import Matching
from tests.support.refusals import wrong_urls

MEDIA = "/api/builder/media"


def document_reads(db_name: str):
    """A find of an image's record by its id (``route._read``: ``<bucket>.images``), on ``db_name``."""
    def match(event) -> bool:
        command = event.command
        return (event.database_name == db_name and event.command_name == "find"
                and str(command.get("find", "")).endswith(".images")
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
