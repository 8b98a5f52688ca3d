"""Everything that touches the Avenue app: detection, its media core, its server, its users.

Each helper raises ``AppUnavailable`` with a short reason when the part of the app it needs
is missing, so a section can print "app not available: <reason>" and the rest still runs.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import LOOPBACK, BenchError, Procs, free_port, run, wait_http, worker_pids

PRODUCTS_BUCKET = "product_images_data"


class AppUnavailable(RuntimeError):
    """The app (or the part of it a section needs) does not exist or does not work yet."""


def missing_reason(root: Path, python: str) -> str | None:
    """Why the app cannot be benchmarked yet, or None when its entry points exist."""
    if not (root / "avenue" / "__init__.py").exists():
        return "avenue/__init__.py does not exist"
    if not (root / "wsgi.py").exists():
        return "wsgi.py does not exist"
    probe = ("from avenue import create_app\n"
             "from avenue.media import Library, Limits\n")
    try:
        result = run([python, "-c", probe], timeout=60, cwd=root, check=False,
                     env=app_env(root, "mongodb://127.0.0.1:9/x", "x"))
    except BenchError as exc:
        return str(exc)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:]
        return f"import failed: {' '.join(last)}"
    return None


_ROUTES_PROBE = """
import re
from avenue import create_app
app = create_app()
for rule in app.url_map.iter_rules():
    methods = ",".join(sorted(rule.methods - {"HEAD", "OPTIONS"}))
    print(methods, re.sub(r"<[^>]*>", "<>", rule.rule))
"""


def routes(root: Path, python: str, env: dict[str, str]) -> set[str]:
    """The app's routes as "METHOD /path/<>" strings (converters erased), without a server."""
    result = run([python, "-c", _ROUTES_PROBE], timeout=60, cwd=root, env=env, check=False)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise AppUnavailable(f"create_app() failed: {' '.join(last)}")
    found = set()
    for line in result.stdout.splitlines():
        methods, _, path = line.partition(" ")
        for method in methods.split(","):
            found.add(f"{method} {path}")
    return found


def require_route(found: set[str], route: str) -> None:
    """Raise AppUnavailable unless ``route`` ("POST /api/x/<>") exists."""
    if route not in found:
        raise AppUnavailable(f"no route {route}")


SECRET_KEY = "bench-secret-key-not-for-production"


