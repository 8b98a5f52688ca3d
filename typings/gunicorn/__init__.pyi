# gunicorn 27.0.1: only what avenue/ uses.
version_info: tuple[int, ...]
__version__: str
SERVER: str
SERVER_SOFTWARE: str
