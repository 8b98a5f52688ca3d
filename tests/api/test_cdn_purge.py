"""The CDN purge hook (avenue/cdn.py): deleting public media sends a signed, retried, audited
purge of every path the CDN may hold; private media and an unconfigured app send nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from avenue import cdn
from avenue.clock import as_utc, now
from avenue.media.wiring import PURGE_OUTBOX
from tests.helpers import Auth, trickling_server
from tests.support.client import uploaded

HOOK = {"AVENUE_CDN_PURGE_URL": "https://purge.example/hook", "AVENUE_CDN_PURGE_KEY": "k" * 32,
        "AVENUE_MEDIA_BASE_URL": "https://cdn.example"}

GRAY = "good/grayscale.jpg"


class Receiver:
    """A stand-in webhook: records what it was sent and answers the statuses it is told to."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((url, body, headers))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 0:
            raise ConnectionRefusedError("down")
        return status


def deliver(app, receiver) -> int:
    with app.app_context():
        from avenue.db import get_db

        return cdn.deliver_due(get_db(), hook_url=HOOK["AVENUE_CDN_PURGE_URL"],
                               key=HOOK["AVENUE_CDN_PURGE_KEY"], base_url=HOOK["AVENUE_MEDIA_BASE_URL"],
                               send=receiver)


def outbox(app) -> list[dict]:
    with app.app_context():
        from avenue.db import get_db

        return list(get_db()[PURGE_OUTBOX].find())


@pytest.fixture
def hooked(app_factory):
    app = app_factory(**HOOK)
    return app, Auth(app).token("editor")


def test_deleting_a_public_image_sends_one_signed_purge_of_all_its_paths(hooked):
    app, headers = hooked
    client = app.test_client()
    image = uploaded(client, headers, GRAY, filename="p.jpg", visibility="public", expect=(201,))
    assert client.delete(f"/api/uploads/{image['id']}", headers=headers).status_code == 204
    receiver = Receiver(200)
    assert deliver(app, receiver) == 1
    (url, body, sent), = receiver.calls
    assert url == HOOK["AVENUE_CDN_PURGE_URL"]
    signed = sent["X-Avenue-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(HOOK["AVENUE_CDN_PURGE_KEY"].encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sent["X-Avenue-Signature"], expected)
    purge = json.loads(body)
    served = {image["url"], *image["variants"].values(),
              *(u for formats in image["variant_urls"].values() for u in formats.values())}
    assert served <= set(purge["urls"])  # every URL the API ever handed out for it
    assert all(u.startswith("https://cdn.example/media/") for u in purge["urls"])
    assert outbox(app) == []
    with app.app_context():
        from avenue.db import get_db

        assert get_db().audit_logs.find_one({"action": "cdn_purged"})["target"]["attempts"] == 1


def test_a_failed_purge_is_retried_with_back_off_then_given_up_and_audited(hooked, monkeypatch):
    app, headers = hooked
    client = app.test_client()
    image = uploaded(client, headers, GRAY, filename="p.jpg", visibility="public", expect=(201,))
    client.delete(f"/api/uploads/{image['id']}", headers=headers)
    receiver = Receiver(*([503, 0] * 4))
    waits = []
    for attempt in range(1, cdn.MAX_ATTEMPTS + 1):
        before = now()
        assert deliver(app, receiver) == 0
        left = outbox(app)
        if attempt < cdn.MAX_ATTEMPTS:
            (entry,) = left
            assert entry["attempts"] == attempt and entry["last_error"]
            waits.append(round((as_utc(entry["next_at"]) - before).total_seconds()))
            with app.app_context():  # make it due now, as time would
                from avenue.db import get_db

                due = {"$set": {"next_at": entry["queued_at"]}}
                get_db()[PURGE_OUTBOX].update_one({"_id": entry["_id"]}, due)
    expected = [min(30 * 2 ** n, 3600) for n in range(cdn.MAX_ATTEMPTS - 1)]
    assert all(abs(wait - want) <= 3 for wait, want in zip(waits, expected, strict=True)), waits
    assert outbox(app) == [] and len(receiver.calls) == cdn.MAX_ATTEMPTS
    with app.app_context():
        from avenue.db import get_db

        failed = get_db().audit_logs.find_one({"action": "cdn_purge_failed"})
    assert failed["target"]["attempts"] == cdn.MAX_ATTEMPTS


def test_an_entry_claimed_by_another_worker_is_not_sent_twice(hooked):
    app, headers = hooked
    client = app.test_client()
    image = uploaded(client, headers, GRAY, filename="p.jpg", visibility="public", expect=(201,))
    client.delete(f"/api/uploads/{image['id']}", headers=headers)
    first = Receiver(200)
    # The second worker read the same due entry, but the first claimed it in between.
    assert deliver(app, first) == 1
    assert deliver(app, Receiver(200)) == 0


def test_private_media_and_an_app_without_a_hook_queue_nothing(hooked, app_factory):
    app, headers = hooked
    client = app.test_client()
    private = uploaded(client, headers, GRAY, filename="p.jpg", visibility="private", expect=(201,))
    client.delete(f"/api/uploads/{private['id']}", headers=headers)
    assert outbox(app) == []


def test_a_production_hook_needs_a_real_key():
    from avenue.config import check

    config = {"AVENUE_ENV": "production", "SECRET_KEY": "s" * 40, "MONGO_URI": "mongodb://x",
              "AVENUE_CDN_PURGE_URL": "https://purge.example/hook", "AVENUE_CDN_PURGE_KEY": ""}
    with pytest.raises(RuntimeError, match="AVENUE_CDN_PURGE_KEY"):
        check(config)
    check({**config, "AVENUE_CDN_PURGE_KEY": "k" * 32})


def test_a_purge_hook_that_trickles_its_answer_is_given_up_at_the_deadline(monkeypatch):
    # urllib's timeout bounds each read: a byte every 0.2 s would have held the sender ~13 s
    # for the head alone (forever, with a longer answer). Under 8 s: a loaded machine, and
    # still well short of that.
    monkeypatch.setattr(cdn, "SEND_TIMEOUT_SECONDS", 1.0)
    with trickling_server(pause=0.2) as url:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            cdn.post(url, b"{}", {"Content-Type": "application/json"})
        assert time.monotonic() - started < 8.0
