"""Imports from a URL (POST /api/builder/media/import-url, POST /api/shop/products/{sku}/images/
import-url, POST /api/shop/import-urls): the server fetches the image through the SSRF guard
(avenue/urlfetch.py) and stores it as an upload. A local HTTP server on 127.0.0.1 plays the
supplier; the app trusts 127.0.0.1/32 (AVENUE_URL_IMPORT_ALLOW_NETWORKS) except where a test
proves that loopback is refused without it."""

from __future__ import annotations

import io
import itertools
import socket
import time

import pytest
from bson import ObjectId

from avenue.bulk import views
from avenue.media import Buckets
from tests.helpers import Auth, bucket_snapshot, image_bytes
from tests.support.imageserver import ImageServer
from tests.support.records import record

LIBRARY, CSV = "/api/builder/media/import-url", "/api/shop/import-urls"
PHOTO, OTHER = image_bytes("good/progressive.jpg"), image_bytes("good/alpha.png")
JPEG = {"Content-Type": "image/jpeg"}
TRUSTING = {"AVENUE_URL_IMPORT_ALLOW_NETWORKS": ["127.0.0.1/32"], "AVENUE_URL_IMPORT_PORTS": "",
            "AVENUE_URL_IMPORT_SECONDS": 60}


def product_url(sku: str) -> str:
    return f"/api/shop/products/{sku}/images/import-url"


@pytest.fixture
def app(app_factory):
    return app_factory(**TRUSTING)


@pytest.fixture
def server():
    running = ImageServer()
    yield running
    running.close()


@pytest.fixture
def strict(app_factory):
    """An app on the same database that trusts no network (any port, so only the address is
    what refuses), and an editor's and an admin's headers on it."""
    built = app_factory(AVENUE_URL_IMPORT_PORTS="")
    auth = Auth(built)
    return built.test_client(), auth.token("editor"), auth.token("admin")


def create_product(client, admin, sku: str) -> None:
    response = client.post("/api/shop/products", json={"sku": sku, "name": sku, "price": 1}, headers=admin)
    assert response.status_code == 201, response.get_json()


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"], error
    return error


# --- stored -------------------------------------------------------------------------------------


def test_an_image_at_a_url_goes_into_the_library_with_its_labels(client, editor, server, db):
    server.serve("/photos/lamp.jpg", body=PHOTO, headers=JPEG)
    url = server.url("/photos/lamp.jpg?signature=secret")
    response = client.post(LIBRARY, json={"url": url, "alt": "A lamp", "folder": "/shop/lamps",
                                          "tags": ["red", "lamp"]}, headers=editor)
    assert response.status_code == 201, response.get_json()
    media = response.get_json()
    assert (media["filename"], media["alt"], media["folder"]) == ("lamp.jpg", "A lamp", "/shop/lamps")
    assert sorted(media["tags"]) == ["lamp", "red"] and media["variants"]
    assert client.get(f"/api/builder/media/{media['id']}", headers=editor).status_code == 200
    assert server.requests == [("/photos/lamp.jpg?signature=secret", f"127.0.0.1:{server.port}")]
    entry = db.audit_logs.find_one({"action": "builder_media_imported_from_url"})
    assert entry is not None and entry["target"]["url"] == server.url("/photos/lamp.jpg")  # no token


def test_the_same_image_again_is_200_and_stores_nothing(client, editor, server, db):
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    first = client.post(LIBRARY, json={"url": url}, headers=editor)
    assert first.status_code == 201
    before = bucket_snapshot(db)
    again = client.post(LIBRARY, json={"url": url}, headers=editor)
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert bucket_snapshot(db) == before


def test_an_image_at_a_url_goes_onto_a_product(client, admin, server):
    create_product(client, admin, "LAMP-1")
    url = server.serve("/lamp.png", body=OTHER, headers={"Content-Type": "image/png"})
    response = client.post(product_url("LAMP-1"), json={"url": url}, headers=admin)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert len(body["added"]) == 1 and [image["id"] for image in body["product"]["images"]] == \
        [body["added"][0]["id"]]
    assert body["added"][0]["near_duplicates"] == []  # looked up, as for an upload: none
    again = client.post(product_url("LAMP-1"), json={"url": url}, headers=admin)
    assert again.status_code == 200 and again.get_json()["added"] == []
    assert len(client.get("/api/shop/products/LAMP-1").get_json()["images"]) == 1


