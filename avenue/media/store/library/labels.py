"""Labels of an original: what the API may set (alt text, expiry, folder, tags, name), by
compare-and-set on the labels read so the facet counts move from exactly the values replaced."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bson import ObjectId

from avenue.errors import BadRequest
from avenue.media.effects import facets, invalidation
from avenue.media.records import Changed, Image, is_image
from avenue.media.store import replace as replacing
from avenue.media.store.library.reading import Reading
from avenue.media.store.library.shelf import Shelf

SET_ATTEMPTS = 5
# The metadata an API may change on a stored original (everything else describes the bytes).
SETTABLE = frozenset({"alt", "expires_at", "folder", "tags", "name"})


class TooManyTags(BadRequest):
    """Tags added to an image would carry it past the most an image may have."""

    code = "too_many_tags"


class Labels:
    """Set metadata, rename (the public named URL), move to a folder and tag (a rename and a
    set read the image back through ``reading``)."""

    def __init__(self, shelf: Shelf, reading: Reading) -> None:
        self.shelf, self.reading = shelf, reading

    def set_metadata(self, image_id: ObjectId, **fields: Any) -> Image | None:
        """Change what the API may change about an original (alt text, expiry); None if gone."""
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"not settable: {sorted(unknown)}")
        return self._set_from(image_id, lambda _meta: fields)

    def rename(self, image_id: ObjectId, name: str | None) -> Changed | None:
        """Give the original ``image_id`` the readable name ``name`` (a slug of
        avenue/media/names.py; None: none) for its public named URL; None if gone. Every
        worker's cache forgets the image (the URL of the name it had answers 301 from now on,
        within a sync interval on other workers)."""
        before = self.reading.get(image_id)
        if before is None:
            return None
        if before.name == name:
            return Changed(before, False)
        after = self.set_metadata(image_id, name=name)
        if after is None:
            return None
        invalidation.invalidate(self.shelf.db, self.shelf.bucket, [image_id])
        return Changed(after, True)

    def relabel(self, image_id: ObjectId, *, folder: str | None = None, add_tags: Sequence[str] = (),
                remove_tags: Sequence[str] = (), max_tags: int | None = None) -> Image | None:
        """Move an original to ``folder`` and/or add and remove tags, computed on the labels it
        has as the write finds them (a bulk change never undoes an edit made meanwhile); None
        if gone. ``TooManyTags`` when the added tags would carry it past ``max_tags``."""
        def plan(meta: dict[str, Any]) -> dict[str, Any]:
            change: dict[str, Any] = {}
            if folder is not None:
                change["folder"] = folder
            if add_tags or remove_tags:
                tags = [t for t in meta.get("tags") or [] if t not in set(remove_tags)]
                tags += [t for t in add_tags if t not in tags]
                if max_tags is not None and len(tags) > max_tags:
                    raise TooManyTags(f"It would carry {len(tags)} tags; at most {max_tags}.")
                change["tags"] = tags
            return change

        return self._set_from(image_id, plan)

    def _set_from(self, image_id: ObjectId,
                  plan: Callable[[dict[str, Any]], dict[str, Any]]) -> Image | None:
        """Set what ``plan(metadata as read)`` gives, by compare-and-set on the labels read."""
        for _ in range(SET_ATTEMPTS):
            doc = self.shelf.images.find_one({"_id": image_id})
            if doc is None or not is_image(doc):
                return None
            meta = doc["metadata"]
            fields = plan(meta)
            change = {f"metadata.{k}": v for k, v in fields.items()}
            if not change:
                return self.shelf.image(doc)
            # Compare-and-set on the folder and tags read, so the facet counts move from
            # exactly the values replaced (two editors moving one image never count it twice).
            # update_one, then a read: findAndModify scans the collection on the embedded database.
            done = self.shelf.images.update_one({"_id": image_id, "metadata.folder": meta.get("folder"),
                                                 "metadata.tags": meta.get("tags")}, {"$set": change})
            if done.matched_count == 1:
                after = {**doc, "metadata": {**meta, **fields}}
                facets.moved(self.shelf.db, self.shelf.bucket, doc, after)
                return self.reading.get(image_id)
        raise replacing.ImageBusy()  # changed under us every time: a 409, try again
