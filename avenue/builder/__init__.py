"""Website builder: the media library (GridFS bucket builder_media) and pages."""

from avenue.builder.views import bp

__all__ = ["bp"]
