"""One-time upload links (/api/upload-links): created, listed and revoked by editors and admins;
a holder uploads with the secret alone (multipart or tus) into the link's target and nowhere
else; every refusal leaves nothing stored and, for a refused file, the use given back."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest

from avenue.clock import now
from avenue.links import service as link_service
from avenue.links import store
from tests.helpers import image_bytes
from tests.support import tus
from tests.support.records import IMAGE, images

LINKS = "/api/upload-links"
FILES = f"{LINKS}/files"
LINK_TUS = f"{LINKS}/tus"
PHOTO = "good/progressive.jpg"


def created(client, headers, **body) -> dict:
    """A new link (target: general uploads unless ``body`` says); the create answer."""
    response = client.post(LINKS, json={"target": {"kind": "uploads"}, **body}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def holding(secret: str) -> dict:
    return {"Authorization": f"UploadLink {secret}"}


def send(client, secret: str | None, name: str = PHOTO, *, data: bytes | None = None, headers=None, **fields):
    """A holder's multipart upload of ``name`` (or ``data``) with the secret in the header."""
    body = {"file": (io.BytesIO(image_bytes(name) if data is None else data), name.rsplit("/", 1)[-1]),
            **fields}
    sent = {**(holding(secret) if secret else {}), **(headers or {})}
    return client.post(FILES, data=body, headers=sent, content_type="multipart/form-data")


def stored_link(db, link_id: str) -> dict:
    from bson import ObjectId

    return db[store.COLLECTION].find_one({"_id": ObjectId(link_id)})


def image_count(db) -> int:
    return sum(images(db, bucket).count_documents(IMAGE)
               for bucket in ("uploads", "builder", "products"))


def audit_of(db, action: str) -> list[dict]:
    return list(db.audit_logs.find({"action": action}))


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


# --- creating, listing, revoking ------------------------------------------------------------


def test_the_secret_is_answered_once_and_only_its_hash_is_stored(client, editor, db):
    answer = created(client, editor, label="  supplier  photos ")
    secret, link = answer["secret"], answer["link"]
    assert secret.startswith("avl_") and len(secret) > 40
    assert link["state"] == "live" and link["uses"] == 0 and link["max_uses"] == 1
    assert link["label"] == "supplier photos"
    assert answer["upload_url"].endswith(FILES) and answer["tus_url"].endswith(LINK_TUS)
    doc = stored_link(db, link["id"])
    assert secret not in str(doc) and doc["secret_hash"] == store.secret_hash(secret)
    listed = client.get(LINKS, headers=editor).get_json()
    assert [item["id"] for item in listed["items"]] == [link["id"]]
    assert secret not in str(listed)
    assert audit_of(db, "upload_link_created")[0]["target"]["upload_link"] == link["id"]


def test_the_default_expiry_is_the_configured_one(client, editor, app):
    link = created(client, editor)["link"]
    expires = dt.datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    lifetime = (expires - now()).total_seconds()
    assert abs(lifetime - app.config["AVENUE_UPLOAD_LINK_DEFAULT_SECONDS"]) < 120


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"max_uses": -1}, 400, "invalid_max_uses"),
    ({"max_uses": 0}, 400, "invalid_max_uses"),
    ({"max_uses": True}, 400, "invalid_max_uses"),
    ({"max_uses": 1001}, 400, "invalid_max_uses"),
    ({"max_bytes": 0}, 400, "invalid_max_bytes"),
    ({"max_bytes": 10 * 1024 * 1024 + 1}, 400, "invalid_max_bytes"),
    ({"expires_in": 7 * 24 * 3600 + 1}, 400, "invalid_expires_in"),
    ({"expires_in": 59}, 400, "invalid_expires_in"),
    ({"expires_in": "1d"}, 400, "invalid_expires_in"),
    ({"label": "x" * 201}, 400, "invalid_label"),
    ({"uses": 3}, 400, "unknown_field"),
    ({"target": {"kind": "everything"}}, 400, "invalid_target"),
    ({"target": {"kind": "temp"}}, 400, "invalid_target"),
    ({"target": "uploads"}, 400, "invalid_target"),
    ({"target": {"kind": "uploads", "sku": "X"}}, 400, "invalid_target"),
    ({"target": {"kind": "uploads", "visibility": "secret"}}, 400, "invalid_visibility"),
    ({"target": {"kind": "builder", "folder": "/../x"}}, 400, "invalid_folder"),
    ({"target": {"kind": "product"}}, 400, "invalid_sku"),
    ({"target": {"kind": "product", "sku": "NOPE-1"}}, 404, "product_not_found"),
])
def test_a_bad_create_body_is_refused_and_creates_nothing(client, admin, db, body, status, code):
    response = client.post(LINKS, json={"target": {"kind": "uploads"}, **body}, headers=admin)
    assert response.status_code == status, response.get_json()
    assert error_code(response) == code
    assert db[store.COLLECTION].count_documents({}) == 0