def test_a_redirect_to_an_allowed_address_is_followed(client, editor, server):
    server.serve("/photo.jpg", body=PHOTO, headers=JPEG)
    url = server.serve("/old", status=301, headers={"Location": "/photo.jpg"})
    response = client.post(LIBRARY, json={"url": url}, headers=editor)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == "photo.jpg"
    assert server.paths() == ["/old", "/photo.jpg"]


def test_an_unknown_product_is_404_before_anything_is_fetched(client, admin, server):
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    refused(client.post(product_url("NOPE"), json={"url": url}, headers=admin), 404, "product_not_found")
    assert server.requests == []


# --- refused: the address ------------------------------------------------------------------------


def test_loopback_is_refused_without_the_trusted_network_and_nothing_is_fetched_or_stored(strict, server, db):
    client, editor, admin = strict
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    before = bucket_snapshot(db)
    error = refused(client.post(LIBRARY, json={"url": url}, headers=editor), 422, "forbidden_address")
    assert "loopback" in error["message"] and error["address"] == "127.0.0.1"
    # The refusal names the setting an admin changes to trust a supplier on the local network.
    assert "AVENUE_URL_IMPORT_ALLOW_NETWORKS" in error["message"]
    create_product(client, admin, "P-1")
    error = refused(client.post(product_url("P-1"), json={"url": url.replace("127.0.0.1", "localhost")},
                                headers=admin), 422, "forbidden_address")
    assert "AVENUE_URL_IMPORT_ALLOW_NETWORKS" in error["message"] and "address" not in error
    assert server.requests == [] and bucket_snapshot(db) == before


# Each host form tried alone against the strict app: whatever the resolver makes of it is
# checked, and each one is a non-public address.
HOST_FORMS = ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "017700000001", "127.0.0.1.",
              "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]",
              "[2002:7f00:1::]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "0", "0.0.0.0", "[::]",
              "localhost", "169.254.169.254", "100.64.0.1", "10.0.0.1", "192.168.0.1", "172.16.0.1",
              "[fd00:ec2::254]", "[fe80::1]", "224.0.0.1", "255.255.255.255"]


@pytest.mark.parametrize("host", HOST_FORMS)
def test_each_form_of_a_non_public_address_is_refused_through_the_endpoint(strict, server, host, db):
    client, editor, _ = strict
    server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    before = bucket_snapshot(db)
    response = client.post(LIBRARY, json={"url": f"http://{host}:{server.port}/a.jpg"}, headers=editor)
    refused(response, 422, "forbidden_address")
    assert server.requests == [] and bucket_snapshot(db) == before


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/", "http://0177.0.0.2:{port}/a.jpg", "http://[::1]:{port}/a.jpg",
    "http://[::ffff:169.254.169.254]/", "http://100.100.100.200/latest/meta-data/", "http://10.0.0.1/"])
def test_a_redirect_to_a_forbidden_address_is_refused(client, editor, server, location, db):
    server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    url = server.serve("/hop", status=302, headers={"Location": location.format(port=server.port)})
    before = bucket_snapshot(db)
    refused(client.post(LIBRARY, json={"url": url}, headers=editor), 422, "forbidden_address")
    assert server.paths() == ["/hop"] and bucket_snapshot(db) == before


def test_a_redirect_to_another_scheme_is_bad_url_and_endless_redirects_stop(client, editor, server):
    server.serve("/to-file", status=302, headers={"Location": "file:///etc/passwd"})
    refused(client.post(LIBRARY, json={"url": server.url("/to-file")}, headers=editor), 400, "bad_url")
    server.serve("/loop", status=307, headers={"Location": "/loop"})
    looping = client.post(LIBRARY, json={"url": server.url("/loop")}, headers=editor)
    error = refused(looping, 422, "too_many_redirects")
    assert "127.0.0.1 redirected more than 5 times" in error["message"]
    assert server.paths().count("/loop") == 6  # the URL and its 5 redirects


