"""The media core as one object: what an app gives the media package, built once per app.

A :class:`Media` holds what a store call needs from the app it runs for: the app's settings
(:class:`MediaSettings`, read from its config when asked), how work left for after the answer
is run (an upload's pending variants, its exact twins' link), what bounds the renders of
stored originals (a render slot), and who refers to images (the owners of referring documents
the app factory hands in: :meth:`Media.referrers`). The route's ``init_app`` builds the app's
one (:class:`avenue.media.serve.route.MediaState`, which adds what serving needs: the cache,
the database, the headers) and keeps it in ``app.extensions["avenue.media"]``, as Flask
extensions keep theirs; a request, a CLI command and a test all build their app with
``create_app`` and so reach the same one, and every
:class:`~avenue.media.store.library.Library` the app opens is handed it. Nothing is kept in a
module: two apps of one process never see each other's settings, and a call behaves by the
Media it is given, not by which app ran ``init_app`` last.

The store is given the few numbers of the app's configuration it needs as arguments
(``keep_days``, ``redirect_days``), so it runs and is tested without Flask; a
:class:`~avenue.media.store.library.Library` a blueprint opens takes them from its Media's
:class:`MediaSettings`.

It lives here, in the kernel, because the store and the effects, which are
handed it, sit below the serving wing that builds it (the ``media-wings`` contract): the one
module every wing may import. ``Media()``, no app at all (a script, a test of the store alone):
the defaults, work done at once, no bound on renders, and no owners of referring documents
(asking it who refers to an image raises: the jobs that decide by it are handed the app's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from avenue.config import DEFAULTS
from avenue.media.formats import DISABLED_SETTING, disabled
from avenue.media.records import Document
from avenue.media.references import IN_BATCH, Owner, Referrers, rewrite_lists
from avenue.media.transform import parse_presets

# The settings' own defaults (avenue/config.py SETTINGS: each spelled once).
DEFAULT_TRASH_DAYS = DEFAULTS["AVENUE_TRASH_DAYS"]
DEFAULT_REDIRECT_DAYS = DEFAULTS["AVENUE_REPLACED_REDIRECT_DAYS"]
DEFAULT_DECODE_BUDGET_BYTES = DEFAULTS["AVENUE_DECODE_BUDGET_BYTES"]
DEFAULT_DECODE_WAIT_SECONDS = float(DEFAULTS["AVENUE_DECODE_WAIT_SECONDS"])
DEFAULT_SVG_DRAW_SECONDS = float(DEFAULTS["AVENUE_SVG_DRAW_SECONDS"])


@dataclass(frozen=True)
class MediaSettings:
    """How long deleted media stays restorable (``AVENUE_TRASH_DAYS``; 0: no trash), how
    long a replaced version's URLs redirect (``AVENUE_REPLACED_REDIRECT_DAYS``; 0: 404 at once),
    the decode budget renders of stored originals count against, as uploads do
    (``AVENUE_DECODE_BUDGET_BYTES``, ``AVENUE_DECODE_WAIT_SECONDS``), and the formats turned
    off (``AVENUE_DISABLED_FORMATS``), whose stored originals those renders refuse."""

    trash_days: float = DEFAULT_TRASH_DAYS
    redirect_days: float = DEFAULT_REDIRECT_DAYS
    decode_budget_bytes: int = DEFAULT_DECODE_BUDGET_BYTES
    decode_wait_seconds: float = DEFAULT_DECODE_WAIT_SECONDS
    # How long one raster draw of an SVG may take (AVENUE_SVG_DRAW_SECONDS).
    svg_draw_seconds: float = DEFAULT_SVG_DRAW_SECONDS
    disabled_formats: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MediaSettings:
        """The settings an app is configured with."""
        return cls(trash_days=float(config.get("AVENUE_TRASH_DAYS", DEFAULT_TRASH_DAYS)),
                   redirect_days=float(config.get("AVENUE_REPLACED_REDIRECT_DAYS", DEFAULT_REDIRECT_DAYS)),
                   decode_budget_bytes=int(config.get("AVENUE_DECODE_BUDGET_BYTES",
                                                      DEFAULT_DECODE_BUDGET_BYTES)),
                   decode_wait_seconds=float(config.get("AVENUE_DECODE_WAIT_SECONDS",
                                                        DEFAULT_DECODE_WAIT_SECONDS)),
                   svg_draw_seconds=float(config.get("AVENUE_SVG_DRAW_SECONDS", DEFAULT_SVG_DRAW_SECONDS)),
                   disabled_formats=disabled(config.get(DISABLED_SETTING)))


@dataclass(frozen=True)
class Purges:
    """What a removal queues for a CDN (avenue/media/effects/purge.py): nothing without a purge
    hook (``AVENUE_CDN_PURGE_URL``); with one, the paths of every public file removed, and a
    rendition's under the name of each preset that renders it too (``preset_names``: the
    canonical key of a preset's options -> its names; the stored rendition names its options,
    not the preset it was asked for by)."""

    enabled: bool = False
    preset_names: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Purges:
        if not config.get("AVENUE_CDN_PURGE_URL"):
            return NO_PURGES
        names: dict[str, set[str]] = {}
        for name, spec in parse_presets(config.get("AVENUE_RENDITION_PRESETS") or "").items():
            names.setdefault(spec.key(), set()).add(name)
        return cls(True, {key: frozenset(found) for key, found in names.items()})


#: No purge hook: a removal queues nothing (a script, a test of the store alone).
NO_PURGES = Purges()


Job = Callable[[], None]
Slot = contextlib.AbstractContextManager[Any]


@dataclass(frozen=True)
class Media:
    """The media package as one app configured it (see the module doc)."""

    # The app's config, read when asked: an app's config may be changed after start, as tests do.
    config: Mapping[str, Any] = field(default_factory=dict)
    # The owners of the documents that refer to images (references.py: products, pages), each
    # built on a database when asked, as the app factory hands them in. None, no app: who
    # refers to an image is not known here, and asking raises (an empty tuple: nothing does).
    owners: tuple[Owner, ...] | None = None
    # What the owners use in answering (references.py): lookups of at most IN_BATCH ids, and
    # their rewrite of a list of references in place.
    IN_BATCH = IN_BATCH
    rewrite_lists = staticmethod(rewrite_lists)

    @property
    def settings(self) -> MediaSettings:
        """The settings the store needs (trash, redirects, decode budget, formats off)."""
        return MediaSettings.from_config(self.config)

    @property
    def purges(self) -> Purges:
        """What a removal queues for the app's CDN (none without a purge hook)."""
        return Purges.from_config(self.config)

    def referrers(self, db: Database[Document]) -> Referrers:
        """The app's owners of referring documents on ``db``, as one :class:`Referrers` (what gc,
        fsck, backup, the backfills, the legacy import and the status sweep ask). Without
        owners (``Media()``, no app) a RuntimeError: a job that took no answer for "nothing
        refers to it" would delete every referenced image."""
        if self.owners is None:
            raise RuntimeError("this Media has no owners of referring documents (Media(), outside an app): "
                               "hand the job the app's (AppMedia.of(app).core), or Media(owners=...)")
        return Referrers(owner(db) for owner in self.owners)

    def later(self, job: Job) -> bool:
        """Run ``job`` once the answer is out; True when that was at once (no answer to wait
        for). Without an app, at once. ``job`` logs its own failures."""
        job()
        return True

    def render_slot(self) -> Slot:
        """What a render of a stored original holds while it runs (no bound without an app)."""
        return contextlib.nullcontext()
