"""A request path cannot forge log lines: control characters in it are logged escaped."""

from __future__ import annotations

import logging

FORGED = "[2026-11-22 10:00:00] INFO in auth: admin@avenue.local logged in"


def test_an_unhandled_errors_log_line_escapes_cr_and_lf_from_the_path(app_factory, caplog):
    app = app_factory()

    @app.before_request
    def explode():  # a bug anywhere, on any path (routes' converters refuse CR/LF themselves)
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        response = app.test_client().get(f"/api/explode/x%0d%0a{FORGED}%0a%1b[2J")
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.getMessage().startswith("unhandled error on GET")]
    line = record.getMessage()
    assert not any(ch in line for ch in "\r\n\x1b"), line
    assert "x\\r\\n[2026-11-22" in line and "\\x1b[2J" in line  # escaped, not dropped: still readable
