"""The instance's decode budget: every worker of one server shares one ledger
(avenue/media/ingest/decode_budget.py, ``AVENUE_DECODE_LEDGER_DIR``), so an edit that takes the whole
budget runs alone on the instance, and a worker killed mid-edit leaks nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from avenue.errors import ImageTooLarge, ServerBusy
from avenue.media.ingest.decode_budget import DecodeBudget, SharedDecodeBudget, decode_budget

ROOT = Path(__file__).resolve().parents[2]

# A process of the instance: reserves argv[3] bytes of a budget of argv[2] in the ledger folder
# argv[1], says "held", and gives them back when a line arrives on its stdin.
HOLDER = """
import sys
from pathlib import Path
from avenue.media.ingest.decode_budget import SharedDecodeBudget
budget = SharedDecodeBudget(int(sys.argv[2]), Path(sys.argv[1]))
budget.reserve(int(sys.argv[3]), 10)
print("held", flush=True)
sys.stdin.readline()
budget.release(int(sys.argv[3]))
print("released", flush=True)
"""

# A process of the instance taking turns: argv[3] rounds of reserving argv[4] bytes, each held
# 20 ms; prints the CLOCK_MONOTONIC interval (shared by all processes) it held them in.
TAKER = """
import sys, time
from pathlib import Path
from avenue.media.ingest.decode_budget import SharedDecodeBudget
budget = SharedDecodeBudget(int(sys.argv[2]), Path(sys.argv[1]))
for _ in range(int(sys.argv[3])):
    budget.reserve(int(sys.argv[4]), 30)
    got = time.monotonic()
    seen = budget.in_use
    time.sleep(0.02)
    left = time.monotonic()
    budget.release(int(sys.argv[4]))
    print(got, left, seen, flush=True)
"""


def python(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


class Holder:
    """Another process of the instance holding ``amount`` of the budget until :meth:`release`."""

    def __init__(self, folder: Path, capacity: int, amount: int) -> None:
        self.process = python(HOLDER, folder, capacity, amount)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "held"

    def release(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "released"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)


@pytest.fixture
def holders():
    started: list[Holder] = []
    yield lambda *args: started.append(Holder(*args)) or started[-1]
    for holder in started:
        holder.close()


def test_processes_of_the_instance_never_hold_more_than_the_capacity_together(tmp_path):
    # 4 processes, 6 rounds each of 60 bytes out of 100: no two may ever hold at once.
    takers = [python(TAKER, tmp_path, 100, 6, 60) for _ in range(4)]
    outputs = [taker.communicate(timeout=60)[0] for taker in takers]
    assert all(taker.returncode == 0 for taker in takers)
    held = sorted((float(got), float(left), int(seen)) for out in outputs for got, left, seen in
                  (line.split() for line in out.splitlines()))
    assert len(held) == 24 and {seen for _, _, seen in held} == {60}
    assert all(earlier[1] <= later[0] for earlier, later in zip(held, held[1:], strict=False))
    assert SharedDecodeBudget(100, tmp_path).in_use == 0


def test_a_reservation_another_process_holds_counts_here(tmp_path, holders):
    holder = holders(tmp_path, 100, 80)
    budget = SharedDecodeBudget(100, tmp_path)
    assert budget.in_use == 80
    budget.reserve(20, 0)  # what is left fits
    holder.release()
    assert budget.in_use == 20
    budget.release(20)
    assert budget.in_use == 0


def test_a_reservation_that_finds_no_room_in_time_is_busy_not_stuck(tmp_path, holders):
    holders(tmp_path, 100, 80)
    budget = SharedDecodeBudget(100, tmp_path)
    started = time.monotonic()
    with pytest.raises(ServerBusy) as busy:
        budget.reserve(30, 0.3)
    assert 0.3 <= time.monotonic() - started < 10  # its wait, not the holder's (it never lets go)
    assert busy.value.details["retry_after"] == 5
    assert budget.in_use == 80


def test_an_image_needing_more_than_the_whole_budget_is_a_413_at_once(tmp_path):
    budget = SharedDecodeBudget(100, tmp_path)
    with pytest.raises(ImageTooLarge) as refused:
        budget.hold(101, 0, 10)
    assert refused.value.code == "decode_too_large"
    assert budget.in_use == 0
    reservation = budget.hold(50, 500, 0)  # a job needing more than the budget to work takes it all
    assert reservation.amount == 100 and budget.in_use == 100
    reservation.release()
    reservation.release()  # once only
    assert budget.in_use == 0


def test_a_waiter_gets_its_turn_when_another_process_releases(tmp_path, holders):
    holder = holders(tmp_path, 100, 80)
    budget = SharedDecodeBudget(100, tmp_path)
    got = []
    waiter = threading.Thread(target=lambda: (budget.reserve(50, 20), got.append(time.monotonic())))
    waiter.start()
    time.sleep(0.3)
    assert got == []  # it waits
    released = time.monotonic()
    holder.release()
    waiter.join(30)
    # A poll of the ledger saw it (every 75 ms; 10 s allows for a loaded machine): without
    # one, only the end of its 20 s wait would look again.
    assert got and got[0] - released < 10
    assert budget.in_use == 50


def test_a_waiter_is_woken_by_a_release_in_its_own_process_without_polling(tmp_path):
    budget = SharedDecodeBudget(100, tmp_path)
    budget.poll_seconds = 30.0  # only the in-process Condition can wake it in time
    budget.reserve(80, 0)
    got = []
    waiter = threading.Thread(target=lambda: (budget.reserve(50, 20), got.append(time.monotonic())))
    waiter.start()
    time.sleep(0.2)
    released = time.monotonic()
    budget.release(80)
    waiter.join(30)
    assert got and got[0] - released < 10  # not the end of its 20 s wait (10 s: a loaded machine)
    assert budget.in_use == 50


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_a_killed_processes_reservation_is_purged_by_the_next_one(tmp_path, holders, reaped):
    holder = holders(tmp_path, 100, 80)  # a worker killed mid-edit (gunicorn's timeout, SIGKILL)
    holder.kill()
    if reaped:
        holder.process.wait(10)
    else:  # not yet reaped by its parent: its memory is freed all the same
        deadline = time.monotonic() + 10
        while Path(f"/proc/{holder.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    budget = SharedDecodeBudget(100, tmp_path)
    assert budget.in_use == 0
    budget.reserve(60, 0)
    assert budget.ledger.read_text() == f"{os.getpid()} {budget._identity()[1]} 60\n"


def test_a_reservation_of_a_reused_pid_is_purged(tmp_path):
    # The pid of a process gone long ago, given since to another (here: this one): its start
    # time differs from the entry's, so the entry is someone else's and holds nothing.
    budget = SharedDecodeBudget(100, tmp_path)
    budget.ledger.write_text(f"{os.getpid()} 1 80\n")
    budget.reserve(60, 0)
    assert budget.in_use == 60


def test_the_budget_is_the_instances_when_gunicorn_names_a_ledger_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("AVENUE_DECODE_LEDGER_DIR", raising=False)
    alone = decode_budget(1000 + 3)
    assert type(alone) is DecodeBudget and decode_budget(1000 + 3) is alone
    monkeypatch.setenv("AVENUE_DECODE_LEDGER_DIR", str(tmp_path))
    shared = decode_budget(1000 + 3)
    assert isinstance(shared, SharedDecodeBudget) and shared.ledger.parent == tmp_path
    assert decode_budget(1000 + 3) is shared


def test_an_edits_variants_rendered_after_its_answer_hold_the_instances_budget_until_encoded(
        tmp_path, monkeypatch, app_factory):
    from avenue.media.ingest import variants
    from avenue.media.serve import route
    from avenue.media.store import pending
    from tests.helpers import Auth
    from tests.support.client import uploaded
    from tests.support.fixtures import encoded, scene

    # The edit's own work takes turns in the instance's ledger; the render it leaves for after
    # its answer (the new version's variants, on a thread outside the request) does too, and
    # holds its reservation through its resizes and encodes, not only through its decode.
    monkeypatch.setenv("AVENUE_DECODE_LEDGER_DIR", str(tmp_path))
    capacity = 128 * 2**20 + 29
    app = app_factory(AVENUE_VARIANTS_AFTER_ANSWER=True, AVENUE_DECODE_BUDGET_BYTES=capacity)
    client, headers = app.test_client(), Auth(app).token("editor")
    jobs: list = []
    monkeypatch.setattr(route, "start_after_answer", jobs.extend)  # run below, when chosen
    photo = encoded(scene((2400, 1800), 7), "JPEG", quality=85)
    image = uploaded(client, headers, to="/api/builder/media", data=photo, filename="wide.jpg")
    for job in jobs:
        job()
    jobs.clear()
    answer = client.put(f"/api/builder/media/{image['id']}/edits", json={"rotate": 90}, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    answer.close()  # sent: its render is handed over
    assert len(jobs) == 1
    instance = SharedDecodeBudget(capacity, tmp_path)  # what every worker of the instance reads
    assert instance.in_use == 0

    encoding, let_go = threading.Event(), threading.Event()
    real = variants.encode_image

    def first_held(*args, **kwargs):
        if not encoding.is_set():
            encoding.set()
            let_go.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(variants, "encode_image", first_held)
    after_answer = threading.Thread(target=jobs[0])
    after_answer.start()
    try:
        assert encoding.wait(10)
        held = instance.in_use
    finally:
        let_go.set()
    after_answer.join(10)
    # The edited picture (1800x2400, a JPEG decoded whole for a 1200x1600 gallery): its decode
    # and every canvas its variants are cut and encoded from, in the ledger while it encodes.
    decoded = (1800, 2400)
    assert held == decoded[0] * decoded[1] * 4 + variants.canvases(decoded, decoded)
    assert instance.in_use == 0
    with app.app_context():
        from avenue.db import get_db

        doc = get_db()["builder_media.files"].find_one({"metadata.role": "original"})
    assert pending.pending_of(doc) == []