def test_a_link_into_a_target_needs_the_role_that_uploads_there(client, auth, db):
    editor, ops = auth.token("editor"), auth.token("ops")
    assert client.post("/api/shop/products", json={"sku": "L-1", "name": "L", "price": 1},
                       headers=auth.token("admin")).status_code == 201
    product = {"target": {"kind": "product", "sku": "L-1"}}
    assert client.post(LINKS, json=product, headers=editor).status_code == 403
    assert client.post(LINKS, json={"target": {"kind": "uploads"}}, headers=ops).status_code == 403
    assert client.post(LINKS, json={"target": {"kind": "uploads"}}).status_code == 401
    assert db[store.COLLECTION].count_documents({}) == 0


def test_editors_list_their_own_links_and_admins_every_link_in_pages(client, auth):
    first, second, admin = auth.token("editor"), auth.token("editor"), auth.token("admin")
    mine = [created(client, first, label=f"mine {n}")["link"]["id"] for n in range(3)]
    theirs = created(client, second)["link"]["id"]
    page = client.get(f"{LINKS}?per_page=2", headers=first).get_json()
    assert [item["id"] for item in page["items"]] == mine[::-1][:2] and page["next"]
    rest = client.get(f"{LINKS}?per_page=2&after={page['next']}", headers=first).get_json()
    assert [item["id"] for item in rest["items"]] == mine[:1] and rest["next"] is None
    everything = client.get(LINKS, headers=admin).get_json()
    assert {item["id"] for item in everything["items"]} == {*mine, theirs}
    assert client.get(f"{LINKS}?page=0", headers=first).status_code == 400


def test_a_revoked_link_takes_no_upload_and_the_revoke_is_audited(client, editor, db):
    answer = created(client, editor, max_uses=5)
    revoked = client.delete(f"{LINKS}/{answer['link']['id']}", headers=editor)
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    response = send(client, answer["secret"])
    assert response.status_code == 410 and error_code(response) == "upload_link_revoked"
    assert image_count(db) == 0
    assert client.delete(f"{LINKS}/{answer['link']['id']}", headers=editor).status_code == 200
    assert len(audit_of(db, "upload_link_revoked")) == 1


def test_only_the_creator_or_an_admin_revokes_a_link(client, auth):
    creator, other, admin = auth.token("editor"), auth.token("editor"), auth.token("admin")
    link_id = created(client, creator)["link"]["id"]
    assert client.delete(f"{LINKS}/{link_id}", headers=other).status_code == 404
    assert client.delete(f"{LINKS}/{link_id}", headers=admin).status_code == 200
    assert client.delete(f"{LINKS}/{'0' * 24}", headers=admin).status_code == 404
    assert client.delete(f"{LINKS}/nonsense", headers=admin).status_code == 404


# --- the holder's upload --------------------------------------------------------------------


