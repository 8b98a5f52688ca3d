"""make run's one connection to the embedded SecantusDB (avenue/embedded/relay.py): what every client
does reaches the server one request at a time over one connection, with the same answers,
and the relay heals with the server."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time
import uuid

import bson
import gridfs
import pymongo
import pytest

from avenue.embedded import EmbeddedServer, Supervisor
from avenue.embedded import relay as relay_module
from avenue.embedded.relay import OP_MSG, SerialRelay, command_name, describe, own_connection


@pytest.fixture
def relay(secantus):
    started = SerialRelay("127.0.0.1", secantus.port).start()
    yield started
    started.stop()


def op_msg(document: dict, request_id: int = 1, flags: int = 0) -> bytes:
    body = struct.pack("<I", flags) + b"\0" + bson.encode(document)
    return struct.pack("<iiii", 16 + len(body), request_id, 0, OP_MSG) + body


def test_requests_are_told_apart_by_their_command():
    assert command_name(op_msg({"find": "things", "$db": "x"})) == "find"
    assert command_name(op_msg({"hello": 1, "$db": "admin"})) == "hello"
    assert own_connection(op_msg({"isMaster": 1, "$db": "admin"}))  # no store lock: its own connection
    assert own_connection(op_msg({"getMore": 1, "$db": "x"}, flags=1 << 16))  # exhaust: a stream of replies
    assert not own_connection(op_msg({"insert": "things", "$db": "x"}))
    assert not own_connection(op_msg({"getMore": 7, "$db": "x"}))


def test_many_clients_threads_and_cursors_go_through_one_connection_one_at_a_time(relay):
    client = pymongo.MongoClient(relay.uri, maxPoolSize=8)
    db = client[f"relay_{uuid.uuid4().hex[:8]}"]
    files = gridfs.GridFSBucket(db)
    photo = os.urandom(3 * 1024 * 1024 + 17)  # 13 chunks: a cursor read in batches
    file_id = files.upload_from_stream("photo.jpg", photo)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                db.things.insert_one({"n": n, "i": i})
                assert files.open_download_stream(file_id).read() == photo
            assert len(list(db.things.find({"n": n}, batch_size=2))) == 10  # getMores on the shared one
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == []
        assert db.things.count_documents({}) == 80
        assert relay.opened == 1 and relay.most_in_flight == 1 and relay.sent > 80 * 2
    finally:
        client.drop_database(db.name)
        client.close()


def test_a_request_whose_client_left_before_its_turn_is_not_sent(relay):
    client = pymongo.MongoClient(relay.uri)
    client.admin.command("ping")
    lock = relay._lock
    asyncio.run_coroutine_threadsafe(lock.acquire(), relay._loop).result(5)  # another's turn, a long one
    try:
        sent = relay.sent
        with socket.create_connection(("127.0.0.1", relay.port)) as raw:
            raw.sendall(op_msg({"insert": "things", "documents": [{"_id": "left"}], "$db": "relay_left"}))
            time.sleep(0.3)
        time.sleep(0.3)  # the client gone, then its turn comes
    finally:
        relay._loop.call_soon_threadsafe(lock.release)
    deadline = time.monotonic() + 5
    while relay.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert relay.dropped == 1 and relay.sent == sent
    assert client.relay_left.things.find_one({"_id": "left"}) is None
    client.close()


def test_a_restarted_server_is_reached_again_through_the_same_relay(tmp_path):
    server = EmbeddedServer(tmp_path / "db", cache_size="64M", standalone=True)
    relay = SerialRelay("127.0.0.1", server.port)
    supervisor = Supervisor(server, relay=relay.start(), log=lambda line: None).start()
    client = pymongo.MongoClient(supervisor.uri, serverSelectionTimeoutMS=10000, journal=True)
    try:
        client.shop.things.insert_one({"_id": "kept"})
        supervisor.restart("the test's")  # SIGKILL, the same folder and port, the relay's connection cut
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.shop.things.find_one({"_id": "kept"}) == {"_id": "kept"}
                break
            except pymongo.errors.AutoReconnect:  # the request that met the cut connection
                if time.monotonic() > deadline:
                    raise
        assert relay.opened == 2
    finally:
        client.close()
        supervisor.stop()


def test_a_request_is_described_by_its_command_and_namespace_never_its_documents():
    find = op_msg({"find": "shop_products", "filter": {}, "$db": "avenue"})
    assert describe(find) == "find avenue.shop_products"
    more = op_msg({"getMore": bson.Int64(7), "collection": "uploads.files", "$db": "avenue"})
    assert describe(more) == "getMore avenue.uploads.files"
    write = op_msg({"insert": "things", "documents": [{"secret": "x"}], "$db": "a"})
    assert describe(write) == "insert a.things"
    assert describe(b"\0" * 16) == ""  # not an OP_MSG


def test_an_operation_over_the_slow_bound_is_logged_with_what_it_was(secantus, monkeypatch):
    monkeypatch.setattr(relay_module, "SLOW_SECONDS", 0.0)  # every operation is "slow" here
    lines: list[str] = []
    relay = SerialRelay("127.0.0.1", secantus.port, log=lines.append).start()
    client = pymongo.MongoClient(relay.uri)
    try:
        client.relay_slow.things.insert_one({"_id": 1})
    finally:
        client.drop_database("relay_slow")
        client.close()
        relay.stop()
    assert any(line.startswith("The embedded database took ") and "for insert relay_slow.things;" in line
               for line in lines), lines
    assert ("insert relay_slow.things", pytest.approx(0, abs=5)) in relay.slow


def _silent_server() -> tuple[socket.socket, list[socket.socket], threading.Thread]:
    """A server that accepts one connection, reads nothing and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            accepted.append(listener.accept()[0])
        except OSError:
            pass  # nobody came (the test failed before the relay connected)

    accepting = threading.Thread(target=accept, daemon=True)
    accepting.start()
    return listener, accepted, accepting


