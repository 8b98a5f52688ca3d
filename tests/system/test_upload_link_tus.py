"""An upload link used by a real tus client (tuspy) against the Procfile's process: the holder
has the link's secret and nothing else, uploads in chunks across the two workers, and the
image lands in the link's target; a single-use link then refuses a second file."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from tests.support.fixtures import noise_jpeg
from tests.support.launcher import LOOPBACK

CHUNK = 256 * 1024


@pytest.mark.slow
def test_a_tus_client_holding_only_a_link_uploads_into_the_links_folder_once(gunicorn_server):
    server = gunicorn_server  # two workers, as the Procfile runs
    editor = server.token("editor")
    folder = f"/links-{uuid.uuid4().hex[:6]}"
    wanted = {"target": {"kind": "builder", "folder": folder}, "label": "tuspy"}
    status, body = server.request("POST", "/api/upload-links", body=json.dumps(wanted).encode(),
                                  headers={**editor, "Content-Type": "application/json"})
    assert status == 201, body
    created = json.loads(body)
    holder = {"Authorization": f"UploadLink {created['secret']}"}
    assert created["tus_url"] == f"http://{LOOPBACK}:{server.port}/api/upload-links/tus"

    photo = noise_jpeg(1400, 1000)
    assert len(photo) > 3 * CHUNK  # several PATCHes, spread over the workers
    tus = tus_client.TusClient(created["tus_url"], headers=holder)
    uploader = tus.uploader(file_stream=io.BytesIO(photo), chunk_size=CHUNK,
                            metadata={"filename": "phone.jpg"})
    uploader.upload()
    assert uploader.offset == len(photo)
    image_id = uploader.request.response_headers["avenue-image-id"]
    # The upload's URL answers the holder's GET with what it became, as /api/tus its owner's.
    status, body = server.request("GET", uploader.url.split(f":{server.port}", 1)[1], headers=holder)
    state = json.loads(body)
    assert status == 200 and (state["state"], state["image"]["id"]) == ("done", image_id)

    status, body = server.request("GET", f"/api/builder/media/{image_id}", headers=editor)
    media = json.loads(body)
    assert status == 200 and media["folder"] == folder and media["filename"] == "phone.jpg"
    status, body = server.request("GET", "/api/upload-links", headers=editor)
    listed = json.loads(body)["items"][0]
    assert (listed["uses"], listed["state"]) == (1, "used_up")

    again = tus.uploader(file_stream=io.BytesIO(noise_jpeg(300, 200)), chunk_size=CHUNK)
    with pytest.raises(TusCommunicationError) as refused:
        again.upload()
    assert refused.value.status_code == 410
    # The secret is no account: the holder cannot list the library it just uploaded into.
    status, _ = server.request("GET", "/api/builder/media", headers=holder)
    assert status == 401