def test_a_holder_uploads_with_the_secret_alone_into_the_creators_uploads(client, editor, db):
    answer = created(client, editor, target={"kind": "uploads", "visibility": "private"})
    response = send(client, answer["secret"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["created"] is True and body["uses_left"] == 0
    assert body["image"]["visibility"] == "private"
    listed = client.get("/api/uploads", headers=editor).get_json()["items"]
    assert [item["id"] for item in listed] == [body["image"]["id"]]
    entry = audit_of(db, "upload_created")[0]
    assert entry["target"]["via"] == "link" and entry["target"]["upload_link"] == answer["link"]["id"]
    assert entry["actor"] is None  # the holder has no account
    assert stored_link(db, answer["link"]["id"])["uses"] == 1


def test_a_plain_html_form_sends_the_secret_as_a_field(client, editor, db):
    answer = created(client, editor)
    response = send(client, None, link=answer["secret"])
    assert response.status_code == 201, response.get_json()
    assert image_count(db) == 1


def test_a_library_link_files_the_image_in_its_folder_with_its_tags(client, editor, db):
    answer = created(client, editor, target={"kind": "builder", "folder": "/suppliers/acme",
                                             "tags": ["Acme", "spring"]})
    response = send(client, answer["secret"])
    assert response.status_code == 201, response.get_json()
    media = client.get(f"/api/builder/media/{response.get_json()['image']['id']}", headers=editor).get_json()
    assert media["folder"] == "/suppliers/acme" and media["tags"] == ["acme", "spring"]


def test_a_product_link_adds_the_photo_to_its_product(client, admin):
    assert client.post("/api/shop/products", json={"sku": "LNK-1", "name": "L", "price": 1},
                       headers=admin).status_code == 201
    answer = created(client, admin, target={"kind": "product", "sku": "LNK-1"})
    response = send(client, answer["secret"])
    assert response.status_code == 201, response.get_json()
    product = client.get("/api/shop/products/LNK-1").get_json()
    assert [image["id"] for image in product["images"]] == [response.get_json()["image"]["id"]]


def test_a_link_takes_as_many_files_as_it_allows_then_410(client, editor, db):
    answer = created(client, editor, max_uses=2)
    assert send(client, answer["secret"]).status_code == 201
    assert send(client, answer["secret"], "good/alpha.png").status_code == 201
    third = send(client, answer["secret"], "good/cmyk.jpg")
    assert third.status_code == 410 and error_code(third) == "upload_link_used_up"
    assert image_count(db) == 2
    assert client.get(LINKS, headers=editor).get_json()["items"][0]["state"] == "used_up"


def test_an_expired_link_is_410_and_its_expiry_is_audited_once(client, editor, db):
    answer = created(client, editor, max_uses=3)
    db[store.COLLECTION].update_one({}, {"$set": {"expires_at": now() - dt.timedelta(seconds=1)}})
    for _ in range(2):
        response = send(client, answer["secret"])
        assert response.status_code == 410 and error_code(response) == "upload_link_expired"
    assert client.get(LINKS, headers=editor).get_json()["items"][0]["state"] == "expired"
    assert image_count(db) == 0 and stored_link(db, answer["link"]["id"])["uses"] == 0
    assert len(audit_of(db, "upload_link_expired")) == 1


def test_a_wrong_or_missing_secret_is_401_and_stores_nothing(client, editor, db):
    created(client, editor)
    for secret in ("avl_" + "x" * 43, "nonsense", "Bearer-ish"):
        response = send(client, secret)
        assert response.status_code == 401 and error_code(response) == "invalid_upload_link"
    missing = send(client, None)
    assert missing.status_code == 401 and error_code(missing) == "upload_link_required"
    assert send(client, None, headers=editor).status_code == 403  # an account is not a link
    assert image_count(db) == 0


def test_guessing_secrets_is_429_once_the_address_used_up_its_failures_but_the_right_one_passes(
        app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, AVENUE_UPLOAD_LINK_GUESS_LIMIT="3/minute")
    client = app.test_client()
    from tests.helpers import Auth

    answer = created(client, Auth(app).token("editor"))
    for _ in range(3):
        assert send(client, "avl_guess").status_code == 401
    refused = send(client, "avl_guess")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert send(client, "avl_another_guess").status_code == 429  # the address, whatever it guesses
    # The right secret is never locked out: a lookup that opens a link passes whatever was guessed.
    assert send(client, answer["secret"]).status_code == 201


def test_a_link_opens_its_own_target_and_no_other(client, admin, db):
    assert client.post("/api/shop/products", json={"sku": "MINE-1", "name": "L", "price": 1},
                       headers=admin).status_code == 201
    library = created(client, admin, target={"kind": "builder"}, max_uses=5)["secret"]
    product = created(client, admin, target={"kind": "product", "sku": "MINE-1"}, max_uses=5)["secret"]
    for secret, fields in ((library, {"target": "product", "sku": "MINE-1"}),
                           (library, {"target": "uploads"}), (product, {"sku": "OTHER-1"})):
        response = send(client, secret, **fields)
        assert response.status_code == 403 and error_code(response) == "upload_link_wrong_target"
    metadata = {**tus.VERSION, **holding(library), "Upload-Length": "100",
                "Upload-Metadata": tus.metadata(target="product", sku="MINE-1")}
    assert client.post(LINK_TUS, headers=metadata).status_code == 403
    assert image_count(db) == 0
    assert all(doc["uses"] == 0 for doc in db[store.COLLECTION].find())


def test_a_file_over_the_links_size_is_413_and_gives_the_use_back(client, editor, db):
    photo = image_bytes(PHOTO)
    answer = created(client, editor, max_bytes=len(photo) - 1)
    response = send(client, answer["secret"], data=photo)
    assert response.status_code == 413 and error_code(response) == "file_too_large"
    assert image_count(db) == 0 and stored_link(db, answer["link"]["id"])["uses"] == 0
    declared = client.post(LINK_TUS, headers={**tus.VERSION, **holding(answer["secret"]),
                                              "Upload-Length": str(len(photo))})
    assert declared.status_code == 413 and stored_link(db, answer["link"]["id"])["uses"] == 0
    assert send(client, answer["secret"], "good/tiny_1x1.png").status_code == 201


@pytest.mark.parametrize("name", ["bad/document.pdf", "bad/truncated.jpg"])
def test_a_file_that_is_not_an_image_is_refused_without_burning_a_single_use_link(client, editor, db, name):
    answer = created(client, editor)
    refused = send(client, answer["secret"], name)
    assert refused.status_code in (415, 422), refused.get_json()
    assert image_count(db) == 0 and stored_link(db, answer["link"]["id"])["uses"] == 0
    assert send(client, answer["secret"]).status_code == 201
    assert stored_link(db, answer["link"]["id"])["uses"] == 1


def test_a_single_use_link_refuses_further_files_once_its_refusals_reach_their_bound(client, editor, db):
    answer = created(client, editor)
    for _ in range(store.MAX_REFUSED):
        refused = send(client, answer["secret"], "bad/document.pdf")
        assert refused.status_code == 415, refused.get_json()
    assert stored_link(db, answer["link"]["id"])["uses"] == 0  # each gave its use back
    stopped = send(client, answer["secret"])  # a good photo, past the bound
    assert stopped.status_code == 410 and error_code(stopped) == "upload_link_refused_out"
    assert image_count(db) == 0
    shown = client.get(LINKS, headers=editor).get_json()["items"][0]
    assert shown["state"] == "used_up" and shown["refused"] == store.MAX_REFUSED and shown["uses"] == 0
    declared = client.post(LINK_TUS, headers={**tus.VERSION, **holding(answer["secret"]),
                                              "Upload-Length": "10"})
    assert declared.status_code == 410 and error_code(declared) == "upload_link_refused_out"


def test_of_two_uploads_racing_for_a_single_use_link_exactly_one_is_stored(client, app, editor, db,
                                                                            monkeypatch):
    """Both read the link live; the first to take the use wins, the other is 410 (store.py,
    write order 1)."""
    answer = created(client, editor)
    taking = store.take_use
    second: list = []

    def take_after_the_other(db_, link, at=None):
        if not second:  # the first request: let a second one run all the way in between
            second.append(None)
            second[0] = send(app.test_client(), answer["secret"], "good/tiny_1x1.png")
        return taking(db_, link, at)

    monkeypatch.setattr(store, "take_use", take_after_the_other)
    first = send(client, answer["secret"])
    assert second[0].status_code == 201
    assert first.status_code == 410 and error_code(first) == "upload_link_used_up"
    assert image_count(db) == 1 and stored_link(db, answer["link"]["id"])["uses"] == 1


def test_concurrent_takes_never_pass_the_count(db):
    link, _ = store.create(db, target={"kind": "uploads"}, label=None, max_bytes=100, max_uses=3,
                           lifetime_seconds=3600, created_by={"id": "u"})
    won, lost = [], []
    barrier = threading.Barrier(8)

    def take():
        barrier.wait()
        try:
            won.append(store.take_use(db, link))
        except store.LinkGone:
            lost.append(True)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(lost)) == (3, 5)
    assert store.get(db, link.id).remaining == 0


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/uploads"), ("GET", LINKS), ("POST", LINKS), ("DELETE", f"{LINKS}/{'0' * 24}"),
    ("POST", "/api/tus"), ("POST", "/api/builder/media"), ("GET", "/api/builder/media"),
    ("DELETE", f"/api/uploads/{'0' * 24}"), ("GET", "/api/admin/audit"), ("GET", "/api/auth/me"),
])
def test_a_link_holder_is_anonymous_everywhere_else(client, editor, method, path):
    secret = created(client, editor, max_uses=10)["secret"]
    response = client.open(path, method=method, headers=holding(secret), json={})
    assert response.status_code == 401, (method, path, response.status_code)


