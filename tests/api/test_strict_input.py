"""Strict input: finite, bounded numbers; identifiers matched in full; documented variables read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import make_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw", ['{"sku": "S-1", "name": "x", "price": 1e400}',
                                 '{"sku": "S-1", "name": "x", "price": Infinity}',
                                 '{"sku": "S-1", "name": "x", "price": NaN}',
                                 '{"sku": "S-1", "name": "x", "price": 100000000000000000000}',
                                 '{"sku": "S-1", "name": "x", "price": -Infinity}'])
def test_non_finite_or_oversized_numbers_are_refused_and_nothing_is_stored(client, db, auth, raw):
    response = client.post("/api/shop/products", data=raw, content_type="application/json",
                           headers=auth.token("admin"))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in {"invalid_json", "invalid_price"}
    assert db.shop_products.count_documents({}) == 0


def test_a_deeply_nested_body_is_a_400_not_a_500(client, auth):
    raw = '{"blocks": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.put("/api/builder/pages/deep", data=raw, content_type="application/json",
                          headers=auth.token("editor"))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("query", ["page=100000000000000000000", "page=1000001", "per_page=0", "page=-1"])
def test_out_of_range_pages_are_a_400_for_anyone(client, query):
    response = client.get(f"/api/shop/products?{query}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_pagination"


def test_a_stored_non_finite_price_never_breaks_the_public_list(client, db):
    db.shop_products.insert_one({"sku": "OLD-1", "name": "legacy", "price": float("inf"), "images": []})
    response = client.get("/api/shop/products")
    assert response.status_code == 200
    assert b"Infinity" not in response.data and response.get_json()["items"][0]["price"] is None


def test_a_stored_name_or_price_of_another_type_shows_as_null_as_the_document_says(client, db):
    db.shop_products.insert_one({"sku": "OLD-2", "name": 7, "price": "12", "images": []})
    response = client.get("/api/shop/products/OLD-2")
    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["price"]) == (None, None)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/shop/products", {"sku": "SKU-1\n", "name": "x", "price": 1}),
    ("PUT", "/api/builder/pages/home%0A", {"title": "t", "blocks": []}),
])
def test_identifiers_with_a_trailing_newline_are_refused(client, auth, method, path, body):
    role = "admin" if "shop" in path else "editor"
    response = client.open(path, method=method, json=body, headers=auth.token(role))
    assert response.status_code == 400


def test_every_variable_in_env_example_is_read_by_the_code():
    names = re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M)
    files = [*ROOT.joinpath("avenue").rglob("*.py"), ROOT / "gunicorn.conf.py"]
    sources = "".join(path.read_text() for path in files)
    unread = [name for name in names if f'"{name}"' not in sources and f"'{name}'" not in sources]
    assert names and unread == []


def test_avenue_proxy_count_from_the_environment_trusts_that_many_proxies(backend, db_name, monkeypatch,
                                                                         own_routes):
    monkeypatch.setenv("AVENUE_PROXY_COUNT", "1")
    app = make_app(backend, db_name)
    try:
        assert app.config["AVENUE_PROXY_COUNT"] == 1
        seen = {}

        @app.get("/whoami-test")
        def whoami():
            from flask import request

            seen["ip"] = request.remote_addr
            return "ok"

        app.test_client().get("/whoami-test", headers={"X-Forwarded-For": "203.0.113.9"})
        assert seen["ip"] == "203.0.113.9"
    finally:
        app.extensions["avenue.mongo"].client.close()


def test_a_reorder_list_longer_than_the_product_is_refused_by_its_length_without_an_echo(client, auth):
    import io

    from tests.helpers import image_bytes

    admin = auth.token("admin")
    assert client.post("/api/shop/products", headers=admin,
                       json={"sku": "ORDER-1", "name": "x", "price": 1}).status_code == 201
    added = client.post("/api/shop/products/ORDER-1/images", headers=admin,
                        data={"images": [(io.BytesIO(image_bytes("good/tiny_1x1.png")), "a.png"),
                                         (io.BytesIO(image_bytes("good/palette_transparent.png")), "b.png")]})
    assert added.status_code == 201
    hostile = [f"{n:024x}" for n in range(15_000)]  # (under 500 KB: the test client keeps it in memory)
    refused = client.put("/api/shop/products/ORDER-1/images/order", headers=admin,
                         json={"image_ids": hostile})
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "invalid_order" and error["given"] == 15_000 and error["expected"] == 2
    assert len(refused.get_data()) < 1000  # the ids are not echoed back
