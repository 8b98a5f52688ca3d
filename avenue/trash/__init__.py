"""The trash API (/api/trash): deleted media listed, restored with its references, purged."""

from avenue.trash.views import bp

__all__ = ["bp"]
