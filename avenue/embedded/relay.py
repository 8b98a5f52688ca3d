"""One connection to the embedded database: every client's operations reach it over one connection,
one at a time.

Why (docs/production.md, "The embedded database"): the embedded database runs each operation under one
store lock, and each connection's thread ends every operation by releasing its WiredTiger read
snapshot, which takes that lock too (``Storage.release_thread_snapshot``). When the lock holder
is drafted into WiredTiger's cache eviction, the room it waits for can be pinned by the
snapshot of another connection's thread, which waits for the lock to let it go: a deadlock,
with no CPU used, caught with py-spy in the soak over and over. It needs two connection
threads with a snapshot. Through this relay the server has one such thread: an operation's
snapshot is released before the next one is sent, whatever the number of gunicorn workers,
threads, pools, CLI commands and the supervisor's probe behind it. The server ran one
operation at a time under its lock anyway, so little is lost; what each client gets back is
the same bytes the server sent.

How: a loopback listener that relays the MongoDB wire protocol message by message (a 16-byte
header, then the body: `OP_MSG`'s framing, mongodb/specifications). A request goes to the one
shared upstream connection under an asyncio lock and its one reply is read there, then given
to its client outside the lock (a slow client never holds the others up). Two kinds of request
never take the store's lock, so they go on a connection of the client's own instead: the
handshake and monitoring commands (``hello``, ``isMaster``, ``ping``, ``buildInfo``: pymongo's
monitor streams ``hello`` replies with ``moreToCome`` on its own socket) and legacy ``OP_QUERY``
(pymongo's first handshake). Cursors and sessions live on the server, not on a connection
(MongoDB's own rule, which the embedded database keeps), so a ``getMore`` on the shared connection finds
its cursor. A request whose client hung up while it waited for its turn is dropped, not sent
(its work would be thrown away). When the server goes (the supervisor's restart), the shared
connection is closed, every client waiting on it is cut (pymongo answers a network error,
the app a JSON 503), and the next request opens a new one.

A request that waits inside the server holds every other one behind it: a tailable cursor's
``getMore`` with ``maxAwaitTimeMS`` (a change stream) would, so the app opens none there (the
media cache polls for deletions on the embedded database, ``AVENUE_DELETIONS_STREAM=auto``).

Only for the embedded database under ``make run``: mongod runs operations side by side, and a
relay in front of it would only slow it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import time
from collections.abc import Callable

import bson
from bson.errors import BSONError

HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
OP_QUERY = 2004
OP_MSG = 2013
MORE_TO_COME = 1 << 1  # OP_MSG flagBits: no reply follows (a request) / another reply follows (a reply)
EXHAUST_ALLOWED = 1 << 16
#: Commands the embedded database answers without its store lock (and so without a read snapshot).
LOCK_FREE = frozenset({"hello", "ismaster", "ping", "buildinfo"})
#: A message larger than the protocol allows (48 MB) is not a MongoDB client's.
MAX_MESSAGE = 48 * 1024 * 1024 + 16 * 1024


#: An operation that holds the shared connection this long is logged with what it was: every
#: other request waited behind it (the status p99 and the supervisor's restarts were traced so).
SLOW_SECONDS = 1.0

log = logging.getLogger(__name__)


class ProtocolError(Exception):
    pass


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One whole wire-protocol message (raises IncompleteReadError at the end of the stream)."""
    header = await reader.readexactly(HEADER.size)
    length = HEADER.unpack(header)[0]
    if not HEADER.size <= length <= MAX_MESSAGE:
        raise ProtocolError(f"a message of {length} bytes")
    return header + await reader.readexactly(length - HEADER.size)


def op_code(message: bytes) -> int:
    return int(HEADER.unpack_from(message)[3])


def flag_bits(message: bytes) -> int:
    """An ``OP_MSG``'s flagBits (0 for other messages)."""
    if op_code(message) != OP_MSG or len(message) < HEADER.size + 4:
        return 0
    return int(struct.unpack_from("<I", message, HEADER.size)[0])


def command_name(message: bytes) -> str:
    """The command an ``OP_MSG`` runs: the first key of its body (section kind 0), lower-cased;
    '' when it has none to read."""
    start = HEADER.size + 4
    if op_code(message) != OP_MSG or len(message) < start + 1 + 5 or message[start] != 0:
        return ""
    name_at = start + 1 + 4 + 1  # the kind byte, the document's length, the first element's type
    end = message.find(b"\0", name_at)
    return "" if end < 0 else message[name_at:end].decode("utf-8", "replace").lower()


def describe(message: bytes) -> str:
    """What a request does, for a log line: its command and namespace (``find
    avenue.shop_products``, ``getMore avenue.uploads.files``); '' when it has none to read.
    Reads only the command document (section kind 0), never a write's documents (kind 1)."""
    start = HEADER.size + 4
    if op_code(message) != OP_MSG or len(message) < start + 5 or message[start] != 0:
        return command_name(message)
    length = struct.unpack_from("<i", message, start + 1)[0]
    try:
        body = bson.decode(message[start + 1:start + 1 + length])
    except (BSONError, ValueError, IndexError):
        return command_name(message)
    if not body:
        return ""
    name, value = next(iter(body.items()))
    collection = value if isinstance(value, str) else body.get("collection")
    where = ".".join(str(part) for part in (body.get("$db"), collection) if part)
    return f"{name} {where}".strip()