# --- tus through a link ---------------------------------------------------------------------


def link_tus(client, secret: str, data: bytes, chunk: int = 256 * 1024, **fields):
    """A whole tus upload through the link: (its path, the last PATCH's response)."""
    headers = holding(secret)
    sent = {**tus.VERSION, **headers, "Upload-Length": str(len(data))}
    if fields:
        sent["Upload-Metadata"] = tus.metadata(**fields)
    made = client.post(LINK_TUS, headers=sent)
    assert made.status_code == 201, made.get_json()
    assert made.headers["Tus-Resumable"] == "1.0.0"
    url = f"{LINK_TUS}/" + made.headers["Location"].rsplit("/", 1)[-1]
    response = None
    for start in range(0, len(data), chunk):
        response = tus.patch(client, headers, url, start, data[start:start + chunk])
        if response.status_code != 204:
            break
    return url, response


def test_a_tus_upload_through_a_link_stores_the_image_and_counts_one_use(client, editor, db):
    photo = image_bytes("good/photo_12mp.jpg")
    answer = created(client, editor, target={"kind": "builder", "folder": "/phones"}, max_uses=2)
    url, last = link_tus(client, answer["secret"], photo, chunk=1024 * 1024, filename="phone.jpg")
    assert last.status_code == 204 and last.headers["Upload-Offset"] == str(len(photo))
    image_id = last.headers["Avenue-Image-Id"]
    head = tus.head(client, holding(answer["secret"]), url)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(len(photo))
    media = client.get(f"/api/builder/media/{image_id}", headers=editor).get_json()
    assert media["folder"] == "/phones" and media["filename"] == "phone.jpg"
    entry = audit_of(db, "builder_media_uploaded")[0]["target"]
    assert entry["via"] == "link" and entry["upload_link"] == answer["link"]["id"]
    assert stored_link(db, answer["link"]["id"])["uses"] == 1


