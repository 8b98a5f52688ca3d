"""The console's pages (served, guarded by role, no third-party origins), the alt-text
endpoint it edits with, and the vendored chart library's checksum."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest

from tests.helpers import image_bytes

STATIC = Path(__file__).resolve().parents[2] / "avenue" / "console" / "static"
SCREENS = {"products": {"admin"}, "library": {"editor", "admin"}, "uploads": {"ops", "editor", "admin"},
           "ops": {"ops", "admin"}}


@pytest.mark.parametrize("role", ["ops", "editor", "admin"])
def test_each_role_opens_its_screens_and_only_those(app, auth, role):
    client, _ = auth.login(role)
    for screen, roles in SCREENS.items():
        page = client.get(f"/console/{screen}")
        if role in roles:
            assert page.status_code == 200, screen
            assert f"/console/static/js/{screen}.js" in page.text
        else:
            assert page.status_code == 403 and "cannot open" in page.text, screen
    menu = re.findall(r'<a href="/console/(\w+)"', client.get("/console/uploads").text)
    assert set(menu) == {s for s, roles in SCREENS.items() if role in roles}


def test_anonymous_visitors_are_sent_to_the_login(client):
    assert client.get("/console/ops").headers["Location"] == "/console/login?next=/console/ops"
    assert client.get("/console/").headers["Location"] == "/console/login"
    assert client.get("/console/login").status_code == 200


def test_pages_load_nothing_from_other_origins(app, auth):
    client, _ = auth.login("admin")
    page = client.get("/console/ops")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert not re.search(r'(src|href)="(https?:)?//', page.text)
    for path in STATIC.rglob("*"):
        if path.suffix in {".js", ".css"} and "vendor" not in path.parts:
            # The SVG namespace is a name, not an address: nothing is fetched from it.
            text = path.read_text().replace("'http://www.w3.org/2000/svg'", "")
            assert not re.search(r"https?://|@import|fonts\.", text), path


def test_the_vendored_chart_library_is_the_registry_file():
    manifest = json.loads((STATIC / "vendor" / "VENDOR.json").read_text())
    for package in manifest["packages"]:
        for name, digest in package["files"].items():
            data = (STATIC / "vendor" / package["folder"] / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, name


def test_editors_change_alt_text(app, auth):
    client, csrf = auth.login("editor")
    media = client.post("/api/builder/media", headers=csrf,
                        data={"file": (io.BytesIO(image_bytes("good/progressive.jpg")), "a.jpg")})
    assert media.status_code == 201
    media_id = media.get_json()["id"]
    changed = client.patch(f"/api/builder/media/{media_id}", headers=csrf, json={"alt": "  A red   chair "})
    assert changed.status_code == 200 and changed.get_json()["alt"] == "A red chair"
    assert client.get(f"/api/builder/media/{media_id}").get_json()["alt"] == "A red chair"
    cleared = client.patch(f"/api/builder/media/{media_id}", headers=csrf, json={"alt": ""})
    assert "alt" not in cleared.get_json()
    bad = client.patch(f"/api/builder/media/{media_id}", headers=csrf, json={"alt": 5})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_alt"
    gone = client.patch("/api/builder/media/0123456789abcdef01234567", headers=csrf, json={"alt": "x"})
    assert gone.status_code == 404

