"""The hand-written body parsers request models replaced (issue 42), as they were at 41c94dd:
the baseline ``bench/shapes.py`` times the models against. Not used by the app."""

from __future__ import annotations

import math
from typing import Any

from avenue.builder.service import (
    BULK_ACTIONS,
    MAX_BULK_IDS,
    MAX_UNUSED_DAYS,
    clean_colour,
    clean_folder,
    clean_tags,
)
from avenue.errors import BadRequest
from avenue.ids import parse_object_id
from avenue.shop.service import MAX_NAME_LENGTH, MAX_PRICE, SKU_PATTERN
from bson import ObjectId

FILTER_KEYS = ("q", "folder", "tag", "color", "unused")


def clean_unused(days: str | int | None) -> int | None:
    """The ``unused`` filter's age in days (0 to 3650; None: not sent); 400 for anything else."""
    if days is None or days == "":
        return None
    try:
        value = int(days)
    except (TypeError, ValueError):
        value = -1
    if isinstance(days, bool) or not 0 <= value <= MAX_UNUSED_DAYS:
        raise BadRequest(f"unused is a number of days, 0 to {MAX_UNUSED_DAYS}.", code="invalid_unused")
    return value


def parse_bulk(body: dict[str, Any]) -> dict[str, Any]:
    """A bulk call's body checked whole before anything is done (400 otherwise): ``action``,
    ``ids`` (at most :data:`MAX_BULK_IDS`) or ``filter`` (the list's filters; not for
    ``restore``), ``folder`` for ``move``, ``tags`` for ``tag`` / ``untag``, ``force``."""
    unknown = sorted(set(body) - {"action", "ids", "filter", "after", "folder", "tags", "force"})
    if unknown:
        raise BadRequest("Unknown fields in a bulk call.", code="invalid_bulk", unknown_fields=unknown[:10])
    action = body.get("action")
    if action not in BULK_ACTIONS:
        raise BadRequest(f"action is one of {', '.join(BULK_ACTIONS)}.", code="invalid_bulk_action")
    if ("ids" in body) == ("filter" in body):
        raise BadRequest("Send ids (a list) or filter (an object), one of them.", code="invalid_bulk")
    ids: list[ObjectId] | None = None
    filters: dict[str, Any] = {}
    if "ids" in body:
        raw = body["ids"]
        if not isinstance(raw, list) or not raw or not all(isinstance(i, str) for i in raw):
            raise BadRequest("ids is a list of image ids.", code="invalid_bulk")
        if len(raw) > MAX_BULK_IDS:
            raise BadRequest(f"At most {MAX_BULK_IDS} ids a call; send the rest in another call, or "
                             "select them by a filter.", code="too_many_ids", max_ids=MAX_BULK_IDS)
        parsed = [parse_object_id(i) for i in raw]
        malformed = [i for i, oid in zip(raw, parsed, strict=True) if oid is None]
        if malformed:
            raise BadRequest("Some ids are not image ids.", code="invalid_bulk", invalid_ids=malformed[:10])
        ids = list(dict.fromkeys(oid for oid in parsed if oid is not None))
    else:
        filters = body["filter"]
        if action == "restore":
            raise BadRequest("restore takes ids (of the trash), not a filter.", code="invalid_bulk")
        if not isinstance(filters, dict) or set(filters) - set(FILTER_KEYS):
            raise BadRequest(f"filter is an object of {', '.join(FILTER_KEYS)}.", code="invalid_bulk")
        # Checked now, as the list checks them, so a bad filter does nothing.
        clean_folder(filters.get("folder"))
        clean_tags(filters.get("tag"))
        clean_colour(filters.get("color"))
        clean_unused(filters.get("unused"))
        if not isinstance(filters.get("q", ""), str):
            raise BadRequest("filter.q is a string.", code="invalid_bulk")
    after = body.get("after")
    if after is not None and (ids is not None or not isinstance(after, str)):
        raise BadRequest("after is the next cursor of a previous filter call.", code="invalid_bulk")
    folder = None
    if action == "move":
        if not isinstance(body.get("folder"), str):
            raise BadRequest("move needs a folder, like /products/summer.", code="invalid_folder")
        folder = clean_folder(body["folder"])
    tags: list[str] = []
    if action in ("tag", "untag"):
        tags = clean_tags(body.get("tags")) or []
        if not tags or isinstance(body.get("tags"), str):
            raise BadRequest(f"{action} needs tags, a list of strings.", code="invalid_tags")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest("force is true or false.", code="invalid_bulk")
    return dict(action=action, ids=ids, filter=filters, after=after, folder=folder, tags=tags, force=force)


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME_LENGTH:
        raise BadRequest(f"name must be a non-empty string of at most {MAX_NAME_LENGTH} characters.",
                         code="invalid_name")
    return value.strip()


def _price(value: object) -> int | float:
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or not 0 <= value <= MAX_PRICE):
        raise BadRequest(f"price must be a number from 0 to {MAX_PRICE:,}.", code="invalid_price")
    return value


def _sku(value: object) -> str:
    if not isinstance(value, str) or not SKU_PATTERN.fullmatch(value):
        raise BadRequest("sku must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit.", code="invalid_sku")
    return value


def parse_new_product(body: dict[str, Any]) -> dict[str, Any]:
    """create_product's checks before the database (the temp images' type check included)."""
    sku, name, price = _sku(body.get("sku")), _name(body.get("name")), _price(body.get("price"))
    raw_ids = body.get("temp_image_ids") or []
    if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
        raise BadRequest("temp_image_ids must be a list of id strings.", code="invalid_temp_image_ids")
    return {"sku": sku, "name": name, "price": price, "temp_image_ids": raw_ids}


def parse_product_change(body: dict[str, Any]) -> dict[str, Any]:
    """update_product's checks before the database."""
    unknown = sorted(set(body) - {"name", "price"})
    if unknown:
        raise BadRequest(f"Only name and price can be changed here, not {', '.join(unknown)}.",
                         code="invalid_fields", fields=unknown)
    changes: dict[str, str | int | float] = {}
    if "name" in body:
        changes["name"] = _name(body["name"])
    if "price" in body:
        changes["price"] = _price(body["price"])
    if not changes:
        raise BadRequest("Send name and/or price.", code="nothing_to_change")
    return changes
