"""Old filesystem URLs (``/uploads/...``) answer 301 to the media URL their file was imported as.

Links in emails, caches and old frontends keep working after ``import-legacy``. The mapping
never changes, so the redirect may be cached for a long time; it is not ``immutable`` because
the target carries ``AVENUE_MEDIA_BASE_URL``, which a CDN change may move.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from avenue.errors import plain_error
from avenue.media import AppMedia, Buckets
from avenue.presentation.objects import image_object, signer_from_config

bp = Blueprint("legacy_redirects", __name__)

REDIRECT_CACHE = "public, max-age=2592000"  # 30 days


@bp.route("/uploads/<path:path>", methods=["GET"])
def legacy_upload(path: str) -> BaseResponse:
    """301 to the imported file's URL; 404 for a path that was never imported."""
    image = AppMedia.of(current_app).maintenance.redirect_target(Buckets.LEGACY_PREFIX + path)
    if image is None:
        return plain_error(NotFound())
    response = redirect(image_object(image, signer_from_config(current_app.config))["url"], 301)
    # A private file's URL is signed and expires: never let a cache keep it.
    response.headers["Cache-Control"] = "private, no-store" if image.private else REDIRECT_CACHE
    return response
