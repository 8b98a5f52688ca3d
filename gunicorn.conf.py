"""gunicorn settings for streaming media: threaded workers, each request on its own thread."""

import ctypes
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from dotenv import load_dotenv

# .env first (the working directory's, then the project's): its values feed the settings
# below and every worker's app. Variables already in the environment win.
for _folder in (Path.cwd(), Path(__file__).resolve().parent):
    if (_folder / ".env").is_file():
        load_dotenv(_folder / ".env", override=False)
        break

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# The worker model. Threads, because the work is blocking I/O (GridFS reads, socket writes of
# large images) and CPU-bound rendering that Pillow runs on a thread pool with the GIL
# released: gevent would put that CPU work on the event loop's one thread and needs pymongo
# and Pillow monkey-patched; sync would give a slow download a whole process. But gunicorn's
# own gthread gives a connection a thread as soon as its first byte arrives and reads and
# writes with blocking calls and no deadline: a few dozen slow clients starved /healthz. So
# avenue/server.py's GuardedThreadWorker: gthread whose event loop reads request heads and
# bodies (up to GUNICORN_BUFFER_BODY_BYTES, 16 MiB) before a thread is committed, holds every
# body and every answer to a deadline and a minimum rate (8 KiB/s), gives one client at most a
# quarter of the threads, connections and buffered memory, closes idle connections near
# worker_connections, and answers its own refusals in the API's JSON. Its module docstring
# says what each setting is and why; `python bench/attacks.py` measures what it withstands.
# In production nginx buffers in front as well (deploy/nginx/avenue.conf).
worker_class = "avenue.server.GuardedThreadWorker"
# Two workers unless WEB_CONCURRENCY says otherwise (.env.example, docs/configuration.md): set it
# to the machine's cores, each worker's 32 threads overlap its I/O.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads are cheap while they wait; only slow large uploads (and slow downloads) hold one,
# for a bounded time: 32 per worker absorb a few dozen of them (bench/slowclients.py). They
# cost hot media nothing: the event loop answers cached media without a thread. Before it
# did, 32 threads served a hot 100 KB image at 1.44x Flask-from-disk against 2.02x with 4
# (bench/results/perf-quiet-2026-11-23.md); with it, 4.02x (perf-loop-2026-11-23.md).
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# SO_REUSEPORT lets the kernel spread new connections over the workers evenly.
reuse_port = True
# The app is built once, in the master, and every worker is forked with it (gunicorn's
# preload_app), rather than each worker importing avenue and calling create_app itself.
# Safe because building it starts nothing: the MongoDB client connects on first use
# (avenue/db.py, connect=False: no socket or monitor thread exists at the fork), the
# background work starts in each worker (post_worker_init, below), request ids take a new
# prefix in each forked worker (avenue/requestid.py), and prometheus_client's multiprocess
# values follow the pid that writes them. Measured on the slower 2-core machine, 2 workers
# (/healthz answered, then 1.5 s idle): the server's CPU to start 1.7-2.7 s against 2.8-4.3 (5 starts each),
# its memory (PSS of master and workers) 112 MB against 167, the modules' pages shared by
# the workers; a worker that dies is replaced without building the app again. A bad
# configuration stops the master at once with the app's message ("Error: MONGO_URI is not
# set ...", exit code 1) instead of failing every worker's boot. And a HUP restarts the
# workers on the code the master loaded: to run new code, start a new master (a deploy's
# new container; docs/production.md).
preload_app = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
# Seconds an idle kept-alive connection stays open after its answer was handed to the kernel
# (gunicorn's `keepalive`). Behind a load balancer, set it above the balancer's idle timeout
# (AWS's ALB: 60 s), or the balancer may send a request on a connection this side just closed.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Workers are recycled now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 100
# gunicorn's own access log is off unless asked for (GUNICORN_ACCESS_LOG=- for stdout): the app
# logs each request itself, structured and with its request id (avenue/requestlog.py,
# AVENUE_ACCESS_LOG, on by default).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No control socket: it would be a file in $HOME, and the app writes nothing to local disk.
control_socket_disable = True


# /metrics in prometheus_client's multiprocess mode (avenue/metrics.py): every worker writes
# its values to files in this folder and a scrape on any worker adds them all up. Prepared
# here, as the config is read: the master imports the worker class (and so prometheus_client,
# which picks its mode at import) right after. Once per master: a HUP re-reads this file and
# must not empty the folder under running workers (nor hand new workers another decode ledger
# than the old ones', below). PROMETHEUS_MULTIPROC_DIR chooses it (its *.db files are removed:
# an earlier server's values would be added to this one's), else a fresh folder in /dev/shm
# (memory, not disk) or the temp dir, removed when the master exits.
def _fresh_folder(prefix):
    """A new private folder in /dev/shm (memory, not disk), else in the temp dir."""
    shm = Path("/dev/shm")
    return tempfile.mkdtemp(prefix=prefix, dir=shm if shm.is_dir() else None)


