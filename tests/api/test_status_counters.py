"""The products' counters kept with every product write: exact differences, a raced recount not
applied (the buckets' counters beside them: tests/media/effects/test_counters.py)."""

from __future__ import annotations

import pytest

from avenue.status import counters as product_counters


def test_a_product_recount_that_a_product_write_raced_is_not_applied(db):
    product_counters.record_product_change(db, None, {"images": []})
    version = product_counters.product_counters(db)["version"]
    product_counters.record_product_change(db, None, {"images": ["/uploads/a.jpg"]})  # lands meanwhile
    result = product_counters.replace_products(db, dict.fromkeys(product_counters.FIELDS, 0), version)
    assert result["applied"] is False and product_counters.product_counters(db)["products"] == 2


@pytest.mark.parametrize(("before", "after", "change"), [
    (None, {"images": []}, {"products": 1}),
    ({"images": []}, {"images": ["/uploads/a.jpg", "https://x/y.jpg"]},
     {"with_images": 1, "references": 2, "local_filesystem": 1, "external": 1}),
    ({"images": [{"id": 1}, {"id": 2}]}, None,
     {"products": -1, "with_images": -1, "references": -2, "stored": -2}),
    ({"images": "not a list"}, {"images": [{"no_id": 1}]}, {"with_images": 1, "references": 1}),
])
def test_a_product_write_counts_exactly_its_difference(db, before, after, change):
    product_counters.record_product_change(db, before, after)
    held = product_counters.product_counters(db)
    assert {k: held[k] for k in product_counters.FIELDS if held[k]} == change
