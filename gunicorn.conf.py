"""gunicorn settings for streaming media: threaded workers, each request on its own thread."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# gthread: a slow client downloading a large image holds one thread, not a whole worker.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# SO_REUSEPORT lets the kernel spread new connections over the workers evenly.
reuse_port = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Workers are recycled now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 100
# No access log unless asked for (GUNICORN_ACCESS_LOG=- for stdout): a line per image request
# costs throughput, and the load balancer or CDN in front already logs requests.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No control socket: it would be a file in $HOME, and the app writes nothing to local disk.
control_socket_disable = True


def post_worker_init(worker):
    """Compute missing status report snapshots in the background, so the first ops request
    need not (avenue/status/snapshots.py; one worker computes, the others see its lease)."""
    app = worker.wsgi
    # Only for the Avenue app: the benchmark serves its baselines with these settings too.
    if "avenue.mongo" not in getattr(app, "extensions", {}):
        return
    from avenue.status import warm_up_status_reports

    warm_up_status_reports(app)
