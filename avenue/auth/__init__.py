"""Accounts and access: users, sessions, API tokens, CSRF and roles."""

from avenue.auth.access import User, edits_images, require, require_role
from avenue.auth.views import bp

__all__ = ["User", "bp", "edits_images", "require", "require_role"]
