"""Outbound calls: what the app sends to other servers, and how a receiver knows it is ours.

The app's webhooks (the CDN purge hook, :mod:`avenue.cdn`; the storage alert webhook,
:mod:`avenue.monitoring.alerts`) sign each body with a key the receiver shares:
``X-Avenue-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the Unix time in
``X-Avenue-Timestamp``, so a receiver can check the sender and refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Avenue-Signature"
TIMESTAMP_HEADER = "X-Avenue-Timestamp"


def signature(key: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``key``."""
    return "sha256=" + hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(key: str, body: bytes, moment: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers of a webhook ``body`` sent at ``moment`` (now)."""
    timestamp = str(int(time.time() if moment is None else moment))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(key, timestamp, body)}
