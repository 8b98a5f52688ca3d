"""Configuration read from the environment, with documented defaults.

Every variable is listed in ``.env.example`` with its default and, in the comment above it, its
meaning; docs/configuration.md is generated from it (tests/unit/test_docs.py keeps the code, the
file and the page in step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values that must never reach production as a SECRET_KEY.
INSECURE_SECRET_KEYS = frozenset({"", "dev", "change-me", "changeme", "secret", "test"})
# The only environments check() lets an insecure key through, by their exact names.
RELAXED_ENVIRONMENTS = frozenset({"development", "testing", "test"})


# Every AVENUE_* variable something reads (config below, gunicorn.conf.py, avenue/server.py,
# the tests' own AVENUE_TEST_MONGO_URI): any other one set at start is warned about
# (avenue/envfile.py). tests/api/test_configuration.py keeps this equal to .env.example's names.
KNOWN_VARIABLES = frozenset({
    "AVENUE_ENV", "AVENUE_DATA_DIR", "AVENUE_PROXY_COUNT", "AVENUE_MAX_UPLOAD_BYTES", "AVENUE_MAX_PIXELS",
    "AVENUE_MAX_FRAMES", "AVENUE_MAX_TOTAL_PIXELS", "AVENUE_MAX_PRODUCT_IMAGES", "AVENUE_DECODE_BUDGET_BYTES",
    "AVENUE_DECODE_WAIT_SECONDS", "AVENUE_DECODE_LEDGER_DIR", "AVENUE_TEMP_IMAGE_TTL_SECONDS",
    "AVENUE_TRASH_DAYS",
    "AVENUE_TUS_EXPIRY_SECONDS", "AVENUE_TUS_CHUNK_MAX_BYTES", "AVENUE_TUS_MIN_CHUNK_BYTES",
    "AVENUE_TUS_MAX_OPEN_UPLOADS", "AVENUE_TUS_MAX_OPEN_BYTES", "AVENUE_UPLOAD_LINK_DEFAULT_SECONDS",
    "AVENUE_UPLOAD_LINK_MAX_SECONDS", "AVENUE_UPLOAD_LINK_GUESS_LIMIT",
    "AVENUE_REPLACED_REDIRECT_DAYS",
    "AVENUE_SIGNED_URL_TTL_SECONDS", "AVENUE_SOURCE_URL_TTL_SECONDS", "AVENUE_RENDITION_PRESETS",
    "AVENUE_JPEG_XL", "AVENUE_RENDER_CONCURRENCY",
    "AVENUE_RENDITION_BUDGET_BYTES",
    "AVENUE_VARIANTS_AFTER_ANSWER",
    "AVENUE_MEDIA_BASE_URL", "AVENUE_CDN_PURGE_URL", "AVENUE_CDN_PURGE_KEY", "AVENUE_MEDIA_CACHE_BYTES",
    "AVENUE_MEDIA_CACHE_MAX_OBJECT_BYTES", "AVENUE_DELETIONS_STREAM", "AVENUE_DELETIONS_POLL_MS",
    "AVENUE_STATUS_SWEEP_SECONDS",
    "AVENUE_STATUS_SWEEP_BATCH",
    "AVENUE_STATUS_SWEEP_LEASE_SECONDS", "AVENUE_STATUS_WARM_UP", "AVENUE_STATUS_ANSWER_MS",
    "AVENUE_AUDIT_RETENTION_DAYS", "AVENUE_STORAGE_QUOTA_BYTES", "AVENUE_LEGACY_UPLOADS_DIR",
    "AVENUE_EMBEDDED_DATA_PATH", "AVENUE_EMBEDDED_CACHE_SIZE", "AVENUE_ADMIN_EMAIL", "AVENUE_ADMIN_PASSWORD",
    "AVENUE_CORS_ORIGINS",
    "AVENUE_RATELIMIT_ENABLED", "AVENUE_LOGIN_RATE_LIMIT", "AVENUE_LOGIN_ADDRESS_LIMIT",
    "AVENUE_LOGIN_ACCOUNT_LIMIT", "AVENUE_UPLOAD_RATE_LIMIT", "AVENUE_ACCESS_LOG", "AVENUE_LOG_FORMAT",
    "AVENUE_RENDER_ADDRESS_LIMIT", "AVENUE_RENDER_INSTANCE_LIMIT",
    "AVENUE_METRICS_ALLOW", "AVENUE_METRICS_PREPARED_BY",  # the latter set by gunicorn.conf.py itself
    "AVENUE_HISTORY_INTERVAL_SECONDS", "AVENUE_HISTORY_RETENTION_DAYS", "AVENUE_ALERT_THRESHOLDS",
    "AVENUE_DELIVERY_RETENTION_DAYS",
    "AVENUE_ALERT_WEBHOOK_URL", "AVENUE_ALERT_WEBHOOK_KEY",
    "AVENUE_ZIP_MAX_BYTES", "AVENUE_ZIP_MAX_ENTRIES", "AVENUE_ZIP_MAX_TOTAL_BYTES", "AVENUE_ZIP_MAX_RATIO",
    "AVENUE_ZIP_MAX_SECONDS",
    # Test knobs (tests/): not in .env.example.
    "AVENUE_TEST_MONGO_URI", "AVENUE_FUZZ_EXAMPLES", "AVENUE_SCHEMATHESIS_EXAMPLES", "AVENUE_FIXTURES",
})


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (os.environ.get(name) or "").strip().lower() or default
    if raw not in choices:
        raise RuntimeError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# The embedded database's WiredTiger cache (``make run``): small, so the app fits a small
# machine. A larger one does not keep SecantusDB from deadlocking under many large uploads at
# once (a thread drafted into WiredTiger's eviction holds the store's lock that the threads
# pinning the cache wait for): it did with 256M in the tests and with 1G under make run
# (docs/production.md, "The embedded database"); the app answers 503 then instead of hanging
# (MONGO_SOCKET_TIMEOUT_MS).
EMBEDDED_CACHE_SIZE = "256M"


# The oplog bounds of an embedded SecantusDB that runs as a replica set (the tests', the
# benchmarks'; make run's is standalone and has none): SecantusDB's ``--oplog-max-entries`` and
# ``--oplog-retention-seconds``, whose defaults are 100,000 entries and an hour. The app reads
# the oplog only through the media deletions' change stream, which is current to within a second;
# SecantusDB keeps a full copy of every written document there (every 255 KB chunk of every
# upload), so its defaults held 5.5 GB of oplog for 3.75 GB uploaded in 30 minutes
# (docs/production.md, "The embedded database").
EMBEDDED_OPLOG_MAX_ENTRIES = 2000
EMBEDDED_OPLOG_RETENTION_SECONDS = 300


def embedded_cache_size() -> str:
    """``AVENUE_EMBEDDED_CACHE_SIZE`` (``256M``, ``1G``, ...), else :data:`EMBEDDED_CACHE_SIZE`."""
    return (os.environ.get("AVENUE_EMBEDDED_CACHE_SIZE") or "").strip() or EMBEDDED_CACHE_SIZE


def embedded_uri(data_dir: Path) -> str | None:
    """The URI of the embedded database started by ``make run``, if it is running (the state
    file holds ``<uri> <database pid> [<make run's pid>]``, avenue/devserver.py)."""
    state = data_dir / "embedded.uri"
    try:
        uri, pid, *_ = state.read_text().split()
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return None
    return uri


def from_environment() -> dict[str, Any]:
    """Build the app's configuration mapping from ``os.environ``."""
    data_dir = Path(os.environ.get("AVENUE_DATA_DIR", PROJECT_ROOT / "var"))
    mongo_uri = os.environ.get("MONGO_URI")
    secret_key = os.environ.get("SECRET_KEY", "")
    default_env = "production"
    if not mongo_uri:
        # A CLI command next to `make run`: use its embedded database, key and mode.
        mongo_uri = embedded_uri(data_dir)
        if mongo_uri:
            default_env = "development"
            secret_file = data_dir / "secret_key"
            if not secret_key and secret_file.exists():
                secret_key = secret_file.read_text().strip()
    env = os.environ.get("AVENUE_ENV", default_env).strip().lower()
    max_upload = _int("AVENUE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
    max_product_images = _int("AVENUE_MAX_PRODUCT_IMAGES", 10)
    zip_max = _int("AVENUE_ZIP_MAX_BYTES", 100 * 1024 * 1024)
    return {
        "AVENUE_ENV": env,
        "SECRET_KEY": secret_key,
        # Old keys still accepted for sessions and signed media URLs (key rotation).
        "SECRET_KEY_FALLBACKS": _list("SECRET_KEY_FALLBACKS"),
        "MONGO_URI": mongo_uri,
        "MONGO_DB": os.environ.get("MONGO_DB", "avenue"),
        # Proxies in front whose X-Forwarded-For/-Proto/-Host are trusted (ProxyFix, create_app).
        "AVENUE_PROXY_COUNT": _int("AVENUE_PROXY_COUNT", 0),
        # Longer than a replica-set election (typically up to ~12 s), so the driver's one
        # automatic retry of a write lands on the new primary instead of failing.
        "MONGO_TIMEOUT_MS": _int("MONGO_TIMEOUT_MS", 15000),
        # How long the app waits for the database's answer to one command (avenue/db.py says why
        # 30 s); 0: no limit. CLI commands and the whole-bucket recounts get 24 h instead.
        "MONGO_SOCKET_TIMEOUT_MS": _int("MONGO_SOCKET_TIMEOUT_MS", 30000),
        # Durability (avenue/db.py): options spelled in MONGO_URI win over these.
        "MONGO_WRITE_CONCERN": os.environ.get("MONGO_WRITE_CONCERN", "majority"),
        "MONGO_JOURNAL": _bool("MONGO_JOURNAL", True),
        "MONGO_READ_CONCERN": os.environ.get("MONGO_READ_CONCERN", "majority"),
        "AVENUE_DATA_DIR": str(data_dir),
        "AVENUE_MAX_UPLOAD_BYTES": max_upload,
        "AVENUE_MAX_PIXELS": _int("AVENUE_MAX_PIXELS", 40_000_000),
        "AVENUE_MAX_FRAMES": _int("AVENUE_MAX_FRAMES", 100),
        "AVENUE_MAX_TOTAL_PIXELS": _int("AVENUE_MAX_TOTAL_PIXELS", 100_000_000),
        "AVENUE_MAX_PRODUCT_IMAGES": max_product_images,
        # Decoded pixels held at once over all uploads, renders and edits (avenue/media/ingest/budget.py):
        # what bounds the memory whatever the uploads declare; under gunicorn, all its workers
        # together (AVENUE_DECODE_LEDGER_DIR, which the budget reads itself), else this process.
        "AVENUE_DECODE_BUDGET_BYTES": _int("AVENUE_DECODE_BUDGET_BYTES", 192 * 1024 * 1024),
        "AVENUE_DECODE_WAIT_SECONDS": _int("AVENUE_DECODE_WAIT_SECONDS", 20),
        # The whole app's ceiling on a request's body: the largest route's, one product's worth of
        # images plus form overhead or one zip import (each route's own limit: avenue/http.py).
        "MAX_CONTENT_LENGTH": max(max_upload * max_product_images + 1024 * 1024, zip_max),
        # Zip imports (avenue/bulk/): the archive a request may send (held in the worker's memory,
        # one import at a time per worker), its entries, its images' declared total size, and
        # how many times its size an entry over 1 MB may inflate to (more is a zip bomb).
        "AVENUE_ZIP_MAX_BYTES": zip_max,
        "AVENUE_ZIP_MAX_ENTRIES": _int("AVENUE_ZIP_MAX_ENTRIES", 1000),
        "AVENUE_ZIP_MAX_TOTAL_BYTES": _int("AVENUE_ZIP_MAX_TOTAL_BYTES", 2 * 1024 * 1024 * 1024),
        "AVENUE_ZIP_MAX_RATIO": _int("AVENUE_ZIP_MAX_RATIO", 100),
        "AVENUE_ZIP_MAX_SECONDS": max(1, _int("AVENUE_ZIP_MAX_SECONDS", 60)),
        "AVENUE_TEMP_IMAGE_TTL_SECONDS": _int("AVENUE_TEMP_IMAGE_TTL_SECONDS", 24 * 3600),
        # Resumable uploads (avenue/tus/): an unfinished one expires this long after its creation
        # (gc removes its bytes), and one PATCH carries at most this many bytes (413 past it). The
        # default takes a whole photo in one PATCH, as tus clients send by default (tus-js-client's
        # chunkSize and tuspy's chunk_size are unlimited unless set).
        "AVENUE_TUS_EXPIRY_SECONDS": max(60, _int("AVENUE_TUS_EXPIRY_SECONDS", 24 * 3600)),
        "AVENUE_TUS_CHUNK_MAX_BYTES": max(64 * 1024, _int("AVENUE_TUS_CHUNK_MAX_BYTES", 10 * 1024 * 1024)),
        "AVENUE_TUS_MIN_CHUNK_BYTES": max(1, _int("AVENUE_TUS_MIN_CHUNK_BYTES", 256 * 1024)),
        "AVENUE_TUS_MAX_OPEN_UPLOADS": max(1, _int("AVENUE_TUS_MAX_OPEN_UPLOADS", 10)),
        "AVENUE_TUS_MAX_OPEN_BYTES": max(1, _int("AVENUE_TUS_MAX_OPEN_BYTES", 64 * 1024 * 1024)),
        # One-time upload links (avenue/links/): how long a new link lives unless its creator says,
        # and the longest it may (400 past it).
        "AVENUE_UPLOAD_LINK_DEFAULT_SECONDS": max(60, _int("AVENUE_UPLOAD_LINK_DEFAULT_SECONDS", 24 * 3600)),
        "AVENUE_UPLOAD_LINK_MAX_SECONDS": max(60, _int("AVENUE_UPLOAD_LINK_MAX_SECONDS", 7 * 24 * 3600)),
        # Deleted media stays restorable this long (avenue/media/store/trash.py); 0: deletes are final.
        "AVENUE_TRASH_DAYS": max(0, _int("AVENUE_TRASH_DAYS", 30)),
        # An image replaced in place: its earlier URLs redirect to the new ones this long, then
        # answer 404 (avenue/media/store/replace.py).
        "AVENUE_REPLACED_REDIRECT_DAYS": max(0, _int("AVENUE_REPLACED_REDIRECT_DAYS", 30)),
        "AVENUE_SIGNED_URL_TTL_SECONDS": _int("AVENUE_SIGNED_URL_TTL_SECONDS", 3600),
        # An image's unedited original (.../source) is served only by a signed URL handed to its
        # editors, valid this long (avenue/media/serve/objects.py UrlSigner.source_url).
        "AVENUE_SOURCE_URL_TTL_SECONDS": max(60, _int("AVENUE_SOURCE_URL_TTL_SECONDS", 600)),
        # Renditions on request (docs/media.md): named presets served unsigned at 1x-3x
        # (name=options;...; checked when the app starts), and renders one process runs at once.
        "AVENUE_RENDITION_PRESETS": os.environ.get("AVENUE_RENDITION_PRESETS", "").strip(),
        "AVENUE_JPEG_XL": _bool("AVENUE_JPEG_XL", False),
        "AVENUE_RENDER_CONCURRENCY": _int("AVENUE_RENDER_CONCURRENCY", 2),
        "AVENUE_RENDITION_BUDGET_BYTES": _int("AVENUE_RENDITION_BUDGET_BYTES", 10737418240),
        # An upload answers before its variants other than the WebP thumb are rendered; they are
        # rendered right after the answer (or by their first GET): 0.19x the answer time
        # (bench/results/upload-answer-*.md). Off: before the answer.
        "AVENUE_VARIANTS_AFTER_ANSWER": _bool("AVENUE_VARIANTS_AFTER_ANSWER", True),
        "AVENUE_MEDIA_BASE_URL": os.environ.get("AVENUE_MEDIA_BASE_URL", "").rstrip("/"),
        # Deleted public media: a signed POST per image to this webhook (avenue/cdn.py), which
        # purges the CDN; unset, nothing is queued or sent.
        "AVENUE_CDN_PURGE_URL": os.environ.get("AVENUE_CDN_PURGE_URL", ""),
        "AVENUE_CDN_PURGE_KEY": os.environ.get("AVENUE_CDN_PURGE_KEY", ""),
        "AVENUE_MEDIA_CACHE_BYTES": _int("AVENUE_MEDIA_CACHE_BYTES", 128 * 1024 * 1024),
        "AVENUE_MEDIA_CACHE_MAX_OBJECT_BYTES": _int(
            "AVENUE_MEDIA_CACHE_MAX_OBJECT_BYTES", 4 * 1024 * 1024
        ),
        # How deletions reach every worker's media cache (avenue/media/serve/cache.py): `auto`, a
        # change stream except on the embedded SecantusDB (polling there); `on`; `off` (polling).
        "AVENUE_DELETIONS_STREAM": _choice("AVENUE_DELETIONS_STREAM", ("auto", "on", "off"), "auto"),
        # Where deletions are polled: how often, and so how long the event loop answers from
        # the cache after a poll (at least 100 ms; avenue/media/serve/route.py checks).
        "AVENUE_DELETIONS_POLL_MS": _int("AVENUE_DELETIONS_POLL_MS", 1000),
        # The status sweep (avenue/status/sweep.py): the lists of the status reports and the
        # counters' reconciliation, run in the background when its last result is this old.
        "AVENUE_STATUS_SWEEP_SECONDS": _int("AVENUE_STATUS_SWEEP_SECONDS", 900),
        # Documents per read of the sweep: what it holds at once, whatever the store's size.
        "AVENUE_STATUS_SWEEP_BATCH": _int("AVENUE_STATUS_SWEEP_BATCH", 1000),
        # A sweeper that stops renewing its lease (renewed every quarter of it) frees the sweep.
        "AVENUE_STATUS_SWEEP_LEASE_SECONDS": _int("AVENUE_STATUS_SWEEP_LEASE_SECONDS", 60),
        # Each app server worker runs the sweep scheduler (one sweeps at a time, by lease), and a
        # status request that finds no sweep result starts one; off: sweeps run only when asked.
        "AVENUE_STATUS_WARM_UP": _bool("AVENUE_STATUS_WARM_UP", True),
        # A status call whose reads take longer answers this worker's last report, marked stale.
        "AVENUE_STATUS_ANSWER_MS": _int("AVENUE_STATUS_ANSWER_MS", 250),
        # Audit entries older than this are removed by a TTL index (0: kept forever).
        "AVENUE_AUDIT_RETENTION_DAYS": _int("AVENUE_AUDIT_RETENTION_DAYS", 365),
        # Storage history (avenue/monitoring): one sample per interval over all instances (0: off),
        # kept this many days; alerts at these quota percentages, POSTed to the webhook if set.
        "AVENUE_HISTORY_INTERVAL_SECONDS": _int("AVENUE_HISTORY_INTERVAL_SECONDS", 3600),
        "AVENUE_HISTORY_RETENTION_DAYS": _int("AVENUE_HISTORY_RETENTION_DAYS", 90),
        "AVENUE_DELIVERY_RETENTION_DAYS": _int("AVENUE_DELIVERY_RETENTION_DAYS", 90),
        "AVENUE_ALERT_THRESHOLDS": os.environ.get("AVENUE_ALERT_THRESHOLDS", "70,85,95"),
        "AVENUE_ALERT_WEBHOOK_URL": os.environ.get("AVENUE_ALERT_WEBHOOK_URL", ""),
        "AVENUE_ALERT_WEBHOOK_KEY": os.environ.get("AVENUE_ALERT_WEBHOOK_KEY", ""),
        "AVENUE_STORAGE_QUOTA_BYTES": _int("AVENUE_STORAGE_QUOTA_BYTES", 0),
        "AVENUE_LEGACY_UPLOADS_DIR": os.environ.get("AVENUE_LEGACY_UPLOADS_DIR", ""),
        # The embedded database's data folder (set by `make run`): storage-status measures it on disk.
        "AVENUE_EMBEDDED_DATA_PATH": os.environ.get("AVENUE_EMBEDDED_DATA_PATH", ""),
        "AVENUE_ADMIN_EMAIL": os.environ.get("AVENUE_ADMIN_EMAIL", ""),
        "AVENUE_ADMIN_PASSWORD": os.environ.get("AVENUE_ADMIN_PASSWORD", ""),
        "AVENUE_CORS_ORIGINS": _list("AVENUE_CORS_ORIGINS"),
        "RATELIMIT_ENABLED": _bool("AVENUE_RATELIMIT_ENABLED", True),
        # Failed logins (avenue/ratelimit.py LoginThrottle): per account and address, with
        # stepped windows as back-off; per address over all accounts; per account (loose).
        "AVENUE_LOGIN_RATE_LIMIT": os.environ.get("AVENUE_LOGIN_RATE_LIMIT", "10/minute;30/hour"),
        "AVENUE_LOGIN_ADDRESS_LIMIT": os.environ.get("AVENUE_LOGIN_ADDRESS_LIMIT", "30/minute;200/hour"),
        "AVENUE_LOGIN_ACCOUNT_LIMIT": os.environ.get("AVENUE_LOGIN_ACCOUNT_LIMIT", "100/hour;500/day"),
        "AVENUE_UPLOAD_RATE_LIMIT": os.environ.get("AVENUE_UPLOAD_RATE_LIMIT", "120/minute"),
        # Renditions on request rendered unsigned and not stored yet (avenue/ratelimit.py
        # cold_render_gate), per client address and per instance; editors are not counted.
        "AVENUE_RENDER_ADDRESS_LIMIT": os.environ.get("AVENUE_RENDER_ADDRESS_LIMIT", "60/minute;600/hour"),
        "AVENUE_RENDER_INSTANCE_LIMIT": os.environ.get("AVENUE_RENDER_INSTANCE_LIMIT", "600/minute"),
        # Upload-link secrets that match no link, per client address (avenue/links/views.py).
        "AVENUE_UPLOAD_LINK_GUESS_LIMIT": os.environ.get("AVENUE_UPLOAD_LINK_GUESS_LIMIT",
                                                         "20/minute;100/hour"),
        # Logs (avenue/requestlog.py): one line per request, the media front door's answers
        # included (on, or its old name all | off), JSON in production and readable text elsewhere.
        "AVENUE_ACCESS_LOG": os.environ.get("AVENUE_ACCESS_LOG", "on").strip().lower(),
        # Empty: JSON in production, readable text in development and tests (avenue/requestlog.py).
        "AVENUE_LOG_FORMAT": os.environ.get("AVENUE_LOG_FORMAT", "").strip().lower(),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info"),
        # /metrics (avenue/scrape.py): an ops/admin token, or a client address in these networks.
        "AVENUE_METRICS_ALLOW": _list("AVENUE_METRICS_ALLOW"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", env == "production"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", env == "production"),
        "JSON_SORT_KEYS": False,
    }


def check(config: Mapping[str, Any]) -> None:
    """Fail fast on configuration that must not serve anywhere but a developer's machine.

    Checked in every environment except one named exactly ``development``, ``testing`` or
    ``test`` (``make run`` and the tests): a typo, ``prod``, ``staging`` or an empty
    ``AVENUE_ENV`` is checked like production. Every key that can sign a session or a media
    URL is checked, the fallbacks too: a well-known fallback key forges an admin session as
    surely as a well-known SECRET_KEY.
    """
    if config.get("AVENUE_ENV") in RELAXED_ENVIRONMENTS:
        return

    def _insecure(key: object) -> bool:
        return not isinstance(key, str | bytes) or key in INSECURE_SECRET_KEYS or len(key) < 16

    if _insecure(config.get("SECRET_KEY", "")):
        raise RuntimeError(
            "SECRET_KEY is missing or insecure: set SECRET_KEY to a long random value "
            '(python -c "import secrets; print(secrets.token_hex(32))") before starting '
            "in production, or set AVENUE_ENV=development for a local run."
        )
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or []
    if isinstance(fallbacks, str | bytes):
        fallbacks = [fallbacks]
    weak = [str(number) for number, key in enumerate(fallbacks, 1) if _insecure(key)]
    if weak:
        raise RuntimeError(
            f"SECRET_KEY_FALLBACKS holds an insecure key (number {', '.join(weak)} of the list): "
            "every fallback still verifies sessions and signed URLs, so each must be a long "
            "random value too. Remove it, or set AVENUE_ENV=development for a local run."
        )
    if config.get("AVENUE_CDN_PURGE_URL") and _insecure(config.get("AVENUE_CDN_PURGE_KEY", "")):
        raise RuntimeError("AVENUE_CDN_PURGE_URL is set but AVENUE_CDN_PURGE_KEY is missing or short: "
                           "the receiver checks each purge's signature with it.")
    if config.get("AVENUE_ALERT_WEBHOOK_URL") and _insecure(config.get("AVENUE_ALERT_WEBHOOK_KEY", "")):
        raise RuntimeError("AVENUE_ALERT_WEBHOOK_URL is set but AVENUE_ALERT_WEBHOOK_KEY is missing or "
                           "short: the receiver checks each alert's signature with it.")
    if not config.get("MONGO_URI"):
        raise RuntimeError("MONGO_URI is not set: production needs a MongoDB server.")