def test_a_dns_answer_that_changes_after_the_check_cannot_win(client, editor, server, monkeypatch):
    """The name answers a public address first and 127.0.0.1 after: the connection goes to the
    checked address (the test routes it to the local server), never to a second answer."""
    real_lookup, real_connect = socket.getaddrinfo, socket.create_connection
    lookups, connections = [], []

    def lookup(host, port, *args, **kwargs):
        if host != "supplier.example":
            return real_lookup(host, port, *args, **kwargs)
        lookups.append(host)
        address = "93.184.215.14" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    def connect(address, *args, **kwargs):
        connections.append(address[0])
        if address[0] == "93.184.215.14":  # "the supplier": the local server stands in for it
            return real_connect(("127.0.0.1", server.port), *args, **kwargs)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket, "create_connection", connect)
    server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    response = client.post(LIBRARY, json={"url": f"http://supplier.example:{server.port}/a.jpg"},
                           headers=editor)
    assert response.status_code == 201, response.get_json()
    assert lookups == ["supplier.example"] and connections == ["93.184.215.14"]
    assert server.requests == [("/a.jpg", f"supplier.example:{server.port}")]


def test_a_name_with_one_forbidden_address_among_public_ones_is_refused_unnamed(client, editor, monkeypatch):
    real_lookup = socket.getaddrinfo

    def lookup(host, port, *args, **kwargs):
        if host != "mixed.example":
            return real_lookup(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
                for address in ("93.184.215.14", "169.254.169.254")]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    error = refused(client.post(LIBRARY, json={"url": "http://mixed.example/a.jpg"}, headers=editor),
                    422, "forbidden_address")
    # What the name has on the server's network is not told back (no oracle of internal names).
    assert "link-local" in error["message"] and "address" not in error
    assert "169.254" not in error["message"] and "93.184" not in error["message"]


# --- refused: the URL, the host, the answer --------------------------------------------------


@pytest.mark.parametrize("url", [
    None, 12, ["http://x/"], "", "ftp://127.0.0.1/a.jpg", "file:///etc/passwd", "gopher://127.0.0.1:70/",
    "http://user:secret@127.0.0.1/a.jpg", "http://[fe80::1%25eth0]/", "http://[::1", "http://%zz/",
    "http://127.0.0.1:0/", "http://127.0.0.1:99999/", "http://a b/", "data:image/png;base64,iVBORw0KGgo=",
    "http://" + "x" * 3000 + "/"])
def test_a_url_that_is_not_fetched_is_400_bad_url(client, editor, url):
    refused(client.post(LIBRARY, json={"url": url}, headers=editor), 400, "bad_url")


def test_a_port_outside_the_allowed_ones_is_bad_url(app_factory, server):
    app = app_factory(AVENUE_URL_IMPORT_ALLOW_NETWORKS=["127.0.0.1/32"])  # ports: 80 and 443
    client, editor = app.test_client(), Auth(app).token("editor")
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    error = refused(client.post(LIBRARY, json={"url": url}, headers=editor), 400, "bad_url")
    assert f"Port {server.port}" in error["message"] and server.requests == []
    assert "AVENUE_URL_IMPORT_PORTS" in error["message"]  # the setting that would allow it


def test_a_host_off_the_allow_list_is_refused_even_by_redirect(app_factory, server):
    app = app_factory(**TRUSTING, AVENUE_URL_IMPORT_HOSTS=["localhost"])
    client, editor = app.test_client(), Auth(app).token("editor")
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    refused(client.post(LIBRARY, json={"url": url}, headers=editor), 422, "host_not_allowed")
    assert server.requests == []
    server.serve("/hop", status=302, headers={"Location": url})
    response = client.post(LIBRARY, json={"url": server.url("/hop", host="localhost")}, headers=editor)
    refused(response, 422, "host_not_allowed")
    assert server.paths() == ["/hop"]


def test_url_import_turned_off_is_403_url_import_disabled(app_factory, server):
    app = app_factory(**TRUSTING, AVENUE_URL_IMPORT=False)
    client, editor = app.test_client(), Auth(app).token("editor")
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    refused(client.post(LIBRARY, json={"url": url}, headers=editor), 403, "url_import_disabled")
    assert server.requests == []


