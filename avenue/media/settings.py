"""The app's settings the store needs, as one typed record.

The trash, replace in place and renders of stored originals need a few numbers of the app's
configuration. They are given them as arguments (``keep_days``, ``redirect_days``), so the
store runs and is tested without Flask; the :class:`~avenue.media.store.library.Library` a
blueprint opens takes them from the app's :class:`~avenue.media.core.Media`
(``Media.settings``: read from the app's config when asked), and the defaults without an app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from avenue.config import DEFAULTS
from avenue.media.formats import DISABLED_SETTING, disabled

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

