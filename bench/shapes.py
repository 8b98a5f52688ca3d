#!/usr/bin/env python3
"""What checking a JSON body costs: the request models (pydantic v2) against the hand-written
parsers they replaced, on the hot bodies, in one run.

Each body is checked many times in this process (no database, no HTTP), and each way is timed
as microseconds per body (the best of ``--repeat`` runs of ``--number`` calls):

- **hand**: the parser as it was at 41c94dd (``bench/baselines/hand_parsers.py``; the same
  domain checks ``clean_folder``/``clean_tags`` as the model runs);
- **model**: ``Model.parse`` on the decoded body (``avenue/shapes.py``: strict, the domain
  checks as validators), what ``@takes`` does after ``parse_json``;
- **model from bytes**: ``model_validate_json`` on the raw body (pydantic's own JSON parser;
  not used: Avenue's strict JSON rules live in ``parse_json``), for comparison;
- **TypedDict adapter**: a ``TypeAdapter`` of a ``TypedDict`` with the same constraints and
  no domain validators (products only): the floor of pydantic's own cost;
- **parse_json**: decoding the body with Avenue's strict JSON (paid before either check).

And one product's answer built through its model (``Product``) against the dict it replaced.
For scale, one whole ``PATCH /api/shop/products/{sku}`` through the app in process on
mongomock (routing, auth, parse, write, audit, answer): the median of ``--requests``.

    python3 bench/shapes.py
    python3 bench/shapes.py --out bench/results/shapes-2026-11-26.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import timeit
import uuid
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import mongomock  # noqa: E402
from avenue import create_app  # noqa: E402
from avenue.builder.service import Bulk  # noqa: E402
from avenue.http import parse_json  # noqa: E402
from avenue.shop.service import MAX_NAME_LENGTH, MAX_PRICE, NewProduct, Product, ProductChange  # noqa: E402
from bson import ObjectId  # noqa: E402
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter  # noqa: E402
from tests.support.tokens import issue  # noqa: E402
from typing_extensions import TypedDict  # noqa: E402  (pydantic needs it before Python 3.12)

from baselines import hand_parsers  # noqa: E402


class NewProductDict(TypedDict, total=False):
    """The product body as a TypedDict: pydantic's cost with no domain validator."""

    __pydantic_config__ = ConfigDict(strict=True)  # type: ignore[misc]
    sku: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH)]
    price: Annotated[int, Field(ge=0, le=MAX_PRICE)] | Annotated[float, Field(ge=0, le=MAX_PRICE)]
    temp_image_ids: list[str] | None


BODIES: dict[str, tuple[dict[str, Any], Any, Any, Any]] = {
    "bulk move, 100 ids": ({"action": "move", "ids": [str(ObjectId()) for _ in range(100)],
                            "folder": "/products/summer"}, hand_parsers.parse_bulk, Bulk, None),
    "bulk tag by filter": ({"action": "tag", "tags": ["summer", "Sale"],
                            "filter": {"q": "lamp", "folder": "/products", "tag": ["blue"],
                                       "color": "#C0392B", "unused": 30}},
                           hand_parsers.parse_bulk, Bulk, None),
    "product create": ({"sku": "LAMP-1", "name": "  Desk lamp ", "price": 49.5,
                        "temp_image_ids": [str(ObjectId()) for _ in range(3)]},
                       hand_parsers.parse_new_product, NewProduct, TypeAdapter(NewProductDict)),
    "product change": ({"name": "Desk lamp", "price": 45}, hand_parsers.parse_product_change, ProductChange,
                       None),
}