def test_html_instead_of_an_image_is_not_an_image_and_bytes_that_are_no_image_are_the_uploads_415(
        client, editor, server, db):
    before = bucket_snapshot(db)
    page = server.serve("/page", body=b"<html><body>Not here</body></html>",
                        headers={"Content-Type": "text/html; charset=utf-8"})
    refused(client.post(LIBRARY, json={"url": page}, headers=editor), 415, "not_an_image")
    fake = server.serve("/fake.jpg", body=b"plain text, not a picture", headers=JPEG)
    refused(client.post(LIBRARY, json={"url": fake}, headers=editor), 415, "unsupported_type")
    assert bucket_snapshot(db) == before


def test_an_error_status_is_http_error(client, editor, server):
    error = refused(client.post(LIBRARY, json={"url": server.url("/missing.jpg")}, headers=editor),
                    422, "http_error")
    assert error["upstream_status"] == 404 and "127.0.0.1 answered 404 Not Found" in error["message"]


def test_a_body_past_the_upload_limit_is_too_large_however_its_length_is_told(app_factory, server, db):
    app = app_factory(**TRUSTING, AVENUE_MAX_UPLOAD_BYTES=len(PHOTO) - 1)
    client, editor = app.test_client(), Auth(app).token("editor")
    before = bucket_snapshot(db)
    declared = server.serve("/declared.jpg", body=PHOTO, headers=JPEG)
    undeclared = server.serve("/undeclared.jpg", body=PHOTO, headers=JPEG, content_length=-1)
    understated = server.serve("/understated.jpg", body=PHOTO, headers=JPEG, content_length=1000)
    chunked = server.serve("/chunked.jpg", body=PHOTO, headers=JPEG, chunked=True)
    for url in (declared, undeclared, chunked):
        refused(client.post(LIBRARY, json={"url": url}, headers=editor), 413, "too_large")
    # A Content-Length smaller than the body: only that much is read, a cut image the upload refuses.
    response = client.post(LIBRARY, json={"url": understated}, headers=editor)
    assert response.status_code in (415, 422), response.get_json()
    assert bucket_snapshot(db) == before


def test_a_chunked_answer_within_the_limit_is_stored(client, editor, server):
    url = server.serve("/chunked.jpg", body=PHOTO, headers=JPEG, chunked=True)
    assert client.post(LIBRARY, json={"url": url}, headers=editor).status_code == 201


def test_a_body_shorter_than_its_content_length_is_fetch_failed(client, editor, server, db):
    url = server.serve("/cut.jpg", body=PHOTO[:1000], headers=JPEG, content_length=len(PHOTO))
    before = bucket_snapshot(db)
    refused(client.post(LIBRARY, json={"url": url}, headers=editor), 422, "fetch_failed")
    assert bucket_snapshot(db) == before


def test_a_server_dripping_bytes_past_the_deadline_is_timeout(app_factory, server, db):
    """A byte a second of a 88 KB photo would take a day: the 2 s deadline ends it."""
    app = app_factory(**{**TRUSTING, "AVENUE_URL_IMPORT_SECONDS": 2})
    client, editor = app.test_client(), Auth(app).token("editor")
    url = server.serve("/slow.jpg", body=PHOTO, headers=JPEG, drip_seconds=1.0)
    before = bucket_snapshot(db)
    started = time.monotonic()
    error = refused(client.post(LIBRARY, json={"url": url}, headers=editor), 422, "timeout")
    assert "127.0.0.1 did not send the image within 2 s" in error["message"]
    assert time.monotonic() - started < 30
    assert bucket_snapshot(db) == before


def test_a_refused_connection_is_fetch_failed_and_counted_as_a_refused_upload(client, editor):
    from avenue.metrics import UPLOADS

    def counted() -> float:
        return UPLOADS.labels("fetch_failed", "unknown", "bulk.import_url_into_library")._value.get()

    before = counted()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused(client.post(LIBRARY, json={"url": f"http://127.0.0.1:{port}/a.jpg"}, headers=editor),
            422, "fetch_failed")
    assert counted() == before + 1


def unresolvable(monkeypatch) -> str:
    """A URL on a host whose name does not resolve (the lookup fails as a resolver's would)."""
    real_lookup = socket.getaddrinfo

    def lookup(host, port, *args, **kwargs):
        if host == "gone.supplier.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_lookup(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return "http://gone.supplier.example/a.jpg"


