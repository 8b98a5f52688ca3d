"""The ``users`` command group: create users, set passwords and roles, (de)activate, and issue,
list and revoke API tokens."""

from __future__ import annotations

import datetime

import click
from flask.cli import AppGroup

from avenue import audit
from avenue.auth import service
from avenue.db import get_db, get_mongo
from avenue.errors import AvenueError
from avenue.terminal import fail

users = AppGroup("users", help="Create users and API tokens.")


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(service.ROLES), required=True)
@click.option("--password", help="Prompted for (hidden, twice) when omitted.")
def create_user(email: str, role: str, password: str | None) -> None:
    """Create a user with a role."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    get_mongo().ensure_indexes()
    try:
        doc = service.create_user(get_db(), email, password, role)
    except AvenueError as error:
        fail(error.message)
    audit.record(get_db(), "user_created", actor={"cli": True}, email=doc["email"], role=doc["role"])
    click.echo(f"created {doc['role']} {doc['email']}")


@users.command("token")
@click.argument("email")
@click.option("--name", default="", help="A label for the token (e.g. the script using it).")
@click.option("--days", type=click.IntRange(min=0), default=service.DEFAULT_TOKEN_DAYS, show_default=True,
              help="How many days the token is valid; 0: until revoked.")
def create_token(email: str, name: str, days: int) -> None:
    """Print a new API token for EMAIL (stored hashed: shown only this once)."""
    get_mongo().ensure_indexes()
    try:
        token = service.issue_token(get_db(), email, name, days=days or None)
    except AvenueError as error:
        fail(error.message)
    audit.record(get_db(), "token_created", actor={"cli": True}, email=service.normalize_email(email),
                 name=name, days=days or None)
    click.echo(token)
    lifetime = f"valid {days} days" if days else "valid until revoked"
    click.echo(f"token created for {service.normalize_email(email)} ({lifetime}); it is not shown again",
               err=True)


@users.command("tokens")
@click.argument("email")
def list_tokens(email: str) -> None:
    """List EMAIL's API tokens: name, created, expires, last used, revoked."""
    try:
        tokens = service.list_tokens(get_db(), email)
    except AvenueError as error:
        fail(error.message)

    def when(moment: datetime.datetime | None) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    click.echo(f"{'name':<20} {'state':<8} {'created':<16} {'expires':<16} last used")
    states = [service.token_state(token) for token in tokens]
    for token, state in zip(tokens, states, strict=True):
        expires = when(token.get("expires_at")) if token.get("expires_at") else "never"
        click.echo(f"{(token.get('name') or '-')[:20]:<20} {state:<8} {when(token.get('created_at')):<16} "
                   f"{expires:<16} {when(token.get('last_used_at'))}")
    click.echo(f"{len(tokens)} token(s) of {service.normalize_email(email)}, {states.count('live')} live")


@users.command("revoke-tokens")
@click.argument("email")
def revoke_tokens(email: str) -> None:
    """Revoke every API token of EMAIL."""
    try:
        count = service.revoke_tokens(get_db(), email)
    except AvenueError as error:
        fail(error.message)
    audit.record(get_db(), "tokens_revoked", actor={"cli": True}, email=service.normalize_email(email),
                 count=count)
    click.echo(f"revoked {count} token(s) of {service.normalize_email(email)}")


@users.command("set-password")
@click.argument("email")
@click.option("--password", help="Prompted for (hidden, twice) when omitted.")
def set_password(email: str, password: str | None) -> None:
    """Set a new password for EMAIL (restored backups carry no password hashes)."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        service.set_password(get_db(), email, password)
    except AvenueError as error:
        fail(error.message)
    audit.record(get_db(), "password_set", actor={"cli": True}, email=service.normalize_email(email))
    click.echo(f"password set for {service.normalize_email(email)}; every session of that user has ended")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(service.ROLES))
def set_role(email: str, role: str) -> None:
    """Give EMAIL another role; the user's open sessions end (API tokens take the new role)."""
    try:
        before = service.set_role(get_db(), email, role)
    except AvenueError as error:
        fail(error.message)
    audit.record(get_db(), "role_changed", actor={"cli": True}, email=before["email"],
                 before=before["role"], role=role)
    click.echo(f"{before['email']} is now {role}; every session of that user has ended")


@users.command("deactivate")
@click.argument("email")
def deactivate(email: str) -> None:
    """Stop EMAIL from logging in; its sessions end and its API tokens stop working."""
    try:
        service.set_active(get_db(), email, False)
    except AvenueError as error:
        fail(error.message)
    audit.record(get_db(), "user_deactivated", actor={"cli": True}, email=service.normalize_email(email))
    click.echo(f"{service.normalize_email(email)} is deactivated; every session has ended")


@users.command("activate")
@click.argument("email")
def activate(email: str) -> None:
    """Let a deactivated EMAIL log in again (sessions ended by the deactivation stay ended)."""
    try:
        service.set_active(get_db(), email, True)
    except AvenueError as error:
        fail(error.message)
    audit.record(get_db(), "user_activated", actor={"cli": True}, email=service.normalize_email(email))
    click.echo(f"{service.normalize_email(email)} is active again")
