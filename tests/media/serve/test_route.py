"""Read-your-writes on every worker (issue 61, item 1; docs/architecture.md, "Invariants"): a
URL an answer just gave serves at once from a worker whose cache still holds the image's
earlier document. Each test has two workers on one database (two apps, each its own media
cache, the other's in-memory evictions not heard: as in two processes), the second one warmed
on the image before the first one changes it. Each failed before the route read through its
cache (``avenue/media/serve/route.py``'s ``read_through``): 404 for the new version, 301 for
the new name. Nor do the wrong URLs a worker refused from its cache (``MediaCache.refuse``,
issue 73, item 7) hide a new version's URL, or an earlier version's made current again."""

from __future__ import annotations

from hashlib import sha256

from avenue.media.effects import invalidation
from avenue.media.serve.route import get_cache
from tests.helpers import Auth, form, library_upload
from tests.support.client import MEDIA
from tests.support.refusals import wrong_urls


def warmed_on_two_workers(app_factory):
    """A library image uploaded through one worker and served by another, whose cache so
    holds its document: (the writer's client, its editor's headers, the other worker's
    client, the image)."""
    writer, other = app_factory(), app_factory()
    invalidation.LOCAL_CACHES.discard(get_cache(other))  # another process's cache
    client, editor, reader = writer.test_client(), Auth(writer).token("editor"), other.test_client()
    media = library_upload(client, editor)
    assert reader.get(media["url"]).status_code == 200
    assert reader.get(media["variants"]["thumb"]).status_code == 200
    return client, editor, reader, media


def test_a_replaced_image_s_new_urls_serve_at_once_on_another_worker(app_factory):
    client, editor, reader, media = warmed_on_two_workers(app_factory)
    answer = client.put(f"/api/builder/media/{media['id']}", data=form("good/grayscale.jpg"), headers=editor)
    assert answer.status_code == 200, answer.get_json()
    new = answer.get_json()
    served = reader.get(new["url"])
    assert served.status_code == 200 and sha256(served.data).hexdigest() == new["sha256"]
    assert reader.get(new["variants"]["thumb"]).status_code == 200
    # A version that never was stays 404 through the read-through: the database's document
    # does not know it either.
    never = reader.get(media["url"].replace(".jpg", f"~{'0' * 8}.jpg"))
    assert never.status_code == 404


def test_a_new_name_serves_at_once_on_another_worker(app_factory):
    client, editor, reader, media = warmed_on_two_workers(app_factory)
    named = client.put(f"/api/builder/media/{media['id']}/name", headers=editor, json={"name": "red boot"})
    assert named.status_code == 200, named.get_json()
    served = reader.get(named.get_json()["named_url"])
    assert served.status_code == 200, served.headers.get("Location")


def test_an_edit_s_url_serves_at_once_on_another_worker(app_factory):
    client, editor, reader, media = warmed_on_two_workers(app_factory)
    edited = client.put(f"/api/builder/media/{media['id']}/edits", json={"rotate": 90}, headers=editor)
    assert edited.status_code == 200, edited.get_json()
    body = edited.get_json()
    assert reader.get(body["url"]).status_code == 200
    assert reader.get(body["variants"]["card"]).status_code == 200


def test_a_named_crop_s_rendition_serves_at_once_on_another_worker(app_factory):
    client, editor, reader, media = warmed_on_two_workers(app_factory)
    box = {"x": 0, "y": 0, "width": 0.5, "height": 0.5}
    cropped = client.put(f"/api/builder/media/{media['id']}/crops/hero", json=box, headers=editor)
    assert cropped.status_code == 200, cropped.get_json()
    base = cropped.get_json()["url"].rsplit(".", 1)[0]
    rendition = reader.get(f"{base}/c_hero,w_320.webp")
    assert rendition.status_code == 200, rendition.get_json(silent=True)


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