@pytest.mark.parametrize(("failure", "code", "words"), [
    ("no such host", "fetch_failed", "gone.supplier.example could not be looked up"),
    ("an error status", "http_error", "answered 503 Service Unavailable"),
    ("endless redirects", "too_many_redirects", "redirected more than 5 times"),
    ("too slow", "timeout", "did not send the image within 1 s")])
def test_a_suppliers_failure_is_422_never_a_server_error(app_factory, server, monkeypatch, failure, code,
                                                         words):
    """What the supplier did is no fault of this service's: a 5xx pages its ops (issue 62). Each
    import answers 422 with the code, and a CSV row reports that status."""
    app = app_factory(**{**TRUSTING, "AVENUE_URL_IMPORT_SECONDS": 1})
    client, admin = app.test_client(), Auth(app).token("admin")
    create_product(client, admin, "P-1")
    supplier = {"no such host": lambda: unresolvable(monkeypatch),
                "an error status": lambda: server.serve("/down.jpg", status=503),
                "endless redirects": lambda: server.serve("/loop", status=302, headers={"Location": "/loop"}),
                "too slow": lambda: server.serve("/slow.jpg", body=PHOTO, headers=JPEG, drip_seconds=1.0)}
    url = supplier[failure]()
    for path in (LIBRARY, product_url("P-1")):
        error = refused(client.post(path, json={"url": url}, headers=admin), 422, code)
        assert words in error["message"], error
    row = client.post(CSV, data=f"P-1,{url}\n", content_type="text/csv", headers=admin).get_json()["rows"][0]
    assert (row["outcome"], row["status"], row["code"]) == ("refused", 422, code) and words in row["message"]


def test_the_bodys_other_fields_are_checked_before_any_fetch(client, editor, admin, server):
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    for body, code in (({"url": url, "owner": "x"}, "unknown_field"), ({"url": url, "alt": 3}, "invalid_alt"),
                       ({"url": url, "folder": ["/"]}, "invalid_folder"),
                       ({"url": url, "tags": [1]}, "invalid_tags")):
        refused(client.post(LIBRARY, json=body, headers=editor), 400, code)
    create_product(client, admin, "P-1")
    response = client.post(product_url("P-1"), json={"url": url, "alt": "x"}, headers=admin)
    refused(response, 400, "unknown_field")
    assert server.requests == []


# --- access, CSRF, rate limits --------------------------------------------------------------------


def test_a_session_needs_its_csrf_token_and_the_roles_are_the_uploads(app, client, server):
    auth = Auth(app)
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    session, csrf = auth.login("editor")
    refused(session.post(LIBRARY, json={"url": url}), 403, "csrf_failed")
    assert session.post(LIBRARY, json={"url": url}, headers=csrf).status_code == 201
    refused(session.post(product_url("P-1"), json={"url": url}, headers=csrf), 403, "forbidden")
    refused(session.post(CSV, data="P-1," + url, content_type="text/csv", headers=csrf), 403, "forbidden")
    assert client.post(LIBRARY, json={"url": url}).status_code == 401


def test_urls_are_rate_limited_per_user_and_a_csv_reports_the_rows_past_the_limit(app_factory, server):
    app = app_factory(**TRUSTING, RATELIMIT_ENABLED=True, AVENUE_URL_IMPORT_RATE_LIMIT="2/hour")
    client, auth = app.test_client(), Auth(app)
    admin = auth.token("admin")
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    assert client.post(LIBRARY, json={"url": url}, headers=admin).status_code == 201
    assert client.post(LIBRARY, json={"url": url}, headers=admin).status_code == 200
    response = client.post(LIBRARY, json={"url": url}, headers=admin)
    refused(response, 429, "rate_limited")
    assert response.headers["Retry-After"] and server.paths() == ["/a.jpg", "/a.jpg"]
    other = auth.token("admin")  # per user: another admin has its own
    create_product(client, other, "P-1")
    other_url = server.serve("/b.png", body=OTHER)
    csv = f"sku,url\nP-1,{url}\nP-1,{other_url}\nP-1,{url}\n"
    report = client.post(CSV, data=csv, content_type="text/csv", headers=other).get_json()
    assert [(row["outcome"], row.get("code")) for row in report["rows"]] == [
        ("imported", None), ("imported", None), ("refused", "rate_limited")]
    assert report["rows"][2]["status"] == 429


# --- the CSV -----------------------------------------------------------------------------------


