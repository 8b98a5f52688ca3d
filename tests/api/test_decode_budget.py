"""The decode budget: decoded pixels a process holds at once stay within AVENUE_DECODE_BUDGET_BYTES,
whatever the uploads declare (issue 12: a 154 KB PNG declaring 6300x6300 took ~470 MB)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from avenue.errors import ImageTooLarge, ServerBusy
from avenue.media.ingest.decode_budget import DecodeBudget
from avenue.media.ingest.images import Limits, decode_budget, prepare
from tests.helpers import bucket_snapshot
from tests.support.client import upload


def png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (side, side), (10, 20, 30, 255)).save(out, "PNG", compress_level=9)
    return out.getvalue()


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


def test_an_upload_beyond_the_budget_is_a_413_json_and_stores_nothing(app_factory, auth, db_name):
    app = app_factory(AVENUE_DECODE_BUDGET_BYTES=2 * 2**20 + 7)
    headers = type(auth)(app).token("ops")
    with app.app_context():
        from avenue.db import get_db

        before = bucket_snapshot(get_db())
    response = upload(app.test_client(), headers, data=png(1000), filename="big.png")  # 4 MB decoded
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "decode_too_large"
    with app.app_context():
        assert bucket_snapshot(get_db()) == before


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
