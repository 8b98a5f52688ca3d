# The app server image: the Procfile's gunicorn on a slim Python, as a non-root user.
# Build: docker build -t avenue-media .   Run it with compose.yaml (MongoDB replica set + nginx).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AVENUE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000

# A user of its own: the app writes nothing to disk (metrics go to /dev/shm), so it needs no
# writable folder in the image.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin avenue

WORKDIR /app
# The pinned requirements first: this layer is rebuilt only when they change. The same
# commands as the install in docs/production.md.
COPY requirements.txt ./
RUN python -m pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml README.md Procfile wsgi.py gunicorn.conf.py .env.example ./
COPY avenue ./avenue
RUN python -m pip install --no-cache-dir --no-deps .

USER avenue
EXPOSE 8000
# Liveness only (/healthz touches nothing else); the load balancer's readiness is /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# The Procfile's web process.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
