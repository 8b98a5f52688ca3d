"""The one way the app creates its indexes: only those a collection lacks.

Every start (each gunicorn worker, each CLI command) ensures every index of about 30
collections. ``createIndexes`` on an index that already exists is a no-op on mongod, but it is
still a command per collection that takes the collection's lock for a moment, and on the
embedded database one of its slowest (docs/performance.md, "Measurements behind the
code"). So each collection's indexes are listed first and only the missing ones are sent.

An index that exists under the same name with another definition is sent too, so the server
refuses it (``IndexOptionsConflict``/``IndexKeySpecsConflict``) exactly as before: a changed
definition still fails loudly at start instead of being silently kept. Indexes whose
definition changes on purpose carry it in their name (``avenue/retention.py``).

Where the dialect has no TTL indexes (the embedded database: ``Dialect.ttl_indexes``) a
TTL index is made plain and the app expires its documents (avenue/embedded/expiry.py).
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

from pymongo import IndexModel
from pymongo.collection import Collection

from avenue.dialect import dialect_of

# What index_information() reports that an IndexModel does not spell (the index version).
_REPORTED_ONLY = {"v", "ns"}


def _same(present: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether the index ``present`` (from index_information) is ``wanted`` (an IndexModel's document)."""
    if present is None:
        return False
    if [(field, float(direction) if isinstance(direction, int | float) else direction)
            for field, direction in present["key"]] != \
       [(field, float(direction) if isinstance(direction, int | float) else direction)
            for field, direction in wanted["key"].items()]:
        return False
    options = {k: v for k, v in wanted.items() if k not in {"key", "name"}}
    reported = {k: v for k, v in present.items() if k not in {"key", *_REPORTED_ONLY}}
    return all(reported.get(k) == v for k, v in options.items()) and set(reported) <= set(options)


def create_missing(collection: Collection[Any], models: Sequence[IndexModel]) -> MutableMapping[str, Any]:
    """Create the indexes of ``models`` that ``collection`` does not have as defined (one
    ``listIndexes``, then one ``createIndexes`` only when something is missing); the
    collection's indexes as they were before (``index_information()``), for callers that drop
    obsolete ones."""
    present = collection.index_information()
    if not dialect_of(collection.database).ttl_indexes:
        from avenue.embedded.expiry import plain_indexes

        models = plain_indexes(collection, models, present)
    missing = [model for model in models if not _same(present.get(model.document["name"]), model.document)]
    if missing:
        collection.create_indexes(missing)
    return present
