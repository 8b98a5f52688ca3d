"""Signed, expiring URLs for private media: HMAC-SHA256 over (bucket, file, variant, expiry,
version); and signed rendition URLs (:func:`sign_rendition`): HMAC-SHA256 over (bucket, file,
version, the spec's canonical key), with no expiry, for public renditions off the allow-list.

The first key signs; every key verifies, so rotating SECRET_KEY (old key moved to
SECRET_KEY_FALLBACKS) keeps URLs already handed out valid until they expire. The version
(media/store/replace.py) is signed so that a link opens only the bytes it was handed out for: after
a replace, an old link with the new version written into it is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence


def _mac(key: str | bytes, message: str, purpose: bytes = b"avenue.media.signed-url") -> str:
    if isinstance(key, str):
        key = key.encode()
    # Derive a key for this purpose only, so a media signature is never a session signature
    # (and a rendition's signature never a private URL's).
    derived = hmac.new(key, purpose, hashlib.sha256).digest()
    digest = hmac.new(derived, message.encode(), hashlib.sha256).digest()[:20]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _message(bucket: str, file_id: str, variant: str, expires: int, version: str) -> str:
    # No version (never replaced): the message signed before versions were, so the links of
    # such images already handed out stay valid. A versioned one never equals it.
    suffix = f"\n{version}" if version else ""
    return f"{bucket}\n{file_id}\n{variant}\n{expires}{suffix}"


def sign(key: str | bytes, bucket: str, file_id: str, variant: str, expires: int, version: str = "") -> str:
    """The signature for a media URL of ``version`` valid until ``expires`` (unix seconds)."""
    return _mac(key, _message(bucket, str(file_id), variant, expires, version))


def verify(keys: Sequence[str], bucket: str, file_id: str, variant: str, expires: str | None,
           signature: str | None, now: float | None = None, version: str = "") -> str:
    """``"ok"``, ``"expired"``, ``"invalid"`` or ``"missing"`` for a URL's query values."""
    if not expires or not signature:
        return "missing"
    try:
        expires_at = int(expires)
    except ValueError:
        return "invalid"
    message = _message(bucket, str(file_id), variant, expires_at, version)
    if not any(hmac.compare_digest(_mac(key, message), signature) for key in keys if key):
        return "invalid"
    if expires_at < (time.time() if now is None else now):
        return "expired"
    return "ok"


_RENDITION = b"avenue.media.rendition"


def _rendition_message(bucket: str, file_id: str, version: str, spec_key: str) -> str:
    return f"{bucket}\n{file_id}\n{version}\n{spec_key}"


def sign_rendition(key: str | bytes, bucket: str, file_id: str, version: str, spec_key: str) -> str:
    """The signature that lets a public image's rendition off the allow-list be rendered:
    over the image version and the spec's canonical key (any spelling of the spec, any format)."""
    return _mac(key, _rendition_message(bucket, str(file_id), version, spec_key), _RENDITION)


def verify_rendition(keys: Sequence[str], bucket: str, file_id: str, version: str, spec_key: str,
                     signature: str | None) -> bool:
    """Whether ``signature`` was made by one of ``keys`` for this rendition."""
    if not signature:
        return False
    message = _rendition_message(bucket, str(file_id), version, spec_key)
    return any(hmac.compare_digest(_mac(key, message, _RENDITION), signature) for key in keys if key)
