"""Configuration read from the environment, with documented defaults.

Every variable is listed in ``.env.example`` with its default and, in the comment above it, its
meaning; docs/configuration.md is generated from it (tests/unit/test_docs.py keeps the code, the
file and the page in step).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values that must never reach production as a SECRET_KEY.
INSECURE_SECRET_KEYS = frozenset({"", "dev", "change-me", "changeme", "secret", "test"})
# The only environments check() lets an insecure key through, by their exact names.
RELAXED_ENVIRONMENTS = frozenset({"development", "testing", "test"})


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


def _currency(raw: str) -> str:
    code = raw.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise RuntimeError(f"AVENUE_CURRENCY must be an ISO 4217 code such as EUR or USD, got {raw!r}")
    return code


def _list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# The embedded database's WiredTiger cache (``make run``): small, so the app fits a small
# machine. A larger one does not keep the embedded database from deadlocking under many large uploads at
# once (a thread drafted into WiredTiger's eviction holds the store's lock that the threads
# pinning the cache wait for): it did with 256M in the tests and with 1G under make run
# (docs/production.md, "The embedded database"); the app answers 503 then instead of hanging
# (MONGO_SOCKET_TIMEOUT_MS).
EMBEDDED_CACHE_SIZE = "256M"


# The oplog bounds of an embedded database that runs as a replica set (the benchmarks', the
# tests' change-stream server; make run's and the tests' others are standalone and have none):
# the embedded database's ``--oplog-max-entries`` and ``--oplog-retention-seconds``, whose defaults are
# 100,000 entries and an hour. The app reads the oplog only through the media deletions' change
# stream, which is current to within a second;
# the embedded database keeps a full copy of every written document there (every 255 KB chunk of every
# upload), so its defaults held 5.5 GB of oplog for 3.75 GB uploaded in 30 minutes
# (docs/production.md, "The embedded database").
EMBEDDED_OPLOG_MAX_ENTRIES = 2000
EMBEDDED_OPLOG_RETENTION_SECONDS = 300


def embedded_cache_size() -> str:
    """``AVENUE_EMBEDDED_CACHE_SIZE`` (``256M``, ``1G``, ...), else :data:`EMBEDDED_CACHE_SIZE`."""
    return (os.environ.get("AVENUE_EMBEDDED_CACHE_SIZE") or "").strip() or EMBEDDED_CACHE_SIZE


def embedded_uri(data_dir: Path) -> str | None:
    """The URI of the embedded database started by ``make run``, if it is running (the state
    file holds ``<uri> <database pid> [<make run's pid>]``, avenue/embedded/devserver.py)."""
    state = data_dir / "embedded.uri"
    try:
        uri, pid, *_ = state.read_text().split()
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return None
    return uri


@dataclass(frozen=True)
class Setting:
    """One setting read from the environment: its variable, its typed default (the one place
    it is spelled: tests/api/test_configuration.py checks ``.env.example`` shows the same),
    and how it is read. The type is the default's (``int``, ``bool``, ``str``, ``list``);
    ``minimum``: a smaller number is raised to it; ``choices``: the only values (any other stops
    the start); ``clean``: what a text goes through; ``key``: the app's config key, when it is
    not the variable's name."""

    name: str
    default: Any
    minimum: int | None = None
    choices: tuple[str, ...] = ()
    clean: Callable[[str], str] | None = None
    key: str = ""

    def read(self) -> Any:
        if self.choices:
            return _choice(self.name, self.choices, self.default)
        if isinstance(self.default, bool):
            return _bool(self.name, self.default)
        if isinstance(self.default, int):
            value = _int(self.name, self.default)
            return value if self.minimum is None else max(self.minimum, value)
        if isinstance(self.default, list):
            return _list(self.name)
        raw = os.environ.get(self.name, self.default)
        return self.clean(raw) if self.clean else raw


def _lowered(raw: str) -> str:
    return raw.strip().lower()


MIB = 1024 * 1024
HOUR = 3600
DAY = 24 * HOUR

#: Every setting the app's configuration reads from the environment, with its default. The
#: values that depend on others (the environment's name, the key, the database URI, the data
#: folder, the request ceiling, the cookies' flags) are worked out in :func:`from_environment`.
SETTINGS: tuple[Setting, ...] = (
    # Old keys still accepted for sessions and signed media URLs (key rotation).
    Setting("SECRET_KEY_FALLBACKS", []),
    Setting("MONGO_DB", "avenue"),
    # Proxies in front whose X-Forwarded-For/-Proto/-Host are trusted (ProxyFix, create_app).
    Setting("AVENUE_PROXY_COUNT", 0),
    # Longer than a replica-set election (typically up to ~12 s), so the driver's one
    # automatic retry of a write lands on the new primary instead of failing.
    Setting("MONGO_TIMEOUT_MS", 15000),
    # How long the app waits for the database's answer to one command (avenue/db.py says why
    # 30 s); 0: no limit. CLI commands and the whole-bucket recounts get 24 h instead.
    Setting("MONGO_SOCKET_TIMEOUT_MS", 30000),
    # Durability (avenue/db.py): options spelled in MONGO_URI win over these.
    Setting("MONGO_WRITE_CONCERN", "majority"),
    Setting("MONGO_JOURNAL", True),
    Setting("MONGO_READ_CONCERN", "majority"),
    Setting("AVENUE_MAX_UPLOAD_BYTES", 10 * MIB),
    Setting("AVENUE_MAX_PIXELS", 40_000_000),
    Setting("AVENUE_MAX_FRAMES", 100),
    Setting("AVENUE_MAX_TOTAL_PIXELS", 100_000_000),
    Setting("AVENUE_MAX_PRODUCT_IMAGES", 10),
    # Upload formats turned off (avenue/media/formats.py names them: jpeg, png, webp, gif, avif,
    # heic, svg): refused 415 format_disabled before their decoder reads a byte, and stored
    # images of them get no new rendition (docs/security.md, "Turning a format off"). An
    # unknown name stops the start.
    Setting("AVENUE_DISABLED_FORMATS", []),
    # Decoded pixels held at once over all uploads, renders and edits (avenue/media/ingest/decode_budget.py):
    # what bounds the memory whatever the uploads declare; under gunicorn, all its workers
    # together (AVENUE_DECODE_LEDGER_DIR, which the budget reads itself), else this process.
    Setting("AVENUE_DECODE_BUDGET_BYTES", 192 * MIB),
    Setting("AVENUE_DECODE_WAIT_SECONDS", 20),
    # How long one raster draw of an SVG may take, in its helper's own CPU time, which a loaded
    # machine does not stretch (avenue/media/ingest/svgdraw.py): past it the draw is killed,
    # its render slot freed, an upload refused (413 svg_too_complex) and a stored SVG's
    # rendition or variants remembered as not drawable (422, for a day). An ordinary logo
    # draws at 2560 px in about 0.1 s (a helper's first draw 0.3-0.6 s, its start): 5 s is
    # some 50 times that, and half the 10 s a render waits for a slot.
    Setting("AVENUE_SVG_DRAW_SECONDS", 5, minimum=1),
    # Zip imports (avenue/bulk/): the archive a request may send (held in the worker's memory,
    # one import at a time per worker), its entries, its images' declared total size, and
    # how many times its size an entry over 1 MB may inflate to (more is a zip bomb).
    Setting("AVENUE_ZIP_MAX_BYTES", 100 * MIB),
    Setting("AVENUE_ZIP_MAX_ENTRIES", 1000),
    Setting("AVENUE_ZIP_MAX_TOTAL_BYTES", 2048 * MIB),
    Setting("AVENUE_ZIP_MAX_RATIO", 100),
    Setting("AVENUE_ZIP_MAX_SECONDS", 60, minimum=1),
    Setting("AVENUE_TEMP_IMAGE_TTL_SECONDS", DAY),
    # Imports from a URL (avenue/urlfetch.py, avenue/bulk/): on or off; only these hosts
    # (empty: any; `.example.com`: any name under it); networks trusted although not public
    # (a supplier on the internal network); the ports fetched (empty: any); one URL's whole
    # fetch, redirects included; the redirects followed; URLs fetched per user; a CSV's rows,
    # and how long a CSV import may start new rows.
    Setting("AVENUE_URL_IMPORT", True),
    Setting("AVENUE_URL_IMPORT_HOSTS", []),
    Setting("AVENUE_URL_IMPORT_ALLOW_NETWORKS", []),
    Setting("AVENUE_URL_IMPORT_PORTS", "80,443", clean=str.strip),
    Setting("AVENUE_URL_IMPORT_SECONDS", 20, minimum=1),
    Setting("AVENUE_URL_IMPORT_MAX_REDIRECTS", 5, minimum=0),
    Setting("AVENUE_URL_IMPORT_RATE_LIMIT", "60/minute;600/hour"),
    Setting("AVENUE_URL_IMPORT_MAX_ROWS", 500, minimum=1),
    Setting("AVENUE_URL_IMPORT_MAX_SECONDS", 60, minimum=1),
    # Resumable uploads (avenue/tus/): an unfinished one expires this long after its creation
    # (gc removes its bytes), and one PATCH carries at most this many bytes (413 past it). The
    # default takes a whole photo in one PATCH, as tus clients send by default (tus-js-client's
    # chunkSize and tuspy's chunk_size are unlimited unless set).
    Setting("AVENUE_TUS_EXPIRY_SECONDS", DAY, minimum=60),
    Setting("AVENUE_TUS_CHUNK_MAX_BYTES", 10 * MIB, minimum=64 * 1024),
    Setting("AVENUE_TUS_MIN_CHUNK_BYTES", 256 * 1024, minimum=1),
    Setting("AVENUE_TUS_MAX_OPEN_UPLOADS", 10, minimum=1),
    Setting("AVENUE_TUS_MAX_OPEN_BYTES", 64 * MIB, minimum=1),
    # One-time upload links (avenue/links/): how long a new link lives unless its creator says,
    # and the longest it may (400 past it).
    Setting("AVENUE_UPLOAD_LINK_DEFAULT_SECONDS", DAY, minimum=60),
    Setting("AVENUE_UPLOAD_LINK_MAX_SECONDS", 7 * DAY, minimum=60),
    # Deleted media stays restorable this long (avenue/media/store/trash.py); 0: deletes are final.
    Setting("AVENUE_TRASH_DAYS", 30, minimum=0),
    # An image replaced in place: its earlier URLs redirect to the new ones this long, then
    # answer 404 (avenue/media/store/replace.py).
    Setting("AVENUE_REPLACED_REDIRECT_DAYS", 30, minimum=0),
    Setting("AVENUE_SIGNED_URL_TTL_SECONDS", HOUR),
    # An image's unedited original (.../source) is served only by a signed URL handed to its
    # editors, valid this long (avenue/media/serve/urls.py UrlSigner.source_url).
    Setting("AVENUE_SOURCE_URL_TTL_SECONDS", 600, minimum=60),
    # Renditions on request (docs/media.md): named presets served unsigned at 1x-3x
    # (name=options;...; checked when the app starts), JPEG XL (avenue/media/formats.py), and
    # renders one process runs at once.
    Setting("AVENUE_RENDITION_PRESETS", "", clean=str.strip),
    Setting("AVENUE_JPEG_XL", False),
    Setting("AVENUE_RENDER_CONCURRENCY", 2),
    Setting("AVENUE_RENDITION_BUDGET_BYTES", 10 * 1024 * MIB),
    # An upload answers before its variants other than the WebP thumb are rendered; they are
    # rendered right after the answer (or by their first GET): 0.19x the answer time
    # (bench/results/upload-answer-*.md). Off: before the answer.
    Setting("AVENUE_VARIANTS_AFTER_ANSWER", True),
    Setting("AVENUE_MEDIA_BASE_URL", "", clean=lambda raw: raw.rstrip("/")),
    # The shop's currency (ISO 4217): the console shows product prices in it.
    Setting("AVENUE_CURRENCY", "EUR", clean=_currency),
    # Deleted public media: a signed POST per image to this webhook (avenue/cdn.py), which
    # purges the CDN; unset, nothing is queued or sent.
    Setting("AVENUE_CDN_PURGE_URL", ""),
    Setting("AVENUE_CDN_PURGE_KEY", ""),
    Setting("AVENUE_MEDIA_CACHE_BYTES", 128 * MIB),
    Setting("AVENUE_MEDIA_CACHE_MAX_OBJECT_BYTES", 4 * MIB),
    # How deletions reach every worker's media cache (avenue/media/serve/cache.py): `auto`, a
    # change stream except on the embedded database (polling there); `on`; `off` (polling).
    Setting("AVENUE_DELETIONS_STREAM", "auto", choices=("auto", "on", "off")),
    # Where deletions are polled: how often, and so how long the event loop answers from
    # the cache after a poll (at least 100 ms; avenue/media/serve/route.py checks).
    Setting("AVENUE_DELETIONS_POLL_MS", 1000),
    # The status sweep (avenue/status/sweep.py): the lists of the status reports and the
    # counters' reconciliation, run in the background when its last result is this old.
    Setting("AVENUE_STATUS_SWEEP_SECONDS", 900),
    # Documents per read of the sweep: what it holds at once, whatever the store's size.
    Setting("AVENUE_STATUS_SWEEP_BATCH", 1000),
    # A sweeper that stops renewing its lease (renewed every quarter of it) frees the sweep.
    Setting("AVENUE_STATUS_SWEEP_LEASE_SECONDS", 60),
    # Each app server worker runs the sweep scheduler (one sweeps at a time, by lease), and a
    # status request that finds no sweep result starts one; off: sweeps run only when asked.
    Setting("AVENUE_STATUS_WARM_UP", True),
    # A status call whose reads take longer answers this worker's last report, marked stale.
    Setting("AVENUE_STATUS_ANSWER_MS", 250),
    # Audit entries older than this are removed by a TTL index (0: kept forever).
    Setting("AVENUE_AUDIT_RETENTION_DAYS", 365),
    # Storage history (avenue/monitoring): one sample per interval over all instances (0: off),
    # kept this many days; alerts at these quota percentages, POSTed to the webhook if set.
    Setting("AVENUE_HISTORY_INTERVAL_SECONDS", HOUR),
    Setting("AVENUE_HISTORY_RETENTION_DAYS", 90),
    Setting("AVENUE_DELIVERY_RETENTION_DAYS", 90),
    Setting("AVENUE_ALERT_THRESHOLDS", "70,85,95"),
    Setting("AVENUE_ALERT_WEBHOOK_URL", ""),
    Setting("AVENUE_ALERT_WEBHOOK_KEY", ""),
    Setting("AVENUE_STORAGE_QUOTA_BYTES", 0),
    Setting("AVENUE_LEGACY_UPLOADS_DIR", ""),
    # The embedded database's data folder (set by `make run`): storage-status measures it on disk.
    Setting("AVENUE_EMBEDDED_DATA_PATH", ""),
    Setting("AVENUE_ADMIN_EMAIL", ""),
    Setting("AVENUE_ADMIN_PASSWORD", ""),
    Setting("AVENUE_CORS_ORIGINS", []),
    Setting("AVENUE_RATELIMIT_ENABLED", True, key="RATELIMIT_ENABLED"),
    # Failed logins (avenue/ratelimit.py LoginThrottle): per account and address, with
    # stepped windows as back-off; per address over all accounts; per account (loose).
    Setting("AVENUE_LOGIN_RATE_LIMIT", "10/minute;30/hour"),
    Setting("AVENUE_LOGIN_ADDRESS_LIMIT", "30/minute;200/hour"),
    Setting("AVENUE_LOGIN_ACCOUNT_LIMIT", "100/hour;500/day"),
    Setting("AVENUE_UPLOAD_RATE_LIMIT", "120/minute"),
    # Renditions on request rendered unsigned and not stored yet (avenue/ratelimit.py
    # cold_render_gate), per client address and per instance; editors are not counted.
    Setting("AVENUE_RENDER_ADDRESS_LIMIT", "60/minute;600/hour"),
    Setting("AVENUE_RENDER_INSTANCE_LIMIT", "600/minute"),
    # Upload-link secrets that match no link, per client address (avenue/links/views.py).
    Setting("AVENUE_UPLOAD_LINK_GUESS_LIMIT", "20/minute;100/hour"),
    # Logs (avenue/requestlog.py): one line per request, the media front door's answers
    # included (on, or its old name all | off), JSON in production and readable text elsewhere.
    Setting("AVENUE_ACCESS_LOG", "on", clean=_lowered),
    # Empty: JSON in production, readable text in development and tests (avenue/requestlog.py).
    Setting("AVENUE_LOG_FORMAT", "", clean=_lowered),
    Setting("LOG_LEVEL", "info"),
    # /metrics (avenue/scrape.py): an ops/admin token, or a client address in these networks.
    Setting("AVENUE_METRICS_ALLOW", []),
)

#: Each declared setting's default, by variable (what code outside the app's config reads).
DEFAULTS: Mapping[str, Any] = {setting.name: setting.default for setting in SETTINGS}

# Every AVENUE_* variable something reads (the settings above, from_environment,
# gunicorn.conf.py, avenue/server.py, the tests' own knobs): any other one set at start is
# warned about (avenue/envfile.py). tests/api/test_configuration.py keeps this equal to
# .env.example's names.
KNOWN_VARIABLES = frozenset({
    *(setting.name for setting in SETTINGS if setting.name.startswith("AVENUE_")),
    "AVENUE_ENV", "AVENUE_DATA_DIR",  # from_environment
    "AVENUE_DECODE_LEDGER_DIR",  # the decode budget's ledger (avenue/media/ingest/decode_budget.py)
    "AVENUE_EMBEDDED_CACHE_SIZE",  # embedded_cache_size below
    "AVENUE_METRICS_PREPARED_BY",  # set by gunicorn.conf.py itself
    # Test knobs (tests/): not in .env.example.
    "AVENUE_TEST_MONGO_URI", "AVENUE_FUZZ_EXAMPLES", "AVENUE_SCHEMATHESIS_EXAMPLES", "AVENUE_FIXTURES",
})


def from_environment() -> dict[str, Any]:
    """Build the app's configuration mapping from ``os.environ``: every :data:`SETTINGS`
    entry, and the values worked out from others."""
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
    config = {setting.key or setting.name: setting.read() for setting in SETTINGS}
    secure_cookies = _bool("SESSION_COOKIE_SECURE", env == "production")
    config.update({
        "AVENUE_ENV": env,
        "SECRET_KEY": secret_key,
        "MONGO_URI": mongo_uri,
        "AVENUE_DATA_DIR": str(data_dir),
        # The whole app's ceiling on a request's body: the largest route's, one product's worth of
        # images plus form overhead or one zip import (each route's own limit: avenue/http.py).
        "MAX_CONTENT_LENGTH": max(config["AVENUE_MAX_UPLOAD_BYTES"] * config["AVENUE_MAX_PRODUCT_IMAGES"]
                                  + MIB, config["AVENUE_ZIP_MAX_BYTES"]),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "JSON_SORT_KEYS": False,
    })
    return config


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