def test_a_csv_imports_each_row_and_reports_every_one(client, admin, server, db):
    create_product(client, admin, "P-1")
    create_product(client, admin, "P-2")
    photo = server.serve("/p1.jpg", body=PHOTO, headers=JPEG)
    png = server.serve("/p2.png", body=OTHER, headers={"Content-Type": "image/png"})
    page = server.serve("/page", body=b"<html></html>", headers={"Content-Type": "text/html"})
    csv = "\n".join(["SKU,URL", f"P-1,{photo}", f"P-2,{png}", "", f"P-2,{page}", f"NOPE,{photo}", "P-1",
                     "P-1,http://169.254.169.254/latest/meta-data/", f"P-1,{photo}", f"P-1,{photo},extra"])
    response = client.post(CSV, data=csv.encode(), content_type="text/csv", headers=admin)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert [(row["line"], row["outcome"], row.get("code")) for row in report["rows"]] == [
        (2, "imported", None), (3, "imported", None), (5, "refused", "not_an_image"),
        (6, "unknown_sku", None), (7, "refused", "bad_row"), (8, "refused", "forbidden_address"),
        (9, "already_there", None), (10, "refused", "bad_row")]
    assert report["counts"] == {"imported": 2, "already_there": 1, "unknown_sku": 1, "refused": 4,
                                "not_imported": 0}
    assert report["complete"] is True
    first = report["rows"][0]
    assert first["image"]["id"] == first["id"] and first["image"]["variants"]
    assert report["rows"][2]["status"] == 415 and report["rows"][2]["message"]
    products = {sku: client.get(f"/api/shop/products/{sku}").get_json()["images"] for sku in ("P-1", "P-2")}
    assert [image["id"] for image in products["P-1"]] == [first["id"]] and len(products["P-2"]) == 1
    assert "/page" in server.paths() and server.paths().count("/p1.jpg") == 2
    entry = db.audit_logs.find_one({"action": "product_images_imported_from_urls"})
    assert entry["target"]["imported"] == 2 and entry["target"]["rows"] == 8


def test_a_csv_may_come_as_a_multipart_file(client, admin, server):
    create_product(client, admin, "P-1")
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    response = client.post(CSV, data={"file": (io.BytesIO(f"P-1,{url}\n".encode()), "rows.csv")},
                           content_type="multipart/form-data", headers=admin)
    assert response.status_code == 200, response.get_json()
    assert [row["outcome"] for row in response.get_json()["rows"]] == ["imported"]


def test_a_csv_that_is_not_one_or_too_long_imports_nothing(app_factory, server):
    app = app_factory(**TRUSTING, AVENUE_URL_IMPORT_MAX_ROWS=2)
    client, admin = app.test_client(), Auth(app).token("admin")
    create_product(client, admin, "P-1")
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    three = "".join(f"P-1,{url}?n={n}\n" for n in range(3))
    refused(client.post(CSV, data=three, content_type="text/csv", headers=admin), 400, "too_many_rows")
    refused(client.post(CSV, data="sku,url\n\n", content_type="text/csv", headers=admin), 400, "invalid_csv")
    not_utf8 = client.post(CSV, data=b"\xff\xfe\x00", content_type="text/csv", headers=admin)
    refused(not_utf8, 400, "invalid_csv")
    nul = client.post(CSV, data=b"P-1,a\x00b", content_type="text/csv", headers=admin).get_json()
    assert [(row["outcome"], row["code"]) for row in nul["rows"]] == [("refused", "bad_url")]
    refused(client.post(CSV, json={"rows": []}, headers=admin), 415, "csv_expected")
    refused(client.post(CSV, data={}, content_type="multipart/form-data", headers=admin), 400, "missing_file")
    assert server.requests == []


def test_a_csv_import_past_its_deadline_reports_the_rows_not_started(client, admin, server, monkeypatch):
    create_product(client, admin, "P-1")
    url = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    ticks = itertools.chain([0.0, 0.0], itertools.repeat(10_000.0))  # the deadline, row 1; then later
    monkeypatch.setattr(views, "clock", lambda: next(ticks))
    csv = f"P-1,{url}\nP-1,{url}?again\n"
    report = client.post(CSV, data=csv, content_type="text/csv", headers=admin).get_json()
    assert [(row["outcome"], row.get("reason")) for row in report["rows"]] == [
        ("imported", None), ("not_imported", "deadline")]
    assert report["complete"] is False and server.paths() == ["/a.jpg"]


