"""The WSGI entry point gunicorn serves (see Procfile and gunicorn.conf.py)."""

from avenue import create_app, envfile

envfile.load()  # gunicorn.conf.py loaded it already; other WSGI servers do not
app = create_app()
