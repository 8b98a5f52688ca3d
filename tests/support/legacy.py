"""The old app's disk and documents, as import-legacy finds them (the test files' legacy part)."""

from __future__ import annotations

import json

from tests.helpers import FIXTURES

LEGACY_UPLOADS = FIXTURES / "legacy_uploads"


def load_legacy_db(db) -> None:
    """The old app's documents; its ``uploads`` list of paths becomes ``{path}`` documents."""
    data = json.loads((FIXTURES / "legacy_db.json").read_text())
    db.shop_products.insert_many(data["shop_products"])
    db.page_content.insert_many(data["page_content"])
    db.uploads.insert_many([{"path": path} for path in data["uploads"]])
