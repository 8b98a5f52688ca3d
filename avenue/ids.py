"""ObjectIds from client input: one parser, and the URL converter that uses it.

A route declares ``<oid("media_not_found", "No builder media with this id."):media_id>``: a
malformed id is then a 404 (with that code and message) before any view or permission check
runs, and the view receives an ``ObjectId``.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter, Map


def parse_object_id(value: Any) -> ObjectId | None:
    """The ObjectId ``value`` spells (24 hex digits), or None for anything else."""
    if isinstance(value, ObjectId):
        return value
    if not isinstance(value, str) or len(value) != 24:
        return None
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


class MalformedId(NotFound):
    """A URL whose id cannot name anything: 404 with the resource's own error code."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class ObjectIdConverter(BaseConverter):
    """``<oid:name>`` or ``<oid("code", "message"):name>``: matches one path segment and
    hands the view an ObjectId; a malformed one answers 404 with ``code`` and ``message``."""

    def __init__(self, url_map: Map, code: str = "not_found",
                 message: str = "Nothing is at this address.") -> None:
        super().__init__(url_map)
        self.code = code
        self.message = message

    def to_python(self, value: str) -> ObjectId:
        oid = parse_object_id(value)
        if oid is None:
            raise MalformedId(self.code, self.message)
        return oid

    def to_url(self, value: Any) -> str:
        return str(value)
