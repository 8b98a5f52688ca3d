"""gunicorn settings for streaming media: threaded workers, each request on its own thread."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# The worker model. Threads, because the work is blocking I/O (GridFS reads, socket writes of
# large images) and CPU-bound rendering that Pillow runs on a thread pool with the GIL
# released: gevent would put that CPU work on the event loop's one thread and needs pymongo
# and Pillow monkey-patched; sync would give a slow download a whole process. But gunicorn's
# own gthread gives a connection a thread as soon as its first byte arrives and reads the
# head and body with blocking reads and no deadline: ten clients sending a header line every
# 2 s starved /healthz for as long as they stayed. So avenue/server.py's GuardedThreadWorker:
# gthread whose event loop reads request heads (and bodies up to 64 KB) before a thread is
# committed, 408 after GUNICORN_HEADER_TIMEOUT (10 s) for the head, and bodies read by a
# thread held to GUNICORN_BODY_TIMEOUT (10 s without a byte) and GUNICORN_BODY_MIN_RATE
# (1024 bytes/s on average after those 10 s); a response write that cannot hand the client a
# byte for GUNICORN_SEND_TIMEOUT (60 s) fails. A worker with every thread busy stops accepting,
# so new connections go to a worker with a free thread. `python bench/slowclients.py`
# measures what this survives; in production nginx buffers in front (deploy/nginx/avenue.conf).
worker_class = "avenue.server.GuardedThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
# Threads are cheap while they wait; only slow large uploads (and slow downloads) hold one,
# for a bounded time: 32 per worker absorb a few dozen of them (bench/slowclients.py), and
# the serving throughput is the same as with 4 within this machine's run-to-run noise.
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
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
    """Start this worker's status sweep scheduler (avenue/status/sweep.py; one worker sweeps
    at a time, the others see its lease)."""
    app = worker.wsgi
    # Only for the Avenue app: the benchmark serves its baselines with these settings too.
    if "avenue.mongo" not in getattr(app, "extensions", {}):
        return
    from avenue.status import warm_up_status_reports

    warm_up_status_reports(app)