def test_library_import_lands_in_the_builder_bucket(client, editor, server, db):
    url = server.serve("/x.jpg", body=PHOTO, headers=JPEG)
    media_id = client.post(LIBRARY, json={"url": url}, headers=editor).get_json()["id"]
    assert record(db, Buckets.BUILDER, ObjectId(media_id)) is not None


def test_every_answer_of_the_url_imports_matches_the_openapi_document(app, server):
    """Stored, already there, each kind of refusal and a CSV report, validated against
    /api/openapi.json as the client receives them."""
    from openapi_core import OpenAPI
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from avenue.apidoc import document

    openapi = OpenAPI.from_dict(document())
    client, auth = app.test_client(), Auth(app)
    admin = auth.token("admin")
    create_product(client, admin, "P-1")
    photo = server.serve("/a.jpg", body=PHOTO, headers=JPEG)
    page = server.serve("/page", body=b"<p>", headers={"Content-Type": "text/html"})
    calls = [
        (LIBRARY, {"json": {"url": photo, "tags": "a,b"}}, 201), (LIBRARY, {"json": {"url": photo}}, 200),
        (LIBRARY, {"json": {"url": "ftp://x/"}}, 400), (LIBRARY, {"json": {"url": page}}, 415),
        (LIBRARY, {"json": {"url": "http://169.254.169.254/"}}, 422),
        (LIBRARY, {"json": {"url": server.url("/missing")}}, 422),
        (product_url("P-1"), {"json": {"url": photo}}, 201),
        (product_url("P-1"), {"json": {"url": photo}}, 200),
        (product_url("NOPE"), {"json": {"url": photo}}, 404),
        (CSV, {"data": f"P-1,{photo}\nNOPE,{photo}\nP-1,{page}\n", "content_type": "text/csv"}, 200),
        (CSV, {"json": {}}, 415)]
    for path, kwargs, status in calls:
        response = client.post(path, headers=admin, **kwargs)
        assert response.status_code == status, (path, response.get_json())
        # As tests/api/test_openapi.py checks its scenario: found by method and path, body not needed.
        bare = Request(EnvironBuilder(method="POST", path=path).get_environ())
        openapi.validate_response(WerkzeugOpenAPIRequest(bare), WerkzeugOpenAPIResponse(response))


def test_no_body_reaches_a_server_error(client, editor, admin, monkeypatch):
    """Arbitrary JSON to the single imports and arbitrary bytes as a CSV: each answer is under
    500 and JSON. Names are not looked up (no network in tests): every one fails its lookup."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    real_lookup = socket.getaddrinfo

    def numeric_only(host, port, *args, **kwargs):
        return real_lookup(host, port, *args, flags=socket.AI_NUMERICHOST, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    create_product(client, admin, "P-1")
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40),
                        st.sampled_from(["http://", "http://[::1", "https://x:0/", "http://127.0.0.1:1/",
                                         "http://0x7f.1/", "http://a@b/", "http://\u00e4\u00df.example/"]))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                          st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
    bodies = st.one_of(values, st.fixed_dictionaries({"url": values}, optional={
        "alt": values, "folder": values, "tags": values}))

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies, csv=st.binary(max_size=200))
    def probe(body, csv):
        for path, headers in ((LIBRARY, editor), (product_url("P-1"), admin)):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code < 500 and response.is_json, (path, body, response.get_data())
        response = client.post(CSV, data=csv, content_type="text/csv", headers=admin)
        assert response.status_code < 500 and response.is_json, (csv, response.get_data())

    probe()


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("AVENUE_URL_IMPORT_PORTS", "80,http", "not a port"),
    ("AVENUE_URL_IMPORT_ALLOW_NETWORKS", ["10.0.0.0/8", "intranet"], "not an address"),
    ("AVENUE_URL_IMPORT_RATE_LIMIT", "often", "AVENUE_URL_IMPORT_RATE_LIMIT")])
def test_a_malformed_setting_stops_the_start(app_factory, setting, value, words):
    with pytest.raises(RuntimeError, match=words):
        app_factory(**{setting: value})
