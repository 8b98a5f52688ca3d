"""``.env`` files: loaded by every entry point, and unknown ``AVENUE_*`` variables reported.

``make run`` (avenue/devserver.py), gunicorn (gunicorn.conf.py, before its settings are read)
and the ``avenue`` / ``flask`` commands load ``.env`` from the working directory, then the
project folder. Values already in the environment win: a platform's settings are never
overridden by a file someone left behind. The app factory never loads it, so tests see only
the environment they set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import load_dotenv

from avenue.config import KNOWN_VARIABLES, PROJECT_ROOT


def load(folders: Iterable[Path] | None = None) -> Path | None:
    """Load the first ``.env`` found (the working directory's, then the project's); its path."""
    for folder in folders if folders is not None else (Path.cwd(), PROJECT_ROOT):
        path = Path(folder) / ".env"
        if path.is_file():
            load_dotenv(path, override=False)
            return path
    return None


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``AVENUE_*`` variables set but read by nothing (a typo, or one a release removed)."""
    environ = os.environ if environ is None else environ
    return sorted(name for name in environ if name.startswith("AVENUE_") and name not in KNOWN_VARIABLES)
