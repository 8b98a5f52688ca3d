"""The decode budget: decoded pixels a process holds at once stay within AVENUE_DECODE_BUDGET_BYTES,
whatever the uploads declare (issue 12: a 154 KB PNG declaring 6300x6300 took ~470 MB). The
budget itself, its ledger and what holds it are tested beside it
(tests/media/ingest/test_decode_budget.py)."""

from __future__ import annotations

from tests.helpers import bucket_snapshot
from tests.support.client import upload
from tests.support.fixtures import solid_png as png


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
