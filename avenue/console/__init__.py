"""The console: the browser UI for products, the media library, uploads and ops, at /console/."""

from avenue.console.views import bp

__all__ = ["bp"]
