"""Operations: the commands that run the media package's jobs, and what is not the store's.

The jobs themselves (the legacy-folder import, garbage collection, fsck, backup/restore, the
re-render of what is stale, the backfills) take the database and return a report; they are the
media package's (avenue/media/upkeep/, through the ``avenue.media.maintenance`` door).
Here: ``commands.py``, the thin click commands that run them under their locks (``lock.py``),
audit what they changed and print their reports; ``backup.py``, backup and restore with the
accounts the archive carries by their rules; ``rerender.py``, the re-render's run under its
lock and the API's background run of it (``views.py``); ``rendition_budget.py``, the renditions'
byte budget kept by a background job; ``redirects.py``, the old ``/uploads/`` paths' redirects.
"""
