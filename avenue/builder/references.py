"""Pages as referrers: the builder's answer to "which pages use this media?".

The builder owns ``page_content``. A page's ``media_ids`` (written in the same update as its
blocks, see avenue/builder/service.py) is its where-used, so every question here is one
query on that indexed field. Pages keep no copy of an image's description (a page read
resolves its blocks from the library), so there is nothing to refresh or fill in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo.collection import Collection
from pymongo.database import Database

from avenue.clock import now
from avenue.db import PAGES, Document
from avenue.media import Buckets, Image, Media

ID_INDEX = [("_id", 1)]
REPOINT_ATTEMPTS = 5


def _repointed(page: dict[str, Any], old: ObjectId, new: ObjectId) -> dict[str, Any]:
    """A page's blocks and media_ids with every use of ``old`` naming ``new`` instead."""
    blocks = [{**block, "media_id": str(new)} if isinstance(block, dict) and block.get("media_id") == str(old)
              else block for block in page.get("blocks") or []]
    media_ids = [new if media_id == old else media_id for media_id in page.get("media_ids") or []]
    return {"blocks": blocks, "media_ids": list(dict.fromkeys(media_ids))}


class PageReferences:
    """The builder media pages refer to (``media_ids``, and each block's ``media_id``)."""

    kind = "pages"
    bucket = Buckets.BUILDER
    collections = (PAGES,)

    def __init__(self, db: Database[Document]) -> None:
        self.db = db

    @property
    def _pages(self) -> Collection[Document]:
        return self.db[PAGES]

    def users(self, image_ids: Sequence[ObjectId], *, text_ids: bool = False) -> dict[ObjectId, set[str]]:
        wanted = list(dict.fromkeys(image_ids))
        if not wanted:
            return {}
        found: dict[ObjectId, set[str]] = {}
        for page in self._pages.find({"media_ids": {"$in": wanted}}, {"slug": 1, "media_ids": 1}):
            for media_id in page.get("media_ids") or []:
                if media_id in wanted:
                    found.setdefault(media_id, set()).add(page["slug"])
        return found

    def repoint(self, old: ObjectId, new: Image, *, within: str | None = None) -> int:
        query: dict[str, Any] = {"media_ids": old} if within is None else {"slug": within, "media_ids": old}
        fields = {"blocks": 1, "media_ids": 1, "updated_at": 1}
        changed = 0
        for page in list(self._pages.find(query, {"_id": 1})):
            for _ in range(REPOINT_ATTEMPTS):
                # By _id alone: a filter of _id plus another field scans on the embedded database.
                seen = self._pages.find_one({"_id": page["_id"]}, fields)
                if seen is None or old not in (seen.get("media_ids") or []):
                    break  # changed meanwhile: it no longer uses ``old``
                # Blocks and media_ids together, as every page write does; a compare-and-set on
                # the page as read, so a concurrent edit is never undone (it is read again).
                change = {**_repointed(seen, old, new.id), "updated_at": now()}
                done = self._pages.update_one({"_id": seen["_id"], "updated_at": seen.get("updated_at")},
                                              {"$set": change})
                if done.modified_count:
                    changed += 1
                    break
        return changed

    def drop(self, image_id: ObjectId) -> list[str]:
        slugs = sorted(page["slug"] for page in self._pages.find({"media_ids": image_id}, {"slug": 1}))
        if slugs:
            # The blocks and the id, in one update per page (as a forced media delete does).
            self._pages.update_many({"media_ids": image_id}, {
                "$pull": {"blocks": {"media_id": {"$in": [str(image_id)]}}, "media_ids": {"$in": [image_id]}},
                "$set": {"updated_at": now()},
            })
        return slugs

    def refresh(self, images: Sequence[Image]) -> int:
        return 0

    def fill_placeholder(self, image_id: ObjectId, placeholder: Mapping[str, str]) -> int:
        return 0

    def lacking_placeholders(self, batch: int) -> Iterator[ObjectId]:
        return iter(())

    def walk(self, after: Any, batch: int) -> Iterator[dict[str, Any]]:
        query = {} if after is None else {"_id": {"$gt": after}}
        cursor = self._pages.find(query, {"slug": 1, "media_ids": 1}).sort("_id", 1).hint(ID_INDEX)
        try:
            for page in cursor.batch_size(batch):
                yield {"_id": page["_id"], "name": page.get("slug"),
                       "images": [{"id": media_id} for media_id in page.get("media_ids") or []],
                       "position": page["_id"]}
        finally:
            cursor.close()

    def rewrite(self, plan: Callable[[list[Any]], Any], *, dry_run: bool,
                progress: Callable[[int, int], None]) -> Iterator[tuple[dict[str, Any], Any]]:
        yield from Media.rewrite_lists(self._pages, "blocks", "slug", plan, _media_ids, dry_run=dry_run,
                                       progress=progress)


def _media_ids(blocks: list[Any]) -> dict[str, Any]:
    """What a page keeps derived from its blocks: the distinct valid ``media_id`` values, in
    order, written in the same update as the blocks."""
    ids = [block["media_id"] for block in blocks
           if isinstance(block, dict) and ObjectId.is_valid(block.get("media_id"))]
    return {"media_ids": [ObjectId(value) for value in dict.fromkeys(ids)]}
