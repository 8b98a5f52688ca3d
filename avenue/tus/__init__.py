"""Resumable uploads by the tus 1.0.0 protocol (``/api/tus``), into the same places as multipart.

Above the blueprints (like the trash): a finished upload goes through the uploads', the
builder's or the shop's own service call, whichever its target names (avenue/targets.py).
"""

from avenue.tus.views import bp

__all__ = ["bp"]
