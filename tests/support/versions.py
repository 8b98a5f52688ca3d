"""The versions API as the tests of versions drive it: list, restore, replace, change, read back."""

from __future__ import annotations

from hashlib import sha256

from tests.helpers import form

PHOTO, OTHER = "good/progressive.jpg", "good/grayscale.jpg"
MEDIA = "/api/builder/media"


def versions(client, headers, media_id: str) -> list[dict]:
    answer = client.get(f"{MEDIA}/{media_id}/versions", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["items"]


def restore(client, headers, media_id: str, version_id: str):
    return client.post(f"{MEDIA}/{media_id}/versions/{version_id}/restore", headers=headers)


def replace(client, headers, media_id: str, name: str = OTHER) -> dict:
    answer = client.put(f"{MEDIA}/{media_id}", data=form(name), headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def changed(client, headers, method: str, path: str, body: dict | None = None) -> dict:
    answer = client.open(path, method=method, json=body, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def sha_of(client, url: str) -> str:
    answer = client.get(url, follow_redirects=True)
    assert answer.status_code == 200, url
    return sha256(answer.data).hexdigest()
