"""Every /api/ endpoint and the roles that may call it. New endpoints must join the table.

For each row, each caller is tried with an API token (anonymous: none): callers outside the
allowed set must get 401 (anonymous) or 403 (wrong role); allowed callers must get neither.
Placeholder ids point at nothing, so allowed callers may see 400/404/409/415/422 here: the
point is who gets past the door.
"""

from __future__ import annotations

import re

import pytest

ANYONE = frozenset({"anonymous", "ops", "editor", "admin"})
LOGGED_IN = frozenset({"ops", "editor", "admin"})
ADMIN = frozenset({"admin"})
ADMIN_OPS = frozenset({"admin", "ops"})
EDITORS = frozenset({"editor", "admin"})
# An upload link's secret, not an account, opens these: every account is refused (403), and
# anonymous callers without a link 401 (the link's own checks: tests/api/test_upload_links.py).
LINK_HOLDERS: frozenset = frozenset()

ID = "0123456789abcdef01234567"

# (method, path, allowed callers)
TABLE: list[tuple[str, str, frozenset]] = [
    # --- health ---
    ("GET", "/healthz", ANYONE),
    ("GET", "/readyz", ANYONE),
    # --- observability (the Prometheus scrape; tokens here, AVENUE_METRICS_ALLOW in test_metrics) ---
    ("GET", "/metrics", ADMIN_OPS),
    ("GET", "/api/openapi.json", ANYONE),
    # --- auth ---
    ("POST", "/api/auth/login", ANYONE),
    ("POST", "/api/auth/logout", LOGGED_IN),
    ("GET", "/api/auth/me", LOGGED_IN),
    ("GET", "/api/auth/csrf", ANYONE),
    # --- admin ---
    ("GET", "/api/admin/audit", ADMIN),
    ("GET", "/api/admin/history", ADMIN_OPS),
    ("GET", "/api/admin/alerts", ADMIN_OPS),
    ("GET", "/api/admin/deliveries/top", ADMIN_OPS),
    ("GET", f"/api/admin/deliveries/images/alias-x/{ID}", ADMIN_OPS),
    ("GET", "/api/admin/deliveries/never-served", ADMIN_OPS),
    ("GET", "/api/admin/cleanup", ADMIN_OPS),
    ("POST", f"/api/admin/alerts/{ID}/ack", ADMIN_OPS),
    ("GET", "/api/admin/rerender", ADMIN_OPS),
    ("POST", "/api/admin/rerender", ADMIN),
    # --- shop ---
    ("GET", "/api/shop/products", ANYONE),
    ("POST", "/api/shop/products", ADMIN),
    ("GET", "/api/shop/products/sku-x", ANYONE),
    ("PATCH", "/api/shop/products/sku-x", ADMIN),
    ("DELETE", "/api/shop/products/sku-x", ADMIN),
    ("POST", "/api/shop/temp-images", ADMIN),
    ("POST", "/api/shop/import-zip", ADMIN),
    ("POST", "/api/shop/import-urls", ADMIN),
    ("POST", "/api/shop/products/sku-x/images/import-url", ADMIN),
    ("POST", "/api/shop/products/sku-x/images", ADMIN),
    ("DELETE", f"/api/shop/products/sku-x/images/{ID}", ADMIN),
    ("PUT", f"/api/shop/products/sku-x/images/{ID}", ADMIN),
    ("GET", f"/api/shop/products/sku-x/images/{ID}/near-duplicates", ADMIN),
    ("PUT", f"/api/shop/products/sku-x/images/{ID}/focal-point", ADMIN),
    ("PUT", f"/api/shop/products/sku-x/images/{ID}/edits", ADMIN),
    ("DELETE", f"/api/shop/products/sku-x/images/{ID}/edits", ADMIN),
    ("PUT", f"/api/shop/products/sku-x/images/{ID}/crops/name-x", ADMIN),
    ("DELETE", f"/api/shop/products/sku-x/images/{ID}/crops/name-x", ADMIN),
    ("GET", f"/api/shop/products/sku-x/images/{ID}/versions", ADMIN),
    ("POST", f"/api/shop/products/sku-x/images/{ID}/versions/name-x/restore", ADMIN),
    ("GET", f"/api/shop/products/sku-x/images/{ID}/versions/name-x/preview", ADMIN),
    ("GET", f"/api/shop/products/sku-x/images/{ID}/versions/name-x/compare/name-x", ADMIN),
    ("GET", f"/api/shop/products/sku-x/images/{ID}/versions/name-x/compare/name-x/heat-map", ADMIN),
    ("PUT", "/api/shop/products/sku-x/images/order", ADMIN),
    ("PUT", f"/api/shop/products/sku-x/images/{ID}/name", ADMIN),
    ("GET", "/api/shop/products/sku-x/alt-text", ADMIN),
    ("POST", "/api/shop/products/sku-x/alt-text", ADMIN),
    ("GET", "/api/shop/debug/products-status", ADMIN_OPS),
    ("GET", "/api/shop/debug/storage-status", ADMIN_OPS),
    # --- builder ---
    ("POST", "/api/builder/media", EDITORS),
    ("POST", "/api/builder/import-zip", EDITORS),
    ("POST", "/api/builder/media/import-url", EDITORS),
    ("GET", "/api/builder/media", EDITORS),
    ("GET", "/api/builder/media/near-duplicates", EDITORS),
    ("GET", "/api/builder/media/duplicates", EDITORS),
    ("POST", "/api/builder/media/merge", EDITORS),
    ("POST", "/api/builder/media/bulk", EDITORS),
    ("GET", f"/api/builder/media/{ID}", EDITORS),
    ("GET", f"/api/builder/media/{ID}/deliveries", EDITORS),
    ("PATCH", f"/api/builder/media/{ID}", EDITORS),
    ("DELETE", f"/api/builder/media/{ID}", EDITORS),
    ("PUT", f"/api/builder/media/{ID}", EDITORS),
    ("PUT", f"/api/builder/media/{ID}/focal-point", EDITORS),
    ("PUT", f"/api/builder/media/{ID}/name", EDITORS),
    ("PUT", f"/api/builder/media/{ID}/edits", EDITORS),
    ("DELETE", f"/api/builder/media/{ID}/edits", EDITORS),
    ("GET", f"/api/builder/media/{ID}/versions", EDITORS),
    ("POST", f"/api/builder/media/{ID}/versions/name-x/restore", EDITORS),
    ("GET", f"/api/builder/media/{ID}/versions/name-x/preview", EDITORS),
    ("GET", f"/api/builder/media/{ID}/versions/name-x/compare/name-x", EDITORS),
    ("GET", f"/api/builder/media/{ID}/versions/name-x/compare/name-x/heat-map", EDITORS),
    ("PUT", f"/api/builder/media/{ID}/crops/name-x", EDITORS),
    ("DELETE", f"/api/builder/media/{ID}/crops/name-x", EDITORS),
    ("GET", "/api/builder/folders", EDITORS),
    ("GET", "/api/builder/tags", EDITORS),
    ("GET", "/api/builder/pages/slug-x", ANYONE),
    ("PUT", "/api/builder/pages/slug-x", EDITORS),
    ("GET", "/api/builder/pages/slug-x/alt-text", EDITORS),
    ("POST", "/api/builder/pages/slug-x/alt-text", EDITORS),
    # --- trash (editors: the library's; admins: everything) ---
    ("GET", "/api/trash", EDITORS),
    ("GET", f"/api/trash/{ID}", EDITORS),
    ("POST", f"/api/trash/{ID}/restore", EDITORS),
    ("DELETE", f"/api/trash/{ID}", EDITORS),
    # --- uploads ---
    ("POST", "/api/uploads", LOGGED_IN),
    ("GET", "/api/uploads", LOGGED_IN),
    ("GET", f"/api/uploads/{ID}", LOGGED_IN),
    ("DELETE", f"/api/uploads/{ID}", LOGGED_IN),
    ("PUT", f"/api/uploads/{ID}", LOGGED_IN),
    ("PUT", f"/api/uploads/{ID}/focal-point", LOGGED_IN),
    ("PUT", f"/api/uploads/{ID}/edits", LOGGED_IN),
    ("DELETE", f"/api/uploads/{ID}/edits", LOGGED_IN),
    ("GET", f"/api/uploads/{ID}/versions", LOGGED_IN),
    ("POST", f"/api/uploads/{ID}/versions/name-x/restore", LOGGED_IN),
    ("GET", f"/api/uploads/{ID}/versions/name-x/preview", LOGGED_IN),
    ("GET", f"/api/uploads/{ID}/versions/name-x/compare/name-x", LOGGED_IN),
    ("GET", f"/api/uploads/{ID}/versions/name-x/compare/name-x/heat-map", LOGGED_IN),
    ("PUT", f"/api/uploads/{ID}/crops/name-x", LOGGED_IN),
    ("DELETE", f"/api/uploads/{ID}/crops/name-x", LOGGED_IN),
    # --- resumable uploads (tus): the door is a login; each target's own roles: tests/api/test_tus.py ---
    ("POST", "/api/tus", LOGGED_IN),
    ("GET", f"/api/tus/{ID}", LOGGED_IN),
    ("PATCH", f"/api/tus/{ID}", LOGGED_IN),
    ("DELETE", f"/api/tus/{ID}", LOGGED_IN),
    ("POST", f"/api/tus/{ID}", LOGGED_IN),
    # --- one-time upload links: created, listed, revoked by editors; used by their holders ---
    ("POST", "/api/upload-links", EDITORS),
    ("GET", "/api/upload-links", EDITORS),
    ("DELETE", f"/api/upload-links/{ID}", EDITORS),
    ("POST", "/api/upload-links/files", LINK_HOLDERS),
    ("POST", "/api/upload-links/tus", LINK_HOLDERS),
    ("GET", f"/api/upload-links/tus/{ID}", LINK_HOLDERS),
    ("PATCH", f"/api/upload-links/tus/{ID}", LINK_HOLDERS),
]

