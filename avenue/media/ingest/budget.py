"""The decode budget: the bytes of decoded pixels a process holds at once over all its requests.

Pure domain code: no Flask, no database.
"""

from __future__ import annotations

import threading

from avenue.errors import ImageTooLarge, ServerBusy


class DecodeBudget:
    """The bytes of decoded pixels a process may hold at once, shared by its request threads.

    A 150 KB PNG may declare 40 megapixels: decoded, that is 160 MB, and four of them at once
    took a worker past 1.3 GB. Each decode first reserves what it will hold (known from the
    header before any pixel is decoded); a reservation that does not fit waits for others to
    finish, up to ``decode_wait_seconds``, then the request answers 503 with Retry-After. One
    image needing more than the whole budget is refused with 413. So a worker's decoded
    pixels never exceed its budget, whatever the uploads declare.

    Work on the pixels after the decode counts too, in the same reservation (:func:`prepare`'s
    ``working``): an edit's turned and cropped canvas, a rendition's resized frame, held until
    the result is encoded (:meth:`PreparedImage.release`), so a worker's edits take turns. A
    job whose decode fits but whose working canvases would not takes the whole budget and
    runs alone. The budget is per process: four 40 MP rotate-and-crops on 2 workers added
    +799 MB above idle, against +1,462 MB when only decodes counted
    (bench/results/attacks-2026-11-25.md, "4 edits at once"; one such edit costs its worker
    about 400 MB, twice the default budget).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._changed = threading.Condition()

    def reserve(self, amount: int, wait_seconds: float) -> None:
        """Hold ``amount`` bytes (waiting for room); ImageTooLarge or ServerBusy otherwise."""
        if amount > self.capacity:
            raise ImageTooLarge(
                f"Decoding this image needs about {amount / 2**20:.0f} MB of memory; the server "
                f"decodes at most {self.capacity / 2**20:.0f} MB at once. Send fewer pixels.",
                code="decode_too_large", needed_bytes=amount, limit_bytes=self.capacity)
        with self._changed:
            if not self._changed.wait_for(lambda: self.in_use + amount <= self.capacity, wait_seconds):
                raise ServerBusy("The server is decoding other large images; try again in a few seconds.",
                                 retry_after=5)
            self.in_use += amount

    def release(self, amount: int) -> None:
        with self._changed:
            self.in_use -= amount
            self._changed.notify_all()

    def hold(self, decoding: int, working: int, wait_seconds: float) -> Reservation:
        """Reserve ``decoding`` bytes plus ``working`` more, or the whole budget when the sum
        exceeds it (the job then runs alone); 413 only when ``decoding`` alone does not fit."""
        if decoding > self.capacity:
            self.reserve(decoding, wait_seconds)  # raises ImageTooLarge
        amount = min(decoding + working, self.capacity)
        self.reserve(amount, wait_seconds)
        return Reservation(self, amount)


class Reservation:
    """Bytes of a :class:`DecodeBudget` held until :meth:`release` (once; again does nothing)."""

    def __init__(self, budget: DecodeBudget, amount: int) -> None:
        self.budget, self.amount = budget, amount

    def release(self) -> None:
        """Give the bytes back (their pixels are gone)."""
        amount, self.amount = self.amount, 0
        if amount:
            self.budget.release(amount)


_BUDGETS: dict[int, DecodeBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def decode_budget(capacity: int) -> DecodeBudget:
    """This process's budget of ``capacity`` bytes (one per size: tests build several apps)."""
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault(capacity, DecodeBudget(capacity))

