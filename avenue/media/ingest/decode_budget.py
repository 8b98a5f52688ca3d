"""The decode budget: the bytes of decoded pixels held at once, by one process or by one instance.

Pure domain code: no Flask, no database. The one thing it reads from its surroundings is
``AVENUE_DECODE_LEDGER_DIR`` (gunicorn.conf.py sets it for the workers of one server), in
:func:`decode_budget`, the one place that chooses between the two kinds of budget below.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from avenue.embedded import alive
from avenue.errors import ImageTooLarge, ServerBusy


class DecodeBudget:
    """The bytes of decoded pixels a process may hold at once, shared by its request threads.

    A 150 KB PNG may declare 40 megapixels: decoded, that is 160 MB, and four of them at once
    took a worker past 1.3 GB. Each decode first reserves what it will hold (known from the
    header before any pixel is decoded); a reservation that does not fit waits for others to
    finish, up to ``decode_wait_seconds``, then the request answers 503 with Retry-After. One
    image needing more than the whole budget is refused with 413. So the decoded pixels never
    exceed the budget, whatever the uploads declare.

    Work on the pixels after the decode counts too, in the same reservation
    (:func:`~avenue.media.ingest.images.prepare`'s ``working``): an edit's cropped and turned
    canvases, a rendition's resized frame, the variants a new version renders after its
    answer (``variants.canvases``: the resized canvases and the encoders' copies), held until
    the result is encoded (``PreparedImage.release``), so edits and the work they leave for
    after their answers take turns. A job whose decode fits but whose working canvases would
    not takes the whole budget and runs alone.

    This class is one process's budget: what the tests, the CLI and any single process use.
    Under gunicorn every worker of the server shares one instead (:class:`SharedDecodeBudget`),
    so an edit that takes the whole budget runs alone on the instance, not only in its worker
    (bench/results/attacks-2026-11-25-edits-instance-budget.md; docs/performance.md). A job
    that takes the whole budget may hold more than it (a 40 MP edit ~270 MB against 192): it
    runs alone.
    """

    # How long a waiter sleeps before it looks again without being woken (None: until woken).
    poll_seconds: float | None = None

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        """The bytes reserved now."""
        return self._used

    def reserve(self, amount: int, wait_seconds: float) -> None:
        """Hold ``amount`` bytes (waiting for room); ImageTooLarge or ServerBusy otherwise."""
        if amount > self.capacity:
            raise ImageTooLarge(
                f"Decoding this image needs about {amount / 2**20:.0f} MB of memory; the server "
                f"decodes at most {self.capacity / 2**20:.0f} MB at once. Send fewer pixels.",
                code="decode_too_large", needed_bytes=amount, limit_bytes=self.capacity)
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            while not self._take(amount):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerBusy("The server is decoding other large images; try again in a few seconds.",
                                     retry_after=5)
                self._changed.wait(left if self.poll_seconds is None else min(left, self.poll_seconds))

    def release(self, amount: int) -> None:
        """Give back ``amount`` bytes a :meth:`reserve` took; wakes this process's waiters."""
        with self._changed:
            self._give(amount)
            self._changed.notify_all()

    def hold(self, decoding: int, working: int, wait_seconds: float) -> Reservation:
        """Reserve ``decoding`` bytes plus ``working`` more, or the whole budget when the sum
        exceeds it (the job then runs alone); 413 only when ``decoding`` alone does not fit."""
        if decoding > self.capacity:
            self.reserve(decoding, wait_seconds)  # raises ImageTooLarge
        amount = min(decoding + working, self.capacity)
        self.reserve(amount, wait_seconds)
        return Reservation(self, amount)

    def _take(self, amount: int) -> bool:
        """Reserve ``amount`` if it fits now (called holding the condition's lock)."""
        if self._used + amount > self.capacity:
            return False
        self._used += amount
        return True

    def _give(self, amount: int) -> None:
        self._used -= amount


class SharedDecodeBudget(DecodeBudget):
    """One budget for every process of an instance (the workers of one gunicorn server): an
    edit that takes the whole budget runs alone on the instance, not alone in its worker.

    The ledger is a small text file, one line per reservation (``pid start-time bytes``), in
    the folder ``AVENUE_DECODE_LEDGER_DIR`` names (gunicorn.conf.py prepares it before the
    first worker starts). Every read and write of it happens under an exclusive ``fcntl.flock``
    of a lock file beside it, and a new ledger replaces the old one whole (``os.replace``), so
    a process killed at any point leaves the old ledger or the new one, never half of one.
    Each reservation first drops the entries of processes that are gone (a worker killed
    mid-edit by gunicorn's timeout or SIGKILL never releases): a pid that no longer exists, or
    exists with another start time (a reused pid), or is a zombie, holds nothing. So nothing
    leaks, and nobody has to clean up after a dead worker.

    Why a ledger under flock rather than a semaphore: a ``multiprocessing`` semaphore counts,
    it does not know who holds what, so the bytes of a worker killed mid-edit would be lost
    for good; gunicorn's ``child_exit`` hook could give them back, but only with the master's
    cooperation and only while that master lives. The ledger needs neither: it names each
    holder and checks them itself, so in a folder the operator chose it outlives a master
    restart too (a new master's workers purge the old ones' entries on their first reservation).

    Waiting: a waiter is woken at once by a release in its own process (the in-process
    Condition, as in :class:`DecodeBudget`); a release in another process is seen by polling
    the ledger every :attr:`poll_seconds` (75 ms): a bounded delay, small beside the seconds a
    decode that needs the room takes. Waiters of different processes are not queued: a
    whole-budget job can be overtaken by smaller ones until ``decode_wait_seconds`` runs out,
    as it could within one process.
    """

    poll_seconds: float | None = 0.075

    def __init__(self, capacity: int, folder: Path) -> None:
        super().__init__(capacity)
        self.ledger = folder / f"decode-{capacity}.ledger"
        self._lock_path = folder / f"decode-{capacity}.lock"
        self._me: tuple[int, str] | None = None

    @property
    def in_use(self) -> int:
        """The bytes the instance's live processes hold now."""
        with _Flock(self._lock_path):
            return sum(amount for _, _, amount in _live(self._read()))

    def _take(self, amount: int) -> bool:
        with _Flock(self._lock_path):
            entries = self._read()
            live = _live(entries)
            if sum(held for _, _, held in live) + amount <= self.capacity:
                self._write([*live, (*self._identity(), amount)])
                return True
            if len(live) != len(entries):
                self._write(live)  # the dead ones' bytes are gone with them
            return False

    def _give(self, amount: int) -> None:
        mine = (*self._identity(), amount)
        with _Flock(self._lock_path):
            entries = self._read()
            if mine in entries:
                entries.remove(mine)  # any one of ours of that size: they are interchangeable
                self._write(entries)

    def _identity(self) -> tuple[int, str]:
        """This process as the ledger names it (asked again after a fork: a child is another)."""
        pid = os.getpid()
        if self._me is None or self._me[0] != pid:
            self._me = (pid, _start_time(pid) or "-")
        return self._me

    def _read(self) -> list[tuple[int, str, int]]:
        try:
            text = self.ledger.read_text()
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[0].isdigit() and fields[2].isdigit():
                entries.append((int(fields[0]), fields[1], int(fields[2])))
        return entries

    def _write(self, entries: list[tuple[int, str, int]]) -> None:
        # Written beside it, then put in its place: a process killed half way leaves the old one.
        fresh = self.ledger.with_name(self.ledger.name + ".new")  # one writer at a time: the flock
        fresh.write_text("".join(f"{pid} {start} {amount}\n" for pid, start, amount in entries))
        os.replace(fresh, self.ledger)


class _Flock:
    """An exclusive flock of ``path`` (made if missing) for the length of a ``with`` block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def __enter__(self) -> _Flock:
        # A descriptor of its own each time: flock then excludes this process's other threads too.
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)  # closing the only descriptor of the open file releases the lock


_PROC = Path("/proc/self/stat").exists()


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from Linux's /proc), None when it
    is gone or a zombie (its memory is freed already) or there is no /proc to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after the command's name, which may hold spaces
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return fields[19]


def _live(entries: list[tuple[int, str, int]]) -> list[tuple[int, str, int]]:
    """The ledger entries whose process still runs: the same process, not another that was
    given its pid since (its start time tells them apart); the pid alone without /proc."""
    known: dict[int, bool] = {}
    for pid, start, _ in entries:
        if pid not in known:
            known[pid] = _start_time(pid) == start if _PROC and start != "-" else alive(pid)
    return [entry for entry in entries if known[entry[0]]]


class Reservation:
    """Bytes of a :class:`DecodeBudget` held until :meth:`release` (once; again does nothing)."""

    def __init__(self, budget: DecodeBudget, amount: int) -> None:
        self.budget, self.amount = budget, amount

    def release(self) -> None:
        """Give the bytes back (their pixels are gone)."""
        amount, self.amount = self.amount, 0
        if amount:
            self.budget.release(amount)


_BUDGETS: dict[tuple[int, str | None], DecodeBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def decode_budget(capacity: int) -> DecodeBudget:
    """The budget of ``capacity`` bytes (one per size: tests build several apps): the
    instance's, shared by every worker, when ``AVENUE_DECODE_LEDGER_DIR`` names the folder of
    its ledger (gunicorn.conf.py sets it), else this process's own."""
    folder = os.environ.get("AVENUE_DECODE_LEDGER_DIR") or None
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get((capacity, folder))
        if budget is None:
            budget = DecodeBudget(capacity) if folder is None else SharedDecodeBudget(capacity, Path(folder))
            _BUDGETS[(capacity, folder)] = budget
        return budget
