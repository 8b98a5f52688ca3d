"""The console: the browser UI for products, the media library, uploads and ops, at /console/."""

from avenue.console.views import bp, error_page

__all__ = ["bp", "error_page"]
