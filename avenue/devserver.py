"""``make run``: start the embedded database (unless MONGO_URI is set) and the app.

The embedded SecantusDB runs as a separate process with its data in ``var/db`` (so images
survive restarts); gunicorn serves the app on http://127.0.0.1:8000. Ctrl-C stops both.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from avenue import envfile
from avenue.config import PROJECT_ROOT, embedded_cache_size, embedded_uri
from avenue.embedded import EmbeddedServer

DEFAULT_ADMIN = "admin@avenue.local"


def _secret_key(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _bootstrap_admin(env: dict) -> None:
    """Make sure an admin exists; print how to log in (a generated password is shown once)."""
    os.environ.update(env)
    from avenue import create_app
    from avenue.auth import service
    from avenue.db import get_db, get_mongo

    app = create_app()
    with app.app_context():
        get_mongo().ensure_indexes()
        db = get_db()
        admin = db.users.find_one({"role": "admin"})
        if admin is not None:
            print(f"  admin login: {admin['email']} (password as set when it was created)")
            return
        email = env.get("AVENUE_ADMIN_EMAIL") or DEFAULT_ADMIN
        password = env.get("AVENUE_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        service.create_user(db, email, password, "admin")
        print(f"  created admin {email} with password: {password}")
        if not env.get("AVENUE_ADMIN_PASSWORD"):
            print("  (generated; shown only this once — keep it)")


def main() -> int:
    envfile.load()  # .env first: its values are the defaults below's overrides
    data_dir = Path(os.environ.get("AVENUE_DATA_DIR", PROJECT_ROOT / "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("AVENUE_ENV", "development")
    env.setdefault("SECRET_KEY", _secret_key(data_dir))
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("PORT", "8000")
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("SESSION_COOKIE_SECURE", "false")
    # /metrics' multiprocess folder, next to the data (gunicorn.conf.py clears its old files at start).
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data_dir / "metrics"))
    server = None
    state = data_dir / "embedded.uri"
    if not env.get("MONGO_URI"):
        if embedded_uri(data_dir):
            print(f"The embedded database for {data_dir} is already running (make run twice?).")
            return 1
        cache = embedded_cache_size()  # avenue/config.py says why 256M
        server = EmbeddedServer(data_dir / "db", cache_size=cache, log_path=data_dir / "secantusd.log")
        print(f"Starting the embedded database (SecantusDB, data in {data_dir / 'db'}, {cache} cache) ...")
        server.start()
        state.write_text(f"{server.uri} {server.process.pid}\n")
        env["MONGO_URI"] = server.uri
        env["AVENUE_EMBEDDED_DATA_PATH"] = str(data_dir / "db")
    gunicorn = None
    try:
        _bootstrap_admin(env)
        url = f"http://{env['HOST']}:{env['PORT']}"
        print(f"Avenue media is running at {url}  (health: {url}/healthz, ready: {url}/readyz)")
        print("  log in: POST /api/auth/login; curl examples in docs/api.md; Ctrl-C stops everything")
        gunicorn = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "--config", "gunicorn.conf.py", "wsgi:app"],
            cwd=PROJECT_ROOT, env=env,
        )

        def stop(signum, frame):
            # Ctrl-C or a supervisor's SIGTERM: let gunicorn finish in-flight requests.
            if gunicorn.poll() is None:
                gunicorn.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        return gunicorn.wait()
    finally:
        if gunicorn is not None and gunicorn.poll() is None:
            gunicorn.kill()
        if server is not None:
            print("Stopping the embedded database ...")
            server.stop()
            state.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
