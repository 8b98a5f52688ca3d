#!/usr/bin/env python3
"""A TCP proxy in front of a MongoDB server that holds back the reply to every write sent with
a majority write concern by ``--ms`` milliseconds: the wait a replica set adds to such a write.

Why this models ``w: majority``: on a replica set the primary applies a write at once (its
other readers see it) and then waits, before it replies, until a majority of the members have
it in their journals (``j: true``, and ``writeConcernMajorityJournalDefault``): a secondary
fetches it from the oplog, journals it and reports its position back, about one round trip
between zones plus a journal commit. That wait is in nothing but the write's reply, so here
the server (the embedded SecantusDB, which journals each ``j: true`` write itself) executes
the command as it comes and only its reply is held. Reads (``majority`` read concern reads the
majority-committed snapshot, no wait) and the writes sent with ``w: 1`` (rendition claims,
rate-limit counters: avenue/ratelimit.py) pass unheld. Only OP_MSG is parsed (pymongo sends
nothing else to a 4.0+ server); the proxy runs in a process of its own so its work is not
counted as the app's CPU.

    .venv/bin/python bench/majority_delay.py --upstream 127.0.0.1:27017 --ms 2
    (prints "listening <port>", proxies until SIGTERM, then prints "held <replies held>")
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys
from typing import Any

import bson

OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode


def majority(message: bytes) -> bool:
    """Whether ``message`` (a whole wire message) is an OP_MSG whose command asks for a
    majority (or more than one member's) acknowledgement."""
    _, _, _, opcode = HEADER.unpack_from(message)
    if opcode != OP_MSG:
        return False
    offset = HEADER.size + 4  # after the flag bits: the sections
    while offset < len(message):
        kind = message[offset]
        size = struct.unpack_from("<i", message, offset + 1)[0]
        if kind == 0:  # the command document
            command: dict[str, Any] = bson.decode(message[offset + 1:offset + 1 + size])
            w = (command.get("writeConcern") or {}).get("w")
            return w == "majority" or (isinstance(w, int) and w > 1)
        offset += 1 + size  # a document sequence (kind 1): its size counts itself
    return False


async def read_message(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(4)
    (length,) = struct.unpack("<i", head)
    return head + await reader.readexactly(length - 4)


class Proxy:
    def __init__(self, host: str, port: int, seconds: float) -> None:
        self.host, self.port, self.seconds = host, port, seconds
        self.held = 0

    async def serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(self.host, self.port)
        waiting: set[int] = set()  # request ids of this connection's majority writes

        async def up() -> None:
            while True:
                message = await read_message(client_reader)
                if self.seconds > 0 and majority(message):
                    waiting.add(HEADER.unpack_from(message)[1])
                server_writer.write(message)
                await server_writer.drain()

        async def down() -> None:
            while True:
                message = await read_message(server_reader)
                responding_to = HEADER.unpack_from(message)[2]
                if responding_to in waiting:
                    waiting.discard(responding_to)
                    self.held += 1
                    await asyncio.sleep(self.seconds)
                client_writer.write(message)
                await client_writer.drain()

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)  # a side closed
        except asyncio.CancelledError:
            pass  # the proxy stops: this connection ends with it
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.close()


async def main_async(upstream: str, ms: float, port: int) -> None:
    host, _, up_port = upstream.rpartition(":")
    proxy = Proxy(host, int(up_port), ms / 1000)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", port)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"held {proxy.held}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="host:port of the MongoDB server")
    parser.add_argument("--ms", type=float, default=0.0, help="ms each majority write's reply is held")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    args = parser.parse_args()
    asyncio.run(main_async(args.upstream, args.ms, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