def test_a_tus_upload_refused_at_completion_gives_the_use_back(client, editor, db):
    answer = created(client, editor)
    _, last = link_tus(client, answer["secret"], image_bytes("bad/truncated.jpg"))
    assert last.status_code in (415, 422)
    assert image_count(db) == 0 and stored_link(db, answer["link"]["id"])["uses"] == 0
    assert send(client, answer["secret"]).status_code == 201


def test_a_links_tus_upload_answers_only_that_link_and_stops_when_revoked(client, editor, db):
    photo = image_bytes(PHOTO)
    answer, other = created(client, editor), created(client, editor)
    made = client.post(LINK_TUS, headers={**tus.VERSION, **holding(answer["secret"]),
                                          "Upload-Length": str(len(photo))})
    url = f"{LINK_TUS}/" + made.headers["Location"].rsplit("/", 1)[-1]
    assert tus.patch(client, holding(other["secret"]), url, 0, photo).status_code == 404
    assert tus.patch(client, {}, url, 0, photo).status_code == 401
    assert client.delete(f"{LINKS}/{answer['link']['id']}", headers=editor).status_code == 200
    revoked = tus.patch(client, holding(answer["secret"]), url, 0, photo)
    assert revoked.status_code == 410 and error_code(revoked) == "upload_link_revoked"
    assert image_count(db) == 0


