"""Shop: products and their images (GridFS buckets temp_images and product_images_data)."""

from __future__ import annotations

from avenue.shop.views import bp

__all__ = ["bp"]