CALLERS = ["anonymous", "ops", "editor", "admin"]


def _rule_key(rule) -> set[tuple[str, str]]:
    path = re.sub(r"<[^>]+>", "{}", rule.rule)  # every argument, whatever its converter
    return {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}


def _row_key(method: str, path: str) -> tuple[str, str]:
    placeholders = {ID, "sku-x", "slug-x", "alias-x", "name-x"}
    parts = ["{}" if part in placeholders else part for part in path.split("/")]
    return method, "/".join(parts)


def test_every_api_endpoint_is_in_the_table(app):
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule in {"/healthz", "/readyz", "/metrics"}:
            routed |= _rule_key(rule)
    listed = {_row_key(method, path) for method, path, _ in TABLE}
    assert routed - listed == set(), "endpoints missing from the access table"
    assert listed - routed == set(), "table rows for endpoints that do not exist"


@pytest.mark.parametrize(("method", "path", "allowed"), TABLE, ids=[f"{m} {p}" for m, p, _ in TABLE])
def test_each_role_is_let_in_or_refused(app, auth, method, path, allowed):
    headers = {caller: auth.token(caller) for caller in CALLERS if caller != "anonymous"}
    headers["anonymous"] = {}
    client = app.test_client()
    for caller in CALLERS:
        response = client.open(path, method=method, headers=headers[caller], json={})
        status = response.status_code
        if caller in allowed:
            assert status not in (401, 403), f"{caller} refused ({status}) on {method} {path}"
        elif caller == "anonymous":
            assert status == 401, f"anonymous got {status} on {method} {path}"
        else:
            assert status == 403, f"{caller} got {status} on {method} {path}"
        if path.startswith("/api/") and status != 204:
            assert response.is_json, f"{method} {path} answered {response.mimetype} to {caller}"
