"""Accounts and access: users, sessions, API tokens, CSRF and roles."""

from avenue.auth.access import User, require, require_role
from avenue.auth.views import bp

__all__ = ["User", "bp", "require", "require_role"]
