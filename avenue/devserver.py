"""``make run``: the embedded database and the app (avenue/embedded/devserver.py), with a first admin.

The entry point stays here, above every blueprint in the layers, because it builds the app to
bootstrap its admin; the processes it starts are the embedded wing's, which sits below the
media core and so may not import the app.
"""

from __future__ import annotations

import os
import secrets
import sys

from avenue.embedded import devserver

DEFAULT_ADMIN = "admin@avenue.local"


def _bootstrap_admin(env: dict[str, str]) -> None:
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


if __name__ == "__main__":
    sys.exit(devserver.main(prepare=_bootstrap_admin))
