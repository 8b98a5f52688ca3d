"""rerender, the ops side: one run at a time (the ops lock), the API's 409 while it is held,
the ops dashboard's card (the job itself: tests/media/upkeep/test_stale.py)."""

from __future__ import annotations

import pytest

from avenue.ops import rerender as job
from avenue.ops.lock import Held, exclusive


def test_one_run_at_a_time(db, runner):
    with exclusive(db, "rerender"):
        with pytest.raises(Held):
            job.run(db)
        result = runner.invoke(args=["rerender"])
    assert result.exit_code == 1 and "Another rerender run holds the lock" in result.output
    assert job.run(db).images_checked == 0  # free again once the holder is done


def test_the_api_answers_409_while_another_run_holds_the_lock(client, db, admin):
    with exclusive(db, "rerender"):
        answer = client.post("/api/admin/rerender", json={}, headers=admin)
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "ops_locked"
    assert client.get("/api/admin/rerender", headers=admin).get_json() == {"run": None}


def test_the_ops_dashboard_has_the_card_and_only_admins_the_button(auth):
    admin_client, _ = auth.login("admin")
    page = admin_client.get("/console/ops")
    assert page.status_code == 200
    assert 'id="rerender-stale"' in page.text and 'id="rerender-start"' in page.text
    assert "js/rerender.js" in page.text
    with admin_client.get("/console/static/js/rerender.js") as script:
        assert script.status_code == 200 and b"/api/admin/rerender" in script.data
    ops_client, _ = auth.login("ops")
    page = ops_client.get("/console/ops")
    assert page.status_code == 200
    assert 'id="rerender-stale"' in page.text and 'id="rerender-start"' not in page.text