def app_env(root: Path, mongo_uri: str, db_name: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "MONGO_URI": mongo_uri,
        "MONGO_DB": db_name,
        "SECRET_KEY": SECRET_KEY,
        "AVENUE_ENV": "development",
        "PYTHONPATH": str(root),
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------
# The media core, in this process


@dataclass
class MediaCore:
    store: object
    limits_class: type
    image_object: object
    url_signer: type | None
    ensure_indexes: object | None
    image_ref: object | None = None  # what a product stores about an image, when the app has it

    def limits(self, max_bytes: int | None = None):
        if max_bytes is None:
            return self.limits_class()
        return self.limits_class(max_bytes=max_bytes)

    def put(self, db, data: bytes, filename: str, *, bucket: str = PRODUCTS_BUCKET,
            max_bytes: int | None = None):
        """``store`` one image; returns its files document."""
        kwargs = {"filename": filename, "limits": self.limits(max_bytes)}
        params = inspect.signature(self.store).parameters
        if "kind" in params:
            kwargs["kind"] = "product"
        try:
            result = self.store(db, bucket, data, **kwargs)
        except (TypeError, ValueError) as exc:
            if "kind" not in kwargs or "kind" not in str(exc):
                raise
            kwargs.pop("kind")
            result = self.store(db, bucket, data, **kwargs)
        return result.doc

    def url(self, doc: dict, bucket: str = PRODUCTS_BUCKET) -> str:
        params = list(inspect.signature(self.image_object).parameters)
        if len(params) >= 3 and self.url_signer is not None:
            obj = self.image_object(doc, bucket, self.url_signer())
        elif len(params) >= 2:
            obj = self.image_object(doc, bucket)
        else:
            obj = self.image_object(doc)
        return obj["url"]

    def obj(self, doc: dict, bucket: str = PRODUCTS_BUCKET, key: str = "") -> dict:
        """The API's image object for ``doc``, private URLs signed with ``key``."""
        if self.url_signer is None:
            raise AppUnavailable("no UrlSigner in avenue.media")
        return self.image_object(doc, bucket, self.url_signer(key=key))

    def put_private(self, db, data: bytes, filename: str, *, bucket: str = PRODUCTS_BUCKET):
        """``store`` one private image (served at signed URLs only); returns its files document."""
        return self.store(db, bucket, data, filename=filename, limits=self.limits(),
                          kind="product", visibility="private").doc

    def reference(self, doc: dict, bucket: str = PRODUCTS_BUCKET) -> dict:
        """What a product document holds for this image (``image_ref``, else the API object)."""
        if self.image_ref is not None:
            return self.image_ref(doc)
        params = list(inspect.signature(self.image_object).parameters)
        if len(params) >= 3 and self.url_signer is not None:
            return self.image_object(doc, bucket, self.url_signer())
        if len(params) >= 2:
            return self.image_object(doc, bucket)
        return self.image_object(doc)


class WriteTimer:
    """Time spent in ``avenue.media.store.storage.write_files``: the storage part of one ``store``
    (the original and its 8 variants, written as one batch).

    Installed by wrapping the module attribute in this (benchmark) process only.
    """

    def __init__(self) -> None:
        self.ms = 0.0
        self._restore = None

    def install(self) -> bool:
        try:
            storage = importlib.import_module("avenue.media.store.storage")
            original = storage.write_files
        except Exception:  # noqa: BLE001 - no such function: no phase timing
            return False

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.ms += (time.perf_counter() - t0) * 1000

        storage.write_files = timed
        self._restore = lambda: setattr(storage, "write_files", original)
        return True

    def take(self) -> float:
        value, self.ms = self.ms, 0.0
        return value

    def uninstall(self) -> None:
        if self._restore:
            self._restore()
            self._restore = None


def media_core(root: Path) -> MediaCore:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        media = importlib.import_module("avenue.media")
        # The core's own write path (what Library.store runs), so storage.write_files can be
        # timed; files documents in and out, as the status seed and the ingest loop need.
        originals = importlib.import_module("avenue.media.store.originals")
        store = originals.store
        limits = media.Limits
        try:
            objects = importlib.import_module("avenue.presentation.objects")
        except ImportError:  # a checkout before issue 74 kept the image object in the media package
            objects = importlib.import_module("avenue.media.serve.objects")
        image_ref = objects.image_ref

        def image_object(doc, bucket, signer):
            return objects.image_object(media.Image.from_files_doc(bucket, doc), signer)
    except Exception as exc:  # noqa: BLE001 - any import problem means "not yet"
        raise AppUnavailable(f"avenue.media: {type(exc).__name__}: {exc}") from exc
    ensure = None
    try:
        domain = importlib.import_module("avenue.db").ensure_indexes
        bucket_indexes = getattr(media, "ensure_indexes", None)

        def ensure(db):
            domain(db)
            if bucket_indexes is not None:
                bucket_indexes(db)
    except Exception:  # noqa: BLE001 - optional
        ensure = None
    return MediaCore(store, limits, image_object, getattr(media, "UrlSigner", None), ensure, image_ref)


# --------------------------------------------------------------------------------------
# The app's server


@dataclass
class AppServer:
    proc: object
    port: int
    token: str | None
    notes: list[str]
    ready_at: float = 0.0  # time.monotonic() when it first answered /healthz

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def gunicorn_argv(root: Path, venv_bin: Path, port: int) -> tuple[list[str], list[str]]:
    """The app's own gunicorn config (its worker class and threads, as shipped), with the
    benchmark's 2 workers on loopback."""
    notes = []
    argv = [str(venv_bin / "gunicorn")]
    conf = root / "gunicorn.conf.py"
    if conf.exists():
        argv += ["-c", str(conf)]
        text = conf.read_text(errors="replace")
        for setting in ("accesslog", "max_requests", "preload_app", "timeout", "worker_class"):
            m = re.search(rf"^{setting}\s*=\s*(.+)$", text, re.M)
            if m:
                notes.append(f"gunicorn.conf.py {setting} = {m.group(1).strip()}")
    else:
        notes.append("no gunicorn.conf.py: plain gunicorn flags")
    argv += ["--workers", "2", "--bind", f"{LOOPBACK}:{port}", "wsgi:app"]
    return argv, notes


def flask_cli(root: Path, venv_bin: Path, env: dict, *args: str) -> str:
    result = run([str(venv_bin / "flask"), "--app", "avenue", *args], timeout=90, env=env,
                 cwd=root, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-2:]
        raise AppUnavailable(f"flask {' '.join(args[:2])} failed: {' | '.join(tail)}")
    return result.stdout


def admin_token(root: Path, venv_bin: Path, env: dict) -> str:
    email = "bench-admin@example.com"
    password = "bench-admin-password-123"
    try:
        flask_cli(root, venv_bin, env, "users", "create", email, "--role", "admin",
                  "--password", password)
    except AppUnavailable as exc:
        if "exist" not in str(exc).lower():
            raise
    out = flask_cli(root, venv_bin, env, "users", "token", email)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if len(lines) == 1 and " " not in lines[0]:
        return lines[0]
    candidates = re.findall(r"[A-Za-z0-9_\-.~+/=]{24,}", out)
    if not candidates:
        raise AppUnavailable(f"could not read a token from `users token`: {out.strip()[:120]}")
    return max(candidates, key=len)


def start_app(procs: Procs, root: Path, venv_bin: Path, mongo_uri: str, db_name: str,
              **extra_env: str) -> AppServer:
    port = free_port()
    env = app_env(root, mongo_uri, db_name, PORT=str(port), WEB_CONCURRENCY="2", **extra_env)
    argv, notes = gunicorn_argv(root, venv_bin, port)
    proc = procs.start("app-gunicorn", argv, env=env, cwd=root)
    try:
        wait_http(port, "/healthz", proc, 60, "app (gunicorn)")
    except BenchError as exc:
        tail = procs.log_tail("app-gunicorn", 8).replace("\n", " | ")
        procs.stop(proc)
        raise AppUnavailable(f"{exc}: {tail}") from exc
    ready_at = time.monotonic()
    deadline = time.monotonic() + 30
    while len(worker_pids(proc)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    token = None
    try:
        token = admin_token(root, venv_bin, env)
    except (AppUnavailable, BenchError) as exc:
        notes.append(f"no admin token: {exc}")
    return AppServer(proc, port, token, notes, ready_at)