def test_a_holder_gets_the_links_tus_upload_as_its_owner_does_cut_to_what_a_holder_sees(client, editor):
    photo = image_bytes(PHOTO)
    answer = created(client, editor, target={"kind": "builder", "folder": "/suppliers", "tags": ["acme"],
                                             "alt": "Supplier text"})
    holder = holding(answer["secret"])
    made = client.post(LINK_TUS, headers={**tus.VERSION, **holder, "Upload-Length": str(len(photo)),
                                          "Upload-Metadata": tus.metadata(filename="holders-name.jpg")})
    upload_id = made.headers["Location"].rsplit("/", 1)[-1]
    url = f"{LINK_TUS}/{upload_id}"
    before = client.get(url, headers=holder)  # a GET is not the protocol's: no Tus-Resumable needed
    assert before.status_code == 200 and before.headers["Cache-Control"] == "no-store"
    state = before.get_json()
    assert state == {"id": upload_id, "offset": 0, "length": len(photo), "state": "open",
                     "target": {"kind": "builder"}, "filename": "holders-name.jpg",
                     "expires_at": state["expires_at"], "created": None, "image": None}
    last = tus.patch(client, holder, url, 0, photo)
    assert last.status_code == 204
    done = client.get(url, headers=holder)
    owners = client.get(f"{tus.TUS}/{upload_id}", headers=editor).get_json()
    shown = done.get_json()
    assert {key: shown[key] for key in shown if key not in ("target", "image")} == {
        key: owners[key] for key in owners if key not in ("target", "image")}
    assert (shown["state"], shown["created"], shown["offset"]) == ("done", True, len(photo))
    assert shown["image"]["id"] == last.headers["Avenue-Image-Id"] == owners["image"]["id"]
    assert set(shown["image"]) == set(link_service.HolderImage.model_fields)
    assert owners["image"]["alt"] == "Supplier text"  # the owner's answer has it, the holder's does not
    for private in ("Supplier text", "/suppliers", "acme", answer["link"]["id"]):
        assert private not in done.get_data(as_text=True)
    # The secret opens its own link's upload only, as HEAD and PATCH do.
    assert client.get(url, headers=holding(created(client, editor)["secret"])).status_code == 404
    wrong = client.get(url, headers=holding("avl_wrong"))
    assert wrong.status_code == 401 and error_code(wrong) == "invalid_upload_link"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=editor).status_code == 403  # an account is not a link


def test_a_link_tus_request_without_the_protocol_version_is_412(client, editor):
    secret = created(client, editor)["secret"]
    response = client.post(LINK_TUS, headers={**holding(secret), "Upload-Length": "100"})
    assert response.status_code == 412 and response.headers["Tus-Version"] == "1.0.0"


def test_the_link_lowers_the_size_limit_and_never_raises_it():
    from avenue.media import Limits
    from avenue.targets import Settings

    settings = Settings(limits=Limits(max_bytes=1000), max_product_images=10, temp_ttl_seconds=60)

    def link(size: int) -> store.Link:
        return store.Link(id=None, target={"kind": "uploads"}, label=None, max_bytes=size, max_uses=1, uses=0,
                          remaining=1, created_by={"id": "u"}, created_at=now(), expires_at=now(),
                          revoked_at=None, expiry_noted=False)

    assert link_service.settings_for(link(10), settings).limits.max_bytes == 10
    assert link_service.settings_for(link(10**9), settings).limits.max_bytes == 1000


def test_a_holders_uploads_count_against_the_upload_rate_limit_per_link(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, AVENUE_UPLOAD_RATE_LIMIT="1/minute")
    client = app.test_client()
    from tests.helpers import Auth

    answer = created(client, Auth(app).token("editor"), max_uses=5)
    assert send(client, answer["secret"]).status_code == 201
    limited = send(client, answer["secret"], "good/tiny_1x1.png")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    with app.app_context():
        from avenue.db import get_db

        assert stored_link(get_db(), answer["link"]["id"])["uses"] == 1  # the refused one took none


def test_every_holder_answer_is_counted_and_carries_a_request_id(client, auth):
    from prometheus_client.parser import text_string_to_metric_families

    ops = auth.token("ops")

    def count(status: str) -> float:
        text = client.get("/metrics", headers=ops).get_data(as_text=True)
        samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
        return sum(sample.value for sample in samples if sample.name == "avenue_http_requests_total"
                   and sample.labels == {"route": FILES, "method": "POST", "status": status})

    before = {status: count(status) for status in ("201", "401", "415")}
    secret = created(client, auth.token("editor"), max_uses=3)["secret"]
    answers = [send(client, secret), send(client, "avl_wrong"), send(client, secret, "bad/document.pdf")]
    assert [answer.status_code for answer in answers] == [201, 401, 415]
    for answer in answers:
        assert len(answer.headers["X-Request-ID"]) >= 16
    assert answers[1].get_json()["error"]["request_id"] == answers[1].headers["X-Request-ID"]
    assert {status: count(status) - before[status] for status in before} == {"201": 1, "401": 1, "415": 1}


# --- a link only adds -----------------------------------------------------------------------


