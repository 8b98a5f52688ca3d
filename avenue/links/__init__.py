"""One-time upload links (``/api/upload-links``): a secret that uploads into one target, a
number of times, until it expires or is revoked, without an account.

Above resumable uploads: a holder's tus upload is the tus protocol's (avenue/tus/protocol.py), and
a holder's file goes through the same service call as that target's multipart route
(avenue/targets.py). The links themselves are ``media_upload_links``
(avenue/links/store.py, their only owner).
"""

from avenue.links.store import ensure_indexes
from avenue.links.views import bp

__all__ = ["bp", "ensure_indexes"]