def product_answer(images: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A product as its answer's fields, its ``images`` image objects of an upload's size."""
    url = "/media/p/6b0401f8b105a9af5236cc98/card.webp"
    image = {"id": str(ObjectId()), "url": url, "content_type": "image/jpeg", "width": 4000, "height": 3000,
             "bytes": 2_000_000, "sha256": "ab" * 32, "filename": "lamp.jpg", "alt": None, "color": "#c0392b",
             "variants": {name: url for name in ("thumb", "card", "gallery", "og")},
             "variant_urls": {name: {"webp": url, "jpg": url} for name in ("thumb", "card", "gallery", "og")},
             "srcset": {"webp": f"{url} 320w, {url} 640w", "jpg": f"{url} 320w"},
             "renditions": {"widths": [320, 640, 960], "srcset": {"avif": url, "webp": url, "jpg": url},
                            "fallback": "jpg", "src": url}, "uploaded_at": "2026-11-26T05:00:00Z"}
    fields = {"sku": "LAMP-1", "name": "Desk lamp", "price": 49.5,
              "images": [dict(image) for _ in range(images)], "legacy_images": 0,
              "created_at": "2026-11-26T05:00:00Z", "updated_at": "2026-11-26T05:00:00Z"}
    return fields, dict(fields)


def per_call(fn: Any, number: int, repeat: int) -> float:
    """Microseconds per call: the best of ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def whole_patch(requests: int) -> float:
    """Milliseconds of one PATCH of a product through the app in process (median)."""
    shared = mongomock.MongoClient()
    app = create_app({
        "TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": "bench-shapes",
        "MONGO_URI": "mongodb://localhost", "MONGO_DB": f"bench_{uuid.uuid4().hex[:8]}",
        "MONGO_CLIENT_CLASS": lambda *args, **kwargs: shared, "RATELIMIT_ENABLED": False,
        "AVENUE_STATUS_WARM_UP": False, "AVENUE_HISTORY_INTERVAL_SECONDS": 0, "AVENUE_ACCESS_LOG": "off",
    })
    client = app.test_client()
    with app.app_context():
        from avenue.db import get_db, get_mongo

        get_mongo().ensure_indexes()
        headers = issue(get_db(), "admin")
    created = client.post("/api/shop/products", headers=headers,
                          json={"sku": "LAMP-1", "name": "x", "price": 1})
    assert created.status_code == 201, created.get_json()
    times = []
    for n in range(requests):
        start = time.perf_counter()
        answer = client.patch("/api/shop/products/LAMP-1", headers=headers,
                              json={"name": f"Lamp {n}", "price": n})
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, answer.get_json()
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    lines = [f"µs per body, best of {args.repeat} × {args.number}; {os.cpu_count()} cores, "
             f"Python {sys.version.split()[0]}.", "",
             "| body | bytes | parse_json | hand | model | model ÷ hand | model from bytes "
             "| TypedDict adapter |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, (body, hand, model, adapter) in BODIES.items():
        raw = json.dumps(body).encode()
        assert model.parse(body) == model.model_validate_json(raw)
        decode = per_call(lambda raw=raw: parse_json(raw), args.number, args.repeat)
        by_hand = per_call(lambda body=body, hand=hand: hand(body), args.number, args.repeat)
        by_model = per_call(lambda body=body, model=model: model.parse(body), args.number, args.repeat)
        from_bytes = per_call(lambda raw=raw, model=model: model.model_validate_json(raw), args.number,
                              args.repeat)
        typed = ""
        if adapter:
            floor = per_call(lambda body=body, a=adapter: a.validate_python(body), args.number, args.repeat)
            typed = f"{floor:.1f}"
        lines.append(f"| {label} | {len(raw)} | {decode:.1f} | {by_hand:.1f} | {by_model:.1f} | "
                     f"{by_model / by_hand:.2f} | {from_bytes:.1f} | {typed} |")
    fields, _ = product_answer(5)
    as_dict = per_call(lambda: dict(fields), args.number, args.repeat)
    as_model = per_call(lambda: Product(**fields).answer(), args.number, args.repeat)
    lines += ["", f"A product's answer with 5 image objects (GET /api/shop/products: up to 100 a page): "
                  f"{as_model:.1f} µs through the Product model, {as_dict:.1f} µs as the dict it replaced."]
    lines += ["", f"One whole PATCH /api/shop/products/{{sku}} in process on mongomock: "
                  f"{whole_patch(args.requests):.2f} ms (median of {args.requests})."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
