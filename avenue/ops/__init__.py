"""Operations: the legacy-folder import, garbage collection, fsck, backup/restore, old-path redirects.

Each module's domain functions take the database as an argument and return a report object;
``commands.py`` holds the thin click commands that print those reports.
"""
