"""One run at a time: a lease document per ops command (``ops_locks``), renewed while it runs.

Two ``gc`` runs at once (a cron job and an operator, two instances' schedulers) would race
over the same garbage; two repairing ``fsck`` runs over the same files. A run takes the lease
``<command>`` for ``LEASE`` and a background thread renews it every ``LEASE / 3`` while the run
lasts, so a long run keeps it and a run that died (SIGKILL, a lost machine) frees it when it
lapses. The lease is :class:`avenue.leases.Lease` (a conditional update that matches only a
lapsed lease, never a read-then-write); a second run while the lease is held stops at once,
naming the holder and when the lease ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

from pymongo.database import Database

from avenue.clock import isoformat, now
from avenue.db import Document
from avenue.errors import Conflict
from avenue.leases import Lease

COLLECTION = "ops_locks"
LEASE = dt.timedelta(minutes=2)


class Held(Conflict):
    """Another run holds the lease."""

    code = "ops_locked"


@contextlib.contextmanager
def exclusive(db: Database[Document], name: str) -> Iterator[dict[str, Any]]:
    """Run the body as the only holder of lease ``name``; :class:`Held` if another run has it."""
    holder: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "run": uuid.uuid4().hex,
                              "started": now()}
    # The run's id is the owner, kept inside ``holder`` (who holds it, for the message below).
    lease = Lease(db[COLLECTION], name, holder["run"], LEASE.total_seconds(), owner_field="holder.run",
                  record={"holder": holder})
    if not lease.take():
        current = db[COLLECTION].find_one({"_id": name}) or {}
        who = current.get("holder") or {}
        raise Held(f"Another {name} run holds the lock: {who.get('host')} pid {who.get('pid')}, started "
                   f"{isoformat(who.get('started'))}; it lapses at {isoformat(current.get('until'))} "
                   "unless renewed.", holder=who)
    try:
        with lease.kept(LEASE.total_seconds() / 3, f"avenue-{name}-lease"):
            yield holder
    finally:
        lease.release()
