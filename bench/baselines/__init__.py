"""Tiny Flask apps the app is measured against, each run under the same gunicorn settings."""