def own_connection(message: bytes) -> bool:
    """Whether ``message`` goes on its client's own connection, not the shared one."""
    if op_code(message) == OP_QUERY:
        return True
    return bool(flag_bits(message) & EXHAUST_ALLOWED) or command_name(message) in LOCK_FREE


class SerialRelay:
    """The relay: :meth:`start` listens on a free loopback port (``uri``), in a thread of its own."""

    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1",
                 port: int = 0, log: Callable[[str], None] = log.info) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = port
        self.sent = 0  # requests sent on the shared connection
        self.dropped = 0  # requests whose client left while they waited for their turn
        self.opened = 0  # shared connections opened (one, then one after each server restart)
        self.in_flight = self.most_in_flight = 0  # requests sent and not yet answered
        self.answered_at = time.monotonic()  # the server's last reply on the shared connection
        self.slow: list[tuple[str, float]] = []  # (what, seconds): the last few over SLOW_SECONDS
        self._current: tuple[bytes, float] | None = None  # the request in flight, since when
        self.log = log
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._lock: asyncio.Lock | None = None
        self._shared: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> SerialRelay:
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._listen())
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
                failed.append(exc)
                self._loop.close()
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="avenue-embedded-relay", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failed:
            raise failed[0]
        return self

    async def _listen(self) -> None:
        self._lock = asyncio.Lock()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listener and every connection (from any thread)."""
        if self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # a loop already stopped
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None
        if not self._loop.is_running():
            self._loop.close()  # its selector and self-pipe sockets

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_shared()
        writers = list(self._writers)
        for writer in writers:
            writer.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:  # the connections' handlers
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, *(writer.wait_closed() for writer in writers),
                                              return_exceptions=True), 2)

    def current(self) -> str:
        """The request in flight on the shared connection and for how long ('' when none): what
        every other request waits behind (the supervisor says it when it restarts the server)."""
        current = self._current
        if current is None:
            return ""
        message, since = current
        return f"{describe(message) or 'a request'}, in flight for {time.monotonic() - since:.1f} s"

    def reset(self) -> None:
        """Cut the shared connection (the server behind it was restarted): from any thread."""
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._drop_shared)

    def _drop_shared(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            shared[1].close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        own: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                message = await read_message(reader)
                if own_connection(message):
                    if own is None:
                        own = await asyncio.open_connection(*self.upstream)
                        self._writers.add(own[1])
                    await self._relay_own(message, own, writer)
                else:
                    reply = await self._in_turn(message, reader)
                    if reply is not None:
                        writer.write(reply)
                        await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ProtocolError):
            pass  # the client left, or the server did: the client sees its connection closed
        except asyncio.CancelledError:
            # Only :meth:`_close` cancels a handler (the relay stops): it ends here, not cancelled.
            # A cancelled handler made Python 3.11's StreamReaderProtocol callback call
            # task.exception(), which raises, and the loop printed a traceback at every Ctrl-C
            # of make run (CPython gh-113538, fixed in the Pythons after 3.11).
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            if own is not None:
                self._writers.discard(own[1])
                own[1].close()

    @staticmethod
    async def _relay_own(message: bytes, own: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                         writer: asyncio.StreamWriter) -> None:
        """Send on the client's own connection; relay its replies, all of a ``moreToCome`` stream
        (an awaitable ``hello``: the monitor reads them as they come)."""
        own[1].write(message)
        await own[1].drain()
        if flag_bits(message) & MORE_TO_COME:
            return
        while True:
            reply = await read_message(own[0])
            writer.write(reply)
            await writer.drain()
            if not flag_bits(reply) & MORE_TO_COME:
                return

    async def _in_turn(self, message: bytes, reader: asyncio.StreamReader) -> bytes | None:
        """Send on the shared connection in its turn; its reply (None: none is due,
        or the client left before its turn)."""
        assert self._lock is not None
        async with self._lock:
            if reader.at_eof():  # the client hung up (its timeout) while it waited
                self.dropped += 1
                return None
            if self._shared is None:
                self._shared = await asyncio.open_connection(*self.upstream)
                self.opened += 1
            shared_reader, shared_writer = self._shared
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            since = time.monotonic()
            self._current = (message, since)
            try:
                shared_writer.write(message)
                await shared_writer.drain()
                self.sent += 1
                if flag_bits(message) & MORE_TO_COME:
                    return None
                reply = await read_message(shared_reader)
                self.answered_at = time.monotonic()
                if self.answered_at - since >= SLOW_SECONDS:
                    self._slow(message, self.answered_at - since)
                return reply
            except BaseException:
                # Cut mid-exchange (the server restarted, or this client's task was cancelled):
                # the shared connection's next bytes would be this request's, so it goes.
                self._drop_shared()
                raise
            finally:
                self.in_flight -= 1
                self._current = None

    def _slow(self, message: bytes, seconds: float) -> None:
        what = describe(message) or "a request"
        self.slow = [*self.slow[-19:], (what, seconds)]
        self.log(f"The embedded database took {seconds:.1f} s for {what}; "
                 "every other request waited behind it")
