"""The zip import: every image of an archive into the builder's library or onto products,
each through the single-upload path (API: views.py; CLI: commands.py)."""

from avenue.bulk.views import bp

__all__ = ["bp"]