def library_upload(client, editor, name: str = PHOTO, **fields) -> dict:
    """An editor's library upload of ``name`` with ``fields`` (alt, folder, tags)."""
    response = client.post("/api/builder/media", headers=editor, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(image_bytes(name)), "editors-name.jpg"), **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def holder_sends(client, secret: str, how: str, name: str = PHOTO):
    """A holder's file by multipart or tus: (status, the image id it became)."""
    if how == "multipart":
        response = send(client, secret, name)
        body = response.get_json()
        return response.status_code, (body.get("image") or {}).get("id")
    _, last = link_tus(client, secret, image_bytes(name), filename="holders-name.jpg")
    return last.status_code, last.headers.get("Avenue-Image-Id")


@pytest.mark.parametrize("how", ["multipart", "tus"])
def test_a_link_upload_of_an_existing_image_changes_none_of_its_labels(client, editor, how):
    mine = library_upload(client, editor, alt="The editor's words", folder="/catalogue", tags="lamp,red")
    answer = created(client, editor, target={"kind": "builder", "folder": "/suppliers", "tags": ["acme"],
                                             "alt": "Supplier text"})
    status, image_id = holder_sends(client, answer["secret"], how)
    assert status in (200, 204) and image_id == mine["id"]
    media = client.get(f"/api/builder/media/{mine['id']}", headers=editor).get_json()
    labels = (media["alt"], media["folder"], media["tags"])
    assert labels == ("The editor's words", "/catalogue", ["lamp", "red"])
    assert media["filename"] == mine["filename"]


def test_a_links_answer_shows_none_of_the_existing_images_private_fields(client, editor):
    mine = library_upload(client, editor, alt="The editor's words", folder="/catalogue", tags="lamp")
    answer = created(client, editor, target={"kind": "builder"})
    response = send(client, answer["secret"])
    assert response.status_code == 200 and response.get_json()["created"] is False
    image = response.get_json()["image"]
    assert set(image) == {"id", "url", "variants", "content_type", "width", "height", "bytes", "sha256",
                          "visibility"}
    assert image["id"] == mine["id"]
    for private in ("filename", "alt", "owner", "folder", "tags", "edits", "near_duplicates"):
        assert private not in image
    assert "editors-name" not in response.get_data(as_text=True)
    assert "editor's words" not in response.get_data(as_text=True)


@pytest.mark.parametrize("how", ["multipart", "tus"])
@pytest.mark.parametrize("kind", ["builder", "uploads"])
def test_a_link_upload_never_brings_an_image_back_from_the_trash(client, editor, admin, how, kind):
    if kind == "builder":
        trashed = library_upload(client, editor)
        removed = client.delete(f"/api/builder/media/{trashed['id']}", headers=editor)
    else:
        trashed = client.post("/api/uploads", headers=editor, content_type="multipart/form-data",
                              data={"file": (io.BytesIO(image_bytes(PHOTO)), "mine.jpg"),
                                    "visibility": "public"}).get_json()
        removed = client.delete(f"/api/uploads/{trashed['id']}", headers=editor)
    assert removed.status_code == 204
    target = {"kind": kind, **({"visibility": "public"} if kind == "uploads" else {})}
    answer = created(client, editor, target=target)
    status, image_id = holder_sends(client, answer["secret"], how)
    assert status in (201, 204) and image_id != trashed["id"]
    assert client.get(f"/api/trash/{trashed['id']}", headers=admin).status_code == 200
    assert client.get(trashed["url"]).status_code == 404


def test_a_links_unfinished_tus_uploads_are_capped_per_link_not_against_its_creator(app_factory, auth):
    app = app_factory(AVENUE_TUS_MAX_OPEN_UPLOADS=1)
    client, editor = app.test_client(), auth.token("editor")
    secret = created(client, editor, max_uses=3)["secret"]
    start = {**tus.VERSION, **holding(secret), "Upload-Length": "1000"}
    assert client.post(LINK_TUS, headers=start).status_code == 201
    second = client.post(LINK_TUS, headers=start)
    assert second.status_code == 429 and error_code(second) == "too_many_open_uploads"
    assert tus.create(client, editor, 1000).status_code == 201  # the creator's own uploads are not held up
    other = created(client, editor)["secret"]
    assert client.post(LINK_TUS, headers={**start, **holding(other)}).status_code == 201
