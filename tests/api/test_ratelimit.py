"""Rate limits: logins per address and per account, uploads per user, shared by every instance."""

from __future__ import annotations

import threading
import time

import pymongo
import pytest
from flask import Flask, jsonify

from avenue import ratelimit
from avenue.auth import require_role, service
from avenue.config import from_environment
from avenue.ratelimit import COLLECTION, limit_uploads
from tests.helpers import expires_after
from tests.support.client import upload


def limited_app(app_factory, **overrides):
    config = {"RATELIMIT_ENABLED": True, "AVENUE_LOGIN_RATE_LIMIT": "3/minute",
              "AVENUE_LOGIN_ADDRESS_LIMIT": "5/minute", "AVENUE_LOGIN_ACCOUNT_LIMIT": "6/minute"}
    config.update(overrides)
    return app_factory(**config)


def attempt(client, email: str, password: str = "wrong password", address: str = "198.51.100.1"):
    return client.post("/api/auth/login", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def assert_rate_limited(response, window_seconds: int = 60) -> None:
    assert response.status_code == 429
    assert response.is_json and response.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= window_seconds


def with_user(app, email: str, password: str = "the right password"):
    with app.app_context():
        from avenue.db import get_db, get_mongo

        get_mongo().ensure_indexes()
        service.create_user(get_db(), email, password, "admin")
    return app


def test_failed_logins_are_limited_per_account_and_address(app_factory, monkeypatch):
    app = with_user(limited_app(app_factory), "kim@example.com")
    client = app.test_client()
    assert [attempt(client, "kim@example.com").status_code for _ in range(3)] == [401] * 3
    hashed: list[str] = []
    real_check = service.check_password_hash
    monkeypatch.setattr(service, "check_password_hash",
                        lambda *args: hashed.append("x") or real_check(*args))
    # Refused before any hashing, even with the right password, from that address...
    assert_rate_limited(attempt(client, "kim@example.com", "the right password"))
    assert hashed == []
    # ...while other accounts from it, and this account from elsewhere, are not.
    assert attempt(client, "lee@example.com").status_code == 401
    assert attempt(client, "kim@example.com", "the right password",
                   address="203.0.113.5").status_code == 200


def test_nobody_can_lock_the_owner_out_with_wrong_passwords(app_factory):
    """The attack of issue 12: ten wrong passwords for someone's email from one address."""
    app = with_user(limited_app(app_factory), "owner@example.com")
    client = app.test_client()
    statuses = [attempt(client, "owner@example.com", address="198.51.100.66").status_code
                for _ in range(10)]
    assert statuses == [401] * 3 + [429] * 7
    owner = attempt(client, "owner@example.com", "the right password", address="203.0.113.10")
    assert owner.status_code == 200


def test_once_an_account_is_under_attack_only_addresses_that_failed_are_refused(app_factory):
    app = with_user(limited_app(app_factory), "owner@example.com")
    client = app.test_client()
    # Six addresses fail twice each: the account's six failures are used up.
    for n in range(3):
        for _ in range(2):
            assert attempt(client, "owner@example.com", address=f"198.51.100.{n}").status_code == 401
    assert_rate_limited(attempt(client, "owner@example.com", address="198.51.100.0"))
    assert_rate_limited(attempt(client, "owner@example.com", "the right password",
                                address="198.51.100.1"))
    # An address with no failure on this account still gets its attempt checked.
    assert attempt(client, "owner@example.com", "the right password",
                   address="203.0.113.10").status_code == 200


def test_failures_from_one_address_over_many_accounts_are_limited(app_factory):
    client = limited_app(app_factory).test_client()
    for n in range(5):
        assert attempt(client, f"user{n}@example.com").status_code == 401
    assert_rate_limited(attempt(client, "user9@example.com"))
    assert attempt(client, "user9@example.com", address="198.51.100.2").status_code == 401


def test_correct_passwords_are_never_counted(app_factory):
    app = with_user(limited_app(app_factory), "busy@example.com")
    client = app.test_client()
    statuses = {attempt(client, "busy@example.com", "the right password").status_code for _ in range(8)}
    assert statuses == {200}


def test_a_success_forgives_that_addresss_failures_on_the_account(app_factory):
    app = with_user(limited_app(app_factory, AVENUE_LOGIN_ADDRESS_LIMIT="50/minute"), "typo@example.com")
    client = app.test_client()
    assert [attempt(client, "typo@example.com").status_code for _ in range(2)] == [401, 401]
    assert attempt(client, "typo@example.com", "the right password").status_code == 200
    assert [attempt(client, "typo@example.com").status_code for _ in range(4)] == [401] * 3 + [429]


def test_stepped_windows_back_off(app_factory):
    # A three-second short window, for the reason test_a_window_reopens_when_it_ends gives.
    client = limited_app(app_factory, AVENUE_LOGIN_RATE_LIMIT="2 per 3 second;3 per 1 minute",
                         AVENUE_LOGIN_ADDRESS_LIMIT="50/minute").test_client()
    assert [attempt(client, "a@example.com").status_code for _ in range(3)] == [401, 401, 429]
    time.sleep(3.05)
    assert attempt(client, "a@example.com").status_code == 401
    time.sleep(3.05)
    # The short window reopened, the minute window is used up: a longer wait.
    refused = attempt(client, "a@example.com")
    assert_rate_limited(refused)
    assert int(refused.headers["Retry-After"]) > 3


def test_a_window_reopens_when_it_ends(app_factory):
    # Three seconds, not one: the windows are fixed, and three logins (each a password hash) on a
    # loaded machine once straddled a one-second window's end ([401, 401, 401]).
    client = limited_app(app_factory, AVENUE_LOGIN_RATE_LIMIT="2 per 3 second").test_client()
    assert [attempt(client, "a@example.com").status_code for _ in range(3)] == [401, 401, 429]
    time.sleep(3.05)
    assert attempt(client, "a@example.com").status_code == 401


@pytest.mark.database
def test_the_limit_holds_across_two_app_instances_sharing_one_database(app_factory, backend):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("mongomock is one in-process object both apps share: it cannot show that "
                    "separate clients (workers, instances) see the same counters")
    first, second = limited_app(app_factory), limited_app(app_factory)
    assert first.extensions["avenue.mongo"].client is not second.extensions["avenue.mongo"].client
    clients = [first.test_client(), second.test_client()]
    statuses = [attempt(clients[n % 2], "shared@example.com").status_code for n in range(3)]
    assert statuses == [401, 401, 401]
    assert_rate_limited(attempt(clients[1], "shared@example.com"))
    assert_rate_limited(attempt(clients[0], "shared@example.com"))


def test_counters_live_in_mongodb_and_expire_by_ttl(app_factory):
    app = limited_app(app_factory)
    attempt(app.test_client(), "ttl@example.com")
    with app.app_context():
        from avenue.db import get_db

        db = get_db()
        counters = list(db[COLLECTION].find())
        ttl = expires_after(db[COLLECTION], "ttl")
    assert len(counters) == 3  # the account and address pair, the address, the account
    assert all(doc["count"] == 1 and doc["expireAt"] for doc in counters)
    assert "ttl@example.com" not in str(counters)  # accounts are keyed by a hash
    assert ttl == 0


def burst(app, storage, key: str, size: int = 20) -> tuple[list[int], list[BaseException]]:
    """``size`` threads each add one to ``key`` at the same instant."""
    barrier = threading.Barrier(size)
    results: list[int] = []
    errors: list[BaseException] = []

    def hit_once() -> None:
        try:
            with app.app_context():
                barrier.wait()
                results.append(storage.incr(key, 60))
        except BaseException as error:  # noqa: BLE001 - every failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=hit_once) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_simultaneous_first_hits_in_a_fresh_window_are_counted_exactly(app_factory):
    """Twenty threads hit one key at the same instant: no error, counts 1..20, total 20."""
    app = limited_app(app_factory)
    storage = app.extensions[ratelimit.EXTENSION].limiter.storage
    for round_ in range(3):
        results, errors = burst(app, storage, f"burst-{round_}")
        assert errors == []
        assert sorted(results) == list(range(1, 21))
        with app.app_context():
            assert storage.get(f"burst-{round_}") == 20


def test_limits_are_off_only_when_configured_off(app_factory, monkeypatch):
    client = app_factory(RATELIMIT_ENABLED=False, AVENUE_LOGIN_RATE_LIMIT="1/minute").test_client()
    assert {attempt(client, "free@example.com").status_code for _ in range(5)} == {401}
    monkeypatch.delenv("AVENUE_RATELIMIT_ENABLED", raising=False)
    assert from_environment()["RATELIMIT_ENABLED"] is True
    monkeypatch.setenv("AVENUE_RATELIMIT_ENABLED", "false")
    assert from_environment()["RATELIMIT_ENABLED"] is False


@pytest.mark.parametrize("name", ratelimit.LIMIT_SETTINGS)
def test_a_malformed_limit_stops_the_app_from_starting(name):
    app = Flask("probe")
    app.config.update(from_environment(), RATELIMIT_ENABLED=True)
    app.config[name] = "lots"
    with pytest.raises(RuntimeError, match=name):
        ratelimit.init_app(app)


# --- uploads -------------------------------------------------------------------------------


def app_with_probe_upload_view(app_factory, limit: str = "2/minute"):
    """An app with a stand-in upload view decorated exactly as the real ones are."""
    app = limited_app(app_factory, AVENUE_UPLOAD_RATE_LIMIT=limit)

    @require_role()
    @limit_uploads
    def probe_upload():
        return jsonify(ok=True), 201

    app.add_url_rule("/api/probe-upload", view_func=probe_upload, methods=["POST"])
    return app


def test_uploads_are_limited_per_user(app_factory, own_routes):
    app = app_with_probe_upload_view(app_factory)
    from tests.helpers import Auth

    auth = Auth(app)
    alice, bob = auth.token("editor"), auth.token("editor")
    client = app.test_client()
    assert [client.post("/api/probe-upload", headers=alice).status_code for _ in range(2)] == [201, 201]
    assert_rate_limited(client.post("/api/probe-upload", headers=alice))
    assert client.post("/api/probe-upload", headers=bob).status_code == 201


def test_anonymous_uploads_are_refused_before_they_are_counted(app_factory, own_routes):
    app = app_with_probe_upload_view(app_factory, limit="1/minute")
    client = app.test_client()
    assert {client.post("/api/probe-upload").status_code for _ in range(3)} == {401}
    with app.app_context():
        from avenue.db import get_db

        assert get_db()[COLLECTION].count_documents({}) == 0


def test_a_real_upload_endpoint_answers_429_once_the_users_uploads_are_used_up(app_factory):
    from tests.helpers import Auth, bucket_snapshot

    app = limited_app(app_factory, AVENUE_UPLOAD_RATE_LIMIT="1/minute")
    headers = Auth(app).token("editor")
    client = app.test_client()

    assert upload(client, headers, "good/tiny_1x1.png", visibility="private").status_code == 201
    with app.app_context():
        from avenue.db import get_db

        before = bucket_snapshot(get_db())
    assert_rate_limited(upload(client, headers, "good/alpha.png", visibility="private"))
    with app.app_context():
        from avenue.db import get_db

        assert bucket_snapshot(get_db()) == before  # the refused upload stored nothing


@pytest.mark.database
def test_counters_are_written_without_waiting_for_the_journal_or_a_majority(backend, db_name):
    """A hit is acknowledged by the primary alone (w: 1, no journal wait: a log sync per hit,
    and a cold rendition pays three), while the app's other writes keep their durability."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    from tests.helpers import listening, make_app
    from tests.support.commands import Matching

    writes = Matching(lambda event: event.database_name == db_name
                      and event.command_name in {"findAndModify", "insert", "delete"})
    app = make_app((listening(writes), backend[1]), db_name, RATELIMIT_ENABLED=True,
                   AVENUE_LOGIN_RATE_LIMIT="3/minute", MONGO_WRITE_CONCERN="majority", MONGO_JOURNAL=True)
    try:
        with_user(app, "owner@example.com")
        assert attempt(app.test_client(), "owner@example.com").status_code == 401
        hits = [command for command in writes.commands if next(iter(command.values())) == COLLECTION]
        others = [command for command in writes.commands if next(iter(command.values())) != COLLECTION]
        assert hits and all(command["writeConcern"] == {"w": 1, "j": False} for command in hits), hits
        assert others and all(command["writeConcern"] == {"w": "majority", "j": True} for command in others)
    finally:
        client = app.extensions["avenue.mongo"].client
        client.drop_database(db_name)
        client.close()


# --- the limits of cold renders: every window of a key in one command -----------------------


def test_nested_windows_share_one_document_and_others_get_their_own():
    groups = ratelimit.WindowGroup.of("s", "60/minute;600/hour;5/7 seconds;1000/day")
    assert [[item.get_expiry() for item in group.items] for group in groups] == [[86400, 3600, 60], [7]]


def hits_of_the_gate(app, monkeypatch, moment: float, times: int, address: str = "198.51.100.7"):
    """``times`` cold render admissions from ``address`` at UNIX time ``moment``: each None
    (admitted) or the 429 raised."""
    from avenue.errors import RateLimited

    monkeypatch.setattr(ratelimit.time, "time", lambda: moment)
    admit = ratelimit.cold_render_gate(lambda: False)
    answers = []
    for _ in range(times):
        with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
            try:
                assert admit() is False  # admitted, with no write of the caller's to carry
                answers.append(None)
            except RateLimited as refused:
                answers.append(refused)
    return answers


def test_a_cold_render_is_counted_in_one_command_per_key_and_a_refused_one_nowhere(app_factory, monkeypatch):
    """The address's minute and hour are one document (one findAndModify, which opens it too),
    the instance's another. A render refused by the minute is not counted in the hour: a
    client that bursts past the minute keeps its hour for later minutes."""
    app = limited_app(app_factory, AVENUE_RENDER_ADDRESS_LIMIT="2/minute;3/hour",
                      AVENUE_RENDER_INSTANCE_LIMIT="100/minute")
    hour = 3600 * 500_000  # a window's start: the next minute is in the same hour
    answers = hits_of_the_gate(app, monkeypatch, hour + 10, 4)
    assert answers[:2] == [None, None]
    assert all(refused.details["retry_after"] == 50 for refused in answers[2:])
    with app.app_context():
        from avenue.db import get_db

        docs = {doc["_id"]: doc for doc in get_db()[COLLECTION].find()}
    address = docs[f"render-address/198.51.100.7/3600/{hour // 3600}"]
    assert address[f"w3600_{hour // 3600}"] == 2 and address[f"w60_{hour // 60}"] == 2
    assert docs[f"render-instance/{ratelimit.INSTANCE}/60/{hour // 60}"][f"w60_{hour // 60}"] == 2
    assert len(docs) == 2
    # The next minute: one more (the hour's third), then the hour refuses until it ends.
    answers = hits_of_the_gate(app, monkeypatch, hour + 70, 2)
    assert answers[0] is None and answers[1].details["retry_after"] == 3600 - 70
    # Another address has its own.
    assert hits_of_the_gate(app, monkeypatch, hour + 70, 1, address="198.51.100.8") == [None]


def test_a_render_the_instance_refuses_is_counted_for_its_address_and_one_the_address_refuses_nowhere(
        app_factory, monkeypatch):
    """Ordered as before: the address's windows first, then the instance's. A render the
    address refuses is not counted for the instance; one the instance refuses has been counted
    for its address (as when each was a command of its own)."""
    app = limited_app(app_factory, AVENUE_RENDER_ADDRESS_LIMIT="1/minute",
                      AVENUE_RENDER_INSTANCE_LIMIT="2/minute")
    minute = 60 * 30_000_000
    assert hits_of_the_gate(app, monkeypatch, minute + 1, 1) == [None]
    refused = hits_of_the_gate(app, monkeypatch, minute + 2, 1)[0]
    assert "from your address" in refused.message
    assert hits_of_the_gate(app, monkeypatch, minute + 3, 1, address="198.51.100.9") == [None]
    refused = hits_of_the_gate(app, monkeypatch, minute + 4, 1, address="198.51.100.10")[0]
    assert "on this server" in refused.message
    with app.app_context():
        from avenue.db import get_db

        counts = {doc["_id"].split("/")[1]: doc[f"w60_{minute // 60}"] for doc in get_db()[COLLECTION].find()}
    assert counts == {"198.51.100.7": 1, ratelimit.INSTANCE: 2, "198.51.100.9": 1, "198.51.100.10": 1}


@pytest.mark.database
def test_simultaneous_first_cold_renders_are_admitted_exactly_up_to_the_limit(app_factory, backend):
    """Twenty threads open one address's window at the same instant, the limit ten: ten are
    admitted and counted, ten refused (the upserts that race the document's first insert)."""
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("threads need a real server (mongomock is not thread-safe)")
    app = limited_app(app_factory)
    group = ratelimit.WindowGroup.of("burst", "10/minute;100/hour")[0]
    moment = time.time()
    barrier = threading.Barrier(20)
    refused: list = []
    errors: list[BaseException] = []

    def hit_once() -> None:
        try:
            with app.app_context():
                counters = app.extensions[ratelimit.EXTENSION].limiter.storage.counters
                barrier.wait()
                refused.append(group.hit(counters, "one", moment))
        except BaseException as error:  # noqa: BLE001 - every failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=hit_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(item is None for item in refused) == 10 and len(refused) == 20
    with app.app_context():
        from avenue.db import get_db

        (doc,) = get_db()[COLLECTION].find()
    assert doc[f"w60_{int(moment // 60)}"] == 10 and doc[f"w3600_{int(moment // 3600)}"] == 10


def test_a_race_lost_on_a_later_group_counts_each_group_once(app_factory):
    """The second group's upsert loses a race to its document's first insert (E11000 at index
    1 of the ordered bulk write, its window not used up): the hit is counted again from that
    group on, so the first group, already counted, is not counted twice."""
    app = limited_app(app_factory)
    address, instance = (ratelimit.WindowGroup.of(scope, "10/minute")[0] for scope in ("address", "instance"))
    moment = time.time()
    with app.app_context():
        counters = app.extensions[ratelimit.EXTENSION].limiter.storage.counters
        writes: list[int] = []

        class RacedOnce:
            """The counters; the first bulk write runs its first update only, then fails as
            the server does when a racing writer inserted the second's document first."""

            def __getattr__(self, name):
                return getattr(counters, name)

            def bulk_write(self, requests, ordered=True):
                writes.append(len(requests))
                if len(writes) == 1:
                    counters.bulk_write(requests[:1], ordered=ordered)
                    raise pymongo.errors.BulkWriteError({
                        "writeErrors": [{"index": 1, "code": 11000, "errmsg": "E11000 duplicate key"}],
                        "nInserted": 0, "nUpserted": 1, "nMatched": 0, "nModified": 0})
                return counters.bulk_write(requests, ordered=ordered)

        assert ratelimit.hit_all(RacedOnce(), [(address, "one"), (instance, "all")], moment) is None
        counts = {doc["_id"].split("/")[0]: doc[f"w60_{int(moment // 60)}"] for doc in counters.find()}
    assert writes == [2, 1]
    assert counts == {"address": 1, "instance": 1}


def test_a_write_carried_with_no_hits_is_still_made_once(db):
    """hit_all's ``then`` is written with the hits, or alone when there are none to count:
    the gate answers that it made the write (a claim), so it must never be skipped."""
    from pymongo.errors import DuplicateKeyError

    from avenue import writes

    claim = writes.insert("carried_claims", {"_id": "rendition-1"})
    assert ratelimit.hit_all(db[COLLECTION], [], time.time(), then=claim) is None
    assert db.carried_claims.count_documents({"_id": "rendition-1"}) == 1
    with pytest.raises(DuplicateKeyError):  # held: refused by its _id, as with hits
        ratelimit.hit_all(db[COLLECTION], [], time.time(), then=writes.insert("carried_claims",
                                                                               {"_id": "rendition-1"}))