if os.environ.get("AVENUE_METRICS_PREPARED_BY") != str(os.getpid()):
    _wanted = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if _wanted:
        Path(_wanted).mkdir(parents=True, mode=0o700, exist_ok=True)
        for _old in Path(_wanted).glob("*.db"):  # only prometheus_client's files, nothing else
            _old.unlink()
    else:
        _wanted = _fresh_folder("avenue-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _wanted
    # The decode budget's ledger (avenue/media/ingest/decode_budget.py): every worker of this server
    # reserves decoded pixels in one file there, so AVENUE_DECODE_BUDGET_BYTES bounds the
    # instance, not each worker. AVENUE_DECODE_LEDGER_DIR chooses it (nothing is removed: the
    # entries of processes that are gone drop out by themselves, and servers naming the same
    # folder share one budget), else a fresh folder in /dev/shm or the temp dir, removed when
    # the master exits.
    _ledger = os.environ.get("AVENUE_DECODE_LEDGER_DIR")
    if _ledger:
        Path(_ledger).mkdir(parents=True, mode=0o700, exist_ok=True)
    else:
        _ledger = _fresh_folder("avenue-decode-")
    os.environ["AVENUE_DECODE_LEDGER_DIR"] = _ledger
    os.environ["AVENUE_METRICS_PREPARED_BY"] = str(os.getpid())


# glibc's malloc, set here in the master before it forks (its workers inherit both; glibc's own
# MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ win when set; without glibc, nothing):
# - buffers from 1 MiB up are mapped on their own and unmapped by free, so a worker does not
#   keep its last edit's decoded canvases (glibc raises this threshold up to 32 MiB as large
#   buffers come and go, and what is cut from its arenas stays in the RSS);
# - fixing that also fixes the trim threshold at 128 KiB, so it is raised to 4 MiB: a
#   request's freed heap top is not given back only to be faulted in again by the next one.
# Measured on and off: bench/results/mechanisms-2026-11-28-malloc.md (the story:
# docs/performance.md, "Tuning mechanisms on and off").
MMAP_THRESHOLD_BYTES = 1024 * 1024
TRIM_THRESHOLD_BYTES = 4 * 1024 * 1024
for _variable, _option, _bytes in (("MALLOC_MMAP_THRESHOLD_", -3, MMAP_THRESHOLD_BYTES),   # M_MMAP_THRESHOLD
                                   ("MALLOC_TRIM_THRESHOLD_", -1, TRIM_THRESHOLD_BYTES)):  # M_TRIM_THRESHOLD
    if _variable not in os.environ:
        try:
            ctypes.CDLL(None).mallopt(_option, _bytes)  # malloc.h's option numbers
        except (OSError, AttributeError):  # not glibc (musl's mallopt does nothing either)
            pass


# What worker_exit keeps of graceful_timeout for itself after the renders below (the
# deliveries' flush takes up to 2 s): the master kills a worker at graceful_timeout.
EXIT_MARGIN_SECONDS = 3.0


def worker_exit(server, worker):
    """In the exiting worker: finish the variants rendered after uploads' answers (within what
    is left of graceful_timeout since it began stopping: avenue/media/store/pending.py; what is
    left undone, the first GET or fsck --repair renders), count the media front door's last
    answers (avenue/metrics.py), and write the renditions it served since its last flush
    (avenue/media/effects/served.py)."""
    from avenue.metrics import FRONT_DOOR

    app = getattr(worker, "wsgi", None)
    since = getattr(worker, "stopping_since", None)  # avenue/server.py; None: it did not stop gracefully
    if "avenue.mongo" in getattr(app, "extensions", {}) and since is not None:
        from avenue.media.wiring import Route

        left = worker.cfg.graceful_timeout - (time.monotonic() - since) - EXIT_MARGIN_SECONDS
        if not Route.finish_after_answer(left):
            worker.log.warning("stopping: variants rendered after answers are left for their first GET")
    FRONT_DOOR.fold()
    if "avenue.mongo" in getattr(app, "extensions", {}):
        from avenue.media.wiring import Route

        try:
            Route.flush_deliveries(app)
        except Exception:  # noqa: BLE001 - an exiting worker must exit; the loss is 30 s of recency
            pass


def child_exit(server, worker):
    """A worker exited: drop its live gauges from the scrape (its counters still count)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics and decode ledger folders this server created."""
    made = (("PROMETHEUS_MULTIPROC_DIR", "avenue-metrics-"), ("AVENUE_DECODE_LEDGER_DIR", "avenue-decode-"))
    for name, prefix in made:
        folder = Path(os.environ.get(name, ""))
        if folder.name.startswith(prefix):  # made above, not one the operator chose
            shutil.rmtree(folder, ignore_errors=True)


class _NoEmptyListeningLine(logging.Filter):
    """Drops gunicorn's "Listening at:  (pid)" when the master binds nothing (``reuse_port``):
    :func:`when_ready` names the address instead."""

    def filter(self, record):
        return not (record.msg == "Listening at: %s (%s)" and isinstance(record.args, tuple)
                    and record.args[:1] == ("",))


def on_starting(server):
    """Before the master binds: a filter on gunicorn's own log (the arbiter logs its listeners
    after this hook, and with ``reuse_port`` it has none to name)."""
    server.log.error_log.addFilter(_NoEmptyListeningLine())


def when_ready(server):
    """Name the address served. With ``reuse_port`` gunicorn binds no socket in the master (each
    worker binds its own and the kernel spreads connections over them), so its own line would
    read "Listening at:  (pid)", naming nothing (:func:`on_starting` drops that one)."""
    if not server.LISTENERS:
        server.log.info("Listening at: %s (each worker binds it: reuse_port)",
                        ", ".join(f"http://{address}" for address in server.cfg.bind))


def post_worker_init(worker):
    """Start this worker's background work (avenue/__init__.py register_background: the
    indexes and the bootstrap admin, the status sweep scheduler, the history sampler, the CDN
    purge delivery), all of it on threads of its own: nothing here may wait on the database."""
    app = worker.wsgi
    # Only for the Avenue app: the benchmark serves its baselines with these settings too.
    if "avenue.mongo" not in getattr(app, "extensions", {}):
        return
    from avenue import background

    background.start_all(app)
