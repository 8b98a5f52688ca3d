"""The WSGI entry point gunicorn serves (see Procfile and gunicorn.conf.py)."""

from avenue import create_app

app = create_app()
