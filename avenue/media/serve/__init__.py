"""Serve: what a media URL names, the one HTTP decision, the Flask route, the front door and
every worker's cache of hot files."""
