"""General uploads (GridFS bucket uploads), public or private behind signed URLs."""

from avenue.uploads.views import bp

__all__ = ["bp"]
