"""The database commands an upload and a cold rendition send, counted on the wire (issue 63:
"fewer, never more"). Each ceiling is the count the code sends today: a change that adds a
round trip to either path fails here and has to say why in the ceiling's comment.

Counted with a pymongo command listener on the app's own client (``MONGO_CLIENT_CLASS``),
the third of three of each, so that what only the first pays (the indexes, the limits'
windows opened, the worker's first deletion poll) is not counted. Deletion polls are kept
out by a long ``AVENUE_DELETIONS_POLL_MS``: they are the cache's, one per interval, not the
request's. bench/cold_commands.py prints the same count by command and collection.
"""

from __future__ import annotations

import collections
import io
import os

import pymongo
import pytest
from PIL import Image

from avenue.dialect import dialect_of
from tests.helpers import Auth, listening, make_app
from tests.support.client import upload
from tests.support.commands import Matching, namespaces, on_database

# Sent by the driver for itself (handshakes, sessions), not by the app.
DRIVER = {"hello", "ismaster", "isMaster", "endSessions", "ping", "saslStart", "saslContinue"}

#: A cold rendition on request, an unsigned preset counted against the limits of cold renders,
#: on a worker that has never read the image: the image's record, the rendition's
#: files document (not stored), the limits' one update (address and instance) with the claim's
#: insert after it in one command, the original's chunks, and the rendition's store: its
#: chunks, its files document and the renditions' counters in one command (two bulkWrites:
#: five commands before; still those five where the dialect sends each collection's writes
#: alone, ACROSS_COLLECTIONS).
COLD_RENDITION = 5
#: What a cold rendition sends more where the database takes one collection's writes per
#: command (a mongod before 8.0: Dialect.cross_collection_writes).
ACROSS_COLLECTIONS = 3
#: One upload to /api/uploads of a JPEG unlike the others (no look-alike, no copy), before its
#: answer (AVENUE_VARIANTS_AFTER_ANSWER on, as the Procfile's server runs), its look-alike
#: lookup left out (:func:`beside`): the token and its user, the upload limit's window, two
#: finds of the bucket's records (the same bytes by key, the same pixels) and one of the trash
#: (the same bytes deleted), one of the records by the prepared bytes' SHA-256 (the same
#: bytes in another scope, whose file it would share), the bytes' chunks and files document,
#: the image's record (the last two one more each than before the records had a collection
#: of their own, issue 75), the bucket's counters, the hour's upload count, the audit entry.
UPLOAD_ANSWER = 13
#: ... and in all, once its variants (a claim taken and left, the chunks read once, their
#: chunks and files, the record pointed at them, the counters) and its look-alike and
#: exact-copy checks are done after the answer.
UPLOAD = 26
#: Three uploads (the third counted) of pictures made here from random bytes: no twin and no
#: look-alike of anything on the database (a pooled one: another test's images may be there),
#: whose checks would write more.
PHOTOS = 3


def unlike_anything() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (96, 64), os.urandom(96 * 64 * 3)).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def counted(backend, db_name):
    if backend[0] is not pymongo.MongoClient:
        pytest.skip("command monitoring needs the wire protocol")
    commands = Matching(lambda event: on_database(event, db_name) and event.command_name not in DRIVER)
    apps = []

    def app():  # a worker of its own (its own client and cache), on the one database
        apps.append(make_app((listening(commands), backend[1]), db_name, RATELIMIT_ENABLED=True,
                             AVENUE_VARIANTS_AFTER_ANSWER=True,
                             # One window for the whole test, opened by the first upload: a
                             # minute's could end between two uploads under load (a window
                             # opened again costs two more commands).
                             AVENUE_UPLOAD_RATE_LIMIT="10000/hour",
                             AVENUE_DELETIONS_POLL_MS=600_000,
                             AVENUE_RENDITION_PRESETS="fit512=w_512,h_512,q_80"))
        return apps[-1]
    try:
        yield app, commands
    finally:
        for made in apps:
            client = made.extensions["avenue.mongo"].client
            client.drop_database(db_name)
            client.close()


def beside(command: dict) -> bool:
    """One of the commands of an upload's look-alike lookup (its query on the hash's bands,
    the unset of its grouping owed), which runs beside the request and ends before or after the
    answer as it happens (avenue/media/store/near_duplicates.py): counted in the upload's total only."""
    text = str(command.get("filter") or command.get("updates") or "")
    return "metadata.phash_bands" in text or "metadata.near_pending" in text


def listing(commands: list[dict]) -> collections.Counter[str]:
    """Each command as its name and collection (a bulkWrite's: every collection it writes)."""
    def named(command: dict) -> str:
        name, target = next(iter(command.items()))
        return f"{name} {'+'.join(dict.fromkeys(namespaces(command))) if name == 'bulkWrite' else target}"

    return collections.Counter(named(command) for command in commands)


def settled(commands: Matching) -> collections.Counter[str]:
    """What was sent once the work after the answer is done (its lane drained)."""
    from avenue.media.wiring import Route

    assert Route.finish_after_answer(60)
    return listing(commands.commands)


def test_an_upload_and_a_cold_rendition_send_no_more_commands_than_they_did(counted):
    new_app, commands = counted
    app = new_app()
    headers = Auth(app).token("editor")
    client = app.test_client()
    answered: list[collections.Counter[str]] = []
    sent: list[collections.Counter[str]] = []
    ids = []
    for n in range(PHOTOS):
        del commands.commands[:]
        answer = upload(client, headers, data=unlike_anything(), filename=f"p{n}.jpg", visibility="public")
        assert answer.status_code == 201, answer.get_json()
        ids.append(answer.get_json()["id"])
        answered.append(listing([command for command in commands.commands if not beside(command)]))
        answer.close()  # the server's close: the variants are rendered now, after the answer
        sent.append(settled(commands))
    assert sum(answered[-1].values()) <= UPLOAD_ANSWER, answered[-1]
    assert sum(sent[-1].values()) <= UPLOAD, sent[-1]

    web = new_app().test_client()  # a worker that has never read these images
    rendered: list[collections.Counter[str]] = []
    for image_id in ids:
        del commands.commands[:]
        answer = web.get(f"/media/uploads/{image_id}/fit512.jpg")
        assert answer.status_code == 200
        answer.close()
        rendered.append(settled(commands))
    worker = web.application
    database = worker.extensions["avenue.mongo"].client[worker.config["MONGO_DB"]]
    across = dialect_of(database).cross_collection_writes
    assert sum(rendered[-1].values()) <= COLD_RENDITION + (0 if across else ACROSS_COLLECTIONS), rendered[-1]
    if across:  # the limits with the claim, and the rendition's store, one command each
        assert rendered[-1]["bulkWrite rate_limits+media_rendition_claims"] == 1
        assert rendered[-1]["bulkWrite media_renditions.chunks+media_renditions.files+media_counters"] == 1
