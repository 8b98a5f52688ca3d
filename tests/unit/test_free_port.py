"""The ports Avenue picks for the servers it starts (``avenue.embedded.free_port``): free, and
outside the kernel's ephemeral range, which outgoing connections draw their own ports from."""

from __future__ import annotations

import socket
from pathlib import Path

from avenue.embedded.supervisor import PORTS, free_port


def test_a_picked_port_is_free_and_below_the_ephemeral_range():
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    picked = {free_port() for _ in range(20)}
    assert all(port in PORTS and not low <= port <= high for port in picked), picked
    assert len(picked) > 1  # chosen at random, not the same one each time
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", picked.pop()))  # free: a server can bind it


def test_a_port_in_use_is_not_picked(monkeypatch):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    monkeypatch.setattr("avenue.embedded.supervisor.PORTS", range(taken, taken + 1))
    try:
        assert free_port() != taken  # the one port of the range is busy: the kernel's pick instead
    finally:
        held.close()
