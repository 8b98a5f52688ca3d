"""store/versions.py: a comparison's heat map made once, kept among the renditions, never served as one."""

from __future__ import annotations

import io

from PIL import Image as PILImage

from avenue.media.buckets import RENDITIONS
from tests.helpers import library_upload
from tests.support.versions import MEDIA, changed, replace, versions


def test_comparing_two_versions_gives_a_heat_map_and_the_share_changed_made_once(client, db, editor):
    media = library_upload(client, editor)
    first = versions(client, editor, media["id"])[0]["id"]
    focal = changed(client, editor, "PUT", f"{MEDIA}/{media['id']}/focal-point", {"x": 0.2, "y": 0.2})
    second = replace(client, editor, media["id"])
    answer = client.get(f"{MEDIA}/{media['id']}/versions/{first}/compare/{second['version']}", headers=editor)
    assert answer.status_code == 200, answer.get_json()
    compared = answer.get_json()
    assert compared["before"] == first and compared["after"] == second["version"]
    assert 0.05 < compared["changed_share"] <= 1
    assert max(compared["width"], compared["height"]) <= 512
    heat = client.get(compared["heat_map_url"], headers=editor)
    assert heat.status_code == 200 and heat.mimetype == "image/png"
    assert PILImage.open(io.BytesIO(heat.data)).size == (compared["width"], compared["height"])
    stored = db[f"{RENDITIONS}.files"].count_documents({"metadata.spec": {"$regex": "^diff_"}})
    assert stored == 1
    assert client.get(compared["heat_map_url"], headers=editor).data == heat.data
    # Stored beside the renditions, but never served as one: no media URL names it.
    spec = f"/media/builder/{media['id']}~{second['version']}/diff_{first}_{second['version']}.png"
    assert client.get(spec).status_code in (400, 403, 404)
    assert client.get(spec.replace(f"diff_{first}_", "version_").replace(".png", ".webp")).status_code in (
        400, 403, 404)
    assert db[f"{RENDITIONS}.files"].count_documents({"metadata.spec": {"$regex": "^diff_"}}) == 1
    # A new focal point is the same picture: nothing changed.
    same = client.get(f"{MEDIA}/{media['id']}/versions/{first}/compare/{focal['version']}",
                      headers=editor).get_json()
    assert same["changed_share"] == 0
    # The next change of the image takes the cached heat maps away with its other renditions.
    changed(client, editor, "PUT", f"{MEDIA}/{media['id']}/focal-point", {"x": 0.6, "y": 0.6})
    assert db[f"{RENDITIONS}.files"].count_documents({"metadata.spec": {"$regex": "^diff_"}}) == 0