def _close_silent_server(listener: socket.socket, accepted: list[socket.socket],
                         accepting: threading.Thread) -> None:
    """Wait for the accepting thread before closing what it accepted: under load it can return
    from accept() after the test has ended, and the socket it appends was left for the garbage
    collector, whose ResourceWarning then failed another test's setup (CI, stop 69)."""
    accepting.join(timeout=15)
    for conn in accepted:
        conn.close()
    listener.close()


def test_the_request_in_flight_is_named_while_the_server_holds_it():
    listener, accepted, accepting = _silent_server()
    relay = SerialRelay("127.0.0.1", listener.getsockname()[1]).start()
    answered = relay.answered_at
    try:
        assert relay.current() == ""
        with socket.create_connection(("127.0.0.1", relay.port)) as raw:
            raw.sendall(op_msg({"aggregate": "uploads.files", "pipeline": [], "$db": "avenue"}))
            deadline = time.monotonic() + 5
            while not relay.current() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert relay.current().startswith("aggregate avenue.uploads.files, in flight for ")
            assert relay.answered_at == answered  # nothing came back
    finally:
        relay.stop()
        _close_silent_server(listener, accepted, accepting)


def test_stopping_with_requests_in_flight_ends_their_handlers_without_an_error(caplog):
    """Ctrl-C on make run stops the relay while a client waits on the server: its handler is
    cancelled, and on Python 3.11 asyncio's stream callback then logged the CancelledError it
    raised ("Exception in callback StreamReaderProtocol...", a traceback after every Ctrl-C)."""
    listener, accepted, accepting = _silent_server()
    relay = SerialRelay("127.0.0.1", listener.getsockname()[1]).start()
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as raw:
            raw.sendall(op_msg({"find": "things", "$db": "relay_stop"}))
            deadline = time.monotonic() + 5
            while not relay.current() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert relay.current()  # the request waits on the server
            with caplog.at_level("DEBUG", logger="asyncio"):
                relay.stop()
            assert raw.recv(16) == b""  # the client sees its connection closed
    finally:
        relay.stop()
        _close_silent_server(listener, accepted, accepting)
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []
