"""The decode budget (avenue/media/ingest/decode_budget.py): decoded pixels a process holds at
once stay within AVENUE_DECODE_BUDGET_BYTES, whatever the uploads declare (issue 12: a 154 KB PNG
declaring 6300x6300 took ~470 MB); every worker of one server shares one ledger
(``AVENUE_DECODE_LEDGER_DIR``), so an edit that takes the whole budget runs alone on the instance,
and a worker killed mid-edit leaks nothing."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from avenue.errors import ImageTooLarge, ServerBusy
from avenue.media.ingest.decode_budget import DecodeBudget, SharedDecodeBudget, decode_budget
from avenue.media.ingest.images import Limits, prepare
from tests.support import records
from tests.support.client import upload
from tests.support.fixtures import solid_png as png


def test_an_image_needing_more_than_the_whole_budget_is_a_413():
    with pytest.raises(ImageTooLarge) as refused:
        DecodeBudget(100).reserve(101, 1.0)
    assert refused.value.code == "decode_too_large"


def test_reservations_never_exceed_the_budget_and_all_get_their_turn():
    budget = DecodeBudget(100)
    highest = []
    done = []

    def work() -> None:
        budget.reserve(60, 5.0)
        highest.append(budget.in_use)
        time.sleep(0.05)
        budget.release(60)
        done.append(True)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(done) == 6 and max(highest) == 60 and budget.in_use == 0


def test_a_reservation_that_cannot_get_room_in_time_is_busy_not_stuck():
    budget = DecodeBudget(100)
    budget.reserve(80, 1.0)
    started = time.monotonic()
    with pytest.raises(ServerBusy) as busy:
        budget.reserve(30, 0.2)
    assert time.monotonic() - started < 2
    assert busy.value.details["retry_after"] == 5
    budget.release(80)
    budget.reserve(30, 0.2)  # room again


def test_prepare_gives_the_reservation_back_when_decoding_fails():
    limits = Limits(decode_budget_bytes=50 * 2**20 + 1)
    broken = png(500)[:-40]  # truncated: decoding fails after the reservation
    with pytest.raises(Exception):  # noqa: B017 - CorruptImage, whatever the decoder says
        prepare(broken, limits)
    assert decode_budget(limits.decode_budget_bytes).in_use == 0
    prepare(png(500), limits)
    assert decode_budget(limits.decode_budget_bytes).in_use == 0


def test_a_jpeg_is_counted_at_its_draft_size_not_its_declared_one():
    out = io.BytesIO()
    Image.new("RGB", (6000, 4000), (200, 10, 10)).save(out, "JPEG", quality=50)
    # 24 MP would need 96 MB; decoded at the draft scale (1/2 here) it needs 24 MB.
    prepare(out.getvalue(), Limits(decode_budget_bytes=32 * 2**20))


def test_a_progressive_jpeg_reserves_its_coefficients_as_well_as_its_canvas():
    from avenue.media.ingest.images import scan_buffer

    # libjpeg keeps every coefficient of a progressive JPEG (2 bytes each, at full size) to
    # decode it, at any scale; a baseline one is decoded in strips.
    picture = Image.new("RGB", (1000, 1000), (200, 10, 10))
    baseline, progressive = io.BytesIO(), io.BytesIO()
    picture.save(baseline, "JPEG", quality=90)
    picture.save(progressive, "JPEG", quality=90, progressive=True)  # 4:2:0
    assert scan_buffer(Image.open(baseline)) == 0
    luma, chroma = 125 * 125 * 64 * 2, 63 * 63 * 64 * 2  # 8x8 blocks; chroma at half size
    assert scan_buffer(Image.open(progressive)) == luma + 2 * chroma
    capacity = 16 * 2**20 + 29
    budget = decode_budget(capacity)
    budget.reserve(capacity - 5 * 2**20, 1.0)  # 5 MiB left: the 4 MB canvas fits, not with 2.9 MiB more
    try:
        limits = Limits(decode_budget_bytes=capacity, decode_wait_seconds=0)
        prepare(baseline.getvalue(), limits)
        with pytest.raises(ServerBusy):
            prepare(progressive.getvalue(), limits)
    finally:
        budget.release(capacity - 5 * 2**20)
    prepare(progressive.getvalue(), limits)
    assert budget.in_use == 0
    # Coefficients beyond the whole budget take all of it (the decode runs alone), no 413.
    prepare(progressive.getvalue(), Limits(decode_budget_bytes=4_000_000 + 31))


def test_an_upload_that_waits_too_long_for_room_is_a_503_with_retry_after(app_factory, auth):
    capacity = 8 * 2**20 + 13
    app = app_factory(AVENUE_DECODE_BUDGET_BYTES=capacity, AVENUE_DECODE_WAIT_SECONDS=0)
    headers = type(auth)(app).token("ops")
    budget = decode_budget(capacity)
    budget.reserve(capacity - 2**20, 1.0)  # another request is decoding
    try:
        response = upload(app.test_client(), headers, data=png(1000), filename="big.png")
    finally:
        budget.release(capacity - 2**20)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "busy"
    assert response.headers["Retry-After"] == "5"
    assert upload(app.test_client(), headers, data=png(1000), filename="big.png").status_code == 201


# --- the pixels after the decode: edits' canvases, renditions' resize and encode -------------


def first_encode_held(monkeypatch, module):
    """Make the first ``encode_image`` of ``module`` wait until let go: (encoding, let_go)."""
    encoding, let_go = threading.Event(), threading.Event()
    real = module.encode_image
    calls = []

    def held(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            encoding.set()
            let_go.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "encode_image", held)
    return encoding, let_go


def test_an_edit_holds_the_budget_until_its_picture_is_encoded_so_a_second_waits_or_is_busy(monkeypatch):
    from avenue.media.ingest import edits as editing

    # One edit of a 1000x1000 RGBA picture (8 MB decoding, 8 MB of turned canvases), not two.
    capacity = 20 * 2**20 + 17
    data, turn = png(1000), editing.parse_edits({"rotate": 90})
    encoding, let_go = first_encode_held(monkeypatch, editing)
    done = []

    def edit(wait: float) -> None:
        done.append(editing.apply(data, turn, Limits.for_stored(len(data), capacity, wait)))

    first = threading.Thread(target=edit, args=(5,))
    first.start()
    try:
        assert encoding.wait(10)
        budget = decode_budget(capacity)
        assert budget.in_use > 8 * 2**20  # its canvases count, not its decode alone
        with pytest.raises(ServerBusy):
            edit(0.2)
        second = threading.Thread(target=edit, args=(10,))  # this one waits its turn
        second.start()
        time.sleep(0.2)
        assert len(done) == 0
    finally:
        let_go.set()
    first.join()
    second.join()
    assert len(done) == 2 and budget.in_use == 0


def test_an_edit_reserves_for_its_crop_not_for_the_whole_picture_turned(monkeypatch):
    from avenue.media.ingest import edits as editing

    # The crop is cut before the turn and the frame let go (avenue/media/ingest/edits.py), so
    # what the edit holds beside its decode is the crop's pixels twice, not the frame's twice.
    capacity = 64 * 2**20 + 23
    data = png(1000)  # RGBA: decoded 4 MB, and 4 MB more for the decode's copy
    quarter = editing.parse_edits({"rotate": 90, "crop": {"x": 0.5, "y": 0, "width": 0.5, "height": 0.5}})
    encoding, let_go = first_encode_held(monkeypatch, editing)
    limits = Limits.for_stored(len(data), capacity, 5)
    edit = threading.Thread(target=editing.apply, args=(data, quarter, limits))
    edit.start()
    try:
        assert encoding.wait(10)
        held = decode_budget(capacity).in_use
    finally:
        let_go.set()
    edit.join()
    assert held == 2 * 1000 * 1000 * 4 + 2 * 500 * 500 * 4
    assert decode_budget(capacity).in_use == 0


def test_a_rendition_holds_the_budget_through_its_resize_and_encode(monkeypatch):
    from avenue.media.ingest import render as rendering
    from avenue.media.ingest.focal import CENTRE
    from avenue.media.transform import parse

    capacity = 20 * 2**20 + 19
    data, spec = png(1000), parse("w_1000,h_1000,fit_cover").spec
    encoding, let_go = first_encode_held(monkeypatch, rendering)
    done = []

    def render(wait: float) -> None:
        limits = Limits.for_stored(len(data), capacity, wait)
        done.append(rendering.render_spec(data, limits, spec, "webp", CENTRE))

    first = threading.Thread(target=render, args=(5,))
    first.start()
    try:
        assert encoding.wait(10)
        assert decode_budget(capacity).in_use > 8 * 2**20
        with pytest.raises(ServerBusy):
            render(0.2)
    finally:
        let_go.set()
    first.join()
    assert len(done) == 1 and decode_budget(capacity).in_use == 0


def test_an_edit_and_the_answer_it_decodes_reserve_in_the_apps_budget(app_factory, auth, monkeypatch):
    # An edit's new picture is decoded once more before the answer (its thumb, focal point and
    # placeholder): in the budget the app is configured with, the one the edit itself and the
    # variants after the answer take turns in. A budget of another size is another ledger
    # (under gunicorn, another file): the answer's decode of a 40 MP picture in the default
    # budget ran beside another worker's edit holding the app's.
    from avenue.media.ingest import images

    capacity = 24 * 2**20 + 23
    app = app_factory(AVENUE_DECODE_BUDGET_BYTES=capacity)
    headers = type(auth)(app).token("editor")
    client = app.test_client()
    created = upload(client, headers, data=png(600), filename="turn.png")
    assert created.status_code == 201
    asked: list[int] = []
    real = images.decode_budget

    def recorded(size: int):
        asked.append(size)
        return real(size)

    monkeypatch.setattr(images, "decode_budget", recorded)
    response = client.put(f"/api/uploads/{created.get_json()['id']}/edits", json={"rotate": 90},
                          headers=headers)
    assert response.status_code == 200, response.get_json()
    assert len(asked) >= 2  # the edit's canvases, then its answer's decode
    assert set(asked) == {capacity}


# --- the instance's ledger, shared by the processes of one server -------------------------

ROOT = Path(__file__).resolve().parents[3]

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

        doc = records.images(get_db(), "builder_media").find_one(records.IMAGE)
    assert pending.pending_of(doc) == []
