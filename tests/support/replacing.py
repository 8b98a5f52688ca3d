"""A library image replaced through the API, and a URL's body read back: for the tests of replace."""

from __future__ import annotations

from tests.helpers import form

OTHER = "good/grayscale.jpg"


def replace_media(client, headers, media_id: str, name=OTHER):
    return client.put(f"/api/builder/media/{media_id}", data=form(name), headers=headers)


def body_of(client, url: str) -> bytes:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    return answer.data


