"""One run at a time: a lease document per ops command (``ops_locks``), renewed while it runs.

Two ``gc`` runs at once (a cron job and an operator, two instances' schedulers) would race
over the same garbage; two repairing ``fsck`` runs over the same files. A run takes the lease
``<command>`` for ``LEASE`` and a background thread renews it every ``LEASE / 3`` while the run
lasts, so a long run keeps it and a run that died (SIGKILL, a lost machine) frees it when it
lapses. The lease is a compare-and-set on its expiry, never a read-then-write; a second run
while the lease is held stops at once, naming the holder and when the lease ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Iterator

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from avenue.clock import isoformat, maybe_utc, now
from avenue.errors import Conflict

COLLECTION = "ops_locks"
LEASE = dt.timedelta(minutes=2)


class Held(Conflict):
    """Another run holds the lease."""

    code = "ops_locked"


def _take(db: Database, name: str, holder: dict, moment: dt.datetime) -> bool:
    until = moment + LEASE
    try:
        db[COLLECTION].insert_one({"_id": name, "holder": holder, "until": until})
        return True
    except DuplicateKeyError:
        pass
    current = db[COLLECTION].find_one({"_id": name})
    if current is None or (maybe_utc(current.get("until")) or moment) > moment:
        return False  # held (or released and re-taken between our two reads: try again later)
    taken = db[COLLECTION].update_one({"_id": name, "until": current["until"]},
                                      {"$set": {"holder": holder, "until": until}})
    return taken.modified_count == 1


@contextlib.contextmanager
def exclusive(db: Database, name: str) -> Iterator[dict]:
    """Run the body as the only holder of lease ``name``; :class:`Held` if another run has it."""
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "run": uuid.uuid4().hex,
              "started": now()}
    if not _take(db, name, holder, now()):
        current = db[COLLECTION].find_one({"_id": name}) or {}
        who = current.get("holder") or {}
        raise Held(f"Another {name} run holds the lock: {who.get('host')} pid {who.get('pid')}, started "
                   f"{isoformat(who.get('started'))}; it lapses at {isoformat(current.get('until'))} "
                   "unless renewed.", holder=who)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE.total_seconds() / 3):
            try:
                db[COLLECTION].update_one({"_id": name, "holder.run": holder["run"]},
                                          {"$set": {"until": now() + LEASE}})
            except PyMongoError:
                pass  # the next round tries again; a long outage lets the lease lapse

    renewer = threading.Thread(target=renew, name=f"avenue-{name}-lease", daemon=True)
    renewer.start()
    try:
        yield holder
    finally:
        stop.set()
        renewer.join(timeout=5)
        with contextlib.suppress(PyMongoError):
            db[COLLECTION].delete_one({"_id": name, "holder.run": holder["run"]})
