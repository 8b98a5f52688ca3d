#!/usr/bin/env python3
"""The console's bulk upload in Chromium against single uploads, in one run on a real gunicorn:
time per photo and the workers' extra RSS.

The Procfile's web process (``gunicorn --config gunicorn.conf.py wsgi:app``, its default
workers) on a fresh embedded SecantusDB; photos of about 2 MB (the corpus's 12 MP photo
re-encoded, each made distinct by a JPEG comment so nothing is deduplicated), into the
builder's library:

- **console bulk**: Debian's headless Chromium (Playwright), logged in as an editor, chooses a
  batch of photo files in the library's upload form and presses Upload; the page's queue
  (avenue/console/static/js/upload-queue.js) sends them, 2 at a time, one XHR each, and the
  batch's time runs from the click until the page's summary says every photo is stored;
- **single uploads**: the same number of ``POST /api/builder/media`` from Python, one photo per
  request, 2 at a time (the same client concurrency; ``--concurrency N`` for both).

Per photo: the total wall time ÷ N for each; the ratio console ÷ single (target at most 1.2).
The two kinds run on two fresh gunicorns, warmed up alike, in turn, batch by batch (a change in
the shared machine's load falls on both). RSS: the sum of each server's workers' RSS, sampled
every 50 ms throughout, minus the sum after its warm-up (target under 300 MB extra).

    python3 bench/console_bulk.py                 # 200 photos each way, batches of 50
    python3 bench/console_bulk.py --photos 40 --batch 20 --out bench/results/console-bulk-2026-11-24.md
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from zip_import import two_mb_photo, upload  # noqa: E402

from data import with_comment  # noqa: E402
from harness import LOOPBACK, Procs, against_single_report, free_port, rss_total, wait_http, worker_pids  # noqa: E402

DB = "bench_console_bulk"
CONCURRENCY = 2  # the console queue's (upload-queue.js CONCURRENCY), and the single uploads'
QUEUE_DEFAULT = "export const CONCURRENCY = 2;"


def start_app(procs: Procs, uri: str, name: str) -> tuple[int, object]:
    port = free_port()
    env = dict(os.environ, HOST=LOOPBACK, PORT=str(port), MONGO_URI=uri, MONGO_DB=DB,
               SECRET_KEY=secrets.token_hex(32), AVENUE_ENV="production", PYTHONDONTWRITEBYTECODE="1",
               AVENUE_RATELIMIT_ENABLED="0", AVENUE_HISTORY_INTERVAL_SECONDS="0",
               SESSION_COOKIE_SECURE="0")  # plain http on loopback: the browser must send the cookie
    env.pop("WEB_CONCURRENCY", None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "--config", "gunicorn.conf.py", "wsgi:app"]
    proc = procs.start(f"gunicorn-{name}", argv, env=env, cwd=ROOT)
    wait_http(port, "/healthz", proc, 90, "gunicorn")
    return port, proc


def editor(uri: str) -> tuple[str, str, dict]:
    """A new editor's email, password and API headers."""
    import pymongo
    from avenue.auth import service
    from tests.support.tokens import PASSWORD

    email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
    with pymongo.MongoClient(uri) as client:
        service.create_user(client[DB], email, PASSWORD, "editor")
        token = service.issue_token(client[DB], email)
    return email, PASSWORD, {"Authorization": f"Bearer {token}"}


class PhasedPeak:
    """The largest sum of a server's workers' RSS, sampled every 50 ms, per phase: "upload"
    (a batch being timed) and "reload" (the console's page loading its thumbnails after one)."""

    def __init__(self, master) -> None:
        self.master = master
        self.phase = "upload"
        self.peaks = {"upload": 0, "reload": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = rss_total(worker_pids(self.master))
            self.peaks[self.phase] = max(self.peaks[self.phase], rss)
            time.sleep(0.05)

    def start(self) -> PhasedPeak:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def console_batch(page, paths: list[Path], peak: PhasedPeak | None = None) -> float:
    """Seconds from pressing Upload with ``paths`` chosen until the summary says all are stored."""
    page.get_by_label("Image", exact=True).set_input_files([str(p) for p in paths])
    done = f"Done: {len(paths)} stored of {len(paths)} file(s)."
    start = time.perf_counter()
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_role("status").filter(has_text="Done:").wait_for(timeout=3_600_000)
    seconds = time.perf_counter() - start
    said = page.get_by_role("status").filter(has_text="Done:").inner_text()
    assert said == done, said
    assert page.get_by_label("Overall progress").get_attribute("value") == "100"
    if peak:
        peak.phase = "reload"
    # The page then reloads the library's first page, whose thumbnails are rendered on their
    # first request: let that finish (not timed) so it does not fall on the next batch.
    page.wait_for_function("""() => [...document.querySelectorAll('#media-grid img')]
        .filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete)""",
                           timeout=600_000)
    if peak:
        peak.phase = "upload"
    return seconds


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes (and their reaped children) have used so far."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def client_pids(kind: str) -> list[int]:
    """The client's processes: this one for single uploads (its threads send them, beside the
    RSS samplers'); for the
    console, Chromium's processes and Playwright's driver (children of this one)."""
    import psutil

    me = psutil.Process()
    if kind == "single":
        return [me.pid]
    return [child.pid for child in me.children(recursive=True)  # not the servers and database
            if any(name in child.name() for name in ("chrom", "node"))]


def set_concurrency(value: int) -> None:
    global CONCURRENCY
    CONCURRENCY = value


def single_batch(port: int, headers: dict, photos: list[bytes]) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda photo: upload(port, headers, photo), photos))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="photos each way")
    parser.add_argument("--batch", type=int, default=50, help="photos per batch (the kinds take turns)")
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help="uploads in flight both ways (the page's queue is served with it instead of 2)")
    args = parser.parse_args()
    set_concurrency(args.concurrency)
    from avenue.embedded import EmbeddedServer
    from playwright.sync_api import sync_playwright
    from tests.support.browser import launch, logged_in

    base = two_mb_photo()
    stamp = time.time_ns()
    singles = [with_comment(base, f"single-{stamp}-{n}") for n in range(args.photos)]
    work = BENCH / "work" / "console_bulk"
    procs = Procs(work)
    with tempfile.TemporaryDirectory(prefix="avenue-console-bench-") as folder, \
            sync_playwright() as playwright:
        files = Path(folder) / "photos"
        files.mkdir()
        paths = []
        for n in range(args.photos + 1):  # one more: the console's warm-up
            path = files / f"photo-{n:04d}.jpg"
            path.write_bytes(with_comment(base, f"console-{stamp}-{n}"))
            paths.append(path)
        database = EmbeddedServer(Path(folder) / "db", log_path=work / "secantusd.log")
        work.mkdir(parents=True, exist_ok=True)
        database.start()
        browser = launch(playwright)
        try:
            email, password, headers = editor(database.uri)
            servers = {}
            for kind in ("single", "console"):
                port, master = start_app(procs, database.uri, kind)
                servers[kind] = [port, master, 0]
            # Warm-up alike: one single upload on each (imports, first renders, indexes), then the
            # console's page loaded and one photo through its queue.
            upload(servers["single"][0], headers, with_comment(base, f"warm-single-{stamp}"))
            upload(servers["console"][0], headers, with_comment(base, f"warm-console-{stamp}"))
            context = logged_in(browser, f"http://{LOOPBACK}:{servers['console'][0]}", email, password)
            page = context.new_page()
            if CONCURRENCY != 2:  # the page's module as served, with the other limit
                page.route("**/js/upload-queue.js", lambda route: route.fulfill(
                    response=(fetched := route.fetch()),
                    body=fetched.text().replace(QUEUE_DEFAULT, f"export const CONCURRENCY = {CONCURRENCY};")))
            page.goto("/console/library")
            in_use = page.evaluate("""async () => (await import(new URL('upload-queue.js',
                document.querySelector('script[type=module]').src))).CONCURRENCY""")
            assert in_use == CONCURRENCY, in_use
            console_batch(page, paths[-1:])
            for server in servers.values():
                server[2] = rss_total(worker_pids(server[1]))
            peaks = {kind: PhasedPeak(master).start() for kind, (_, master, _) in servers.items()}
            seconds = {"single": 0.0, "console": 0.0}
            cpu = {"single": [0.0, 0.0], "console": [0.0, 0.0]}  # the workers', the client's
            for start in range(0, args.photos, args.batch):
                chosen = slice(start, start + args.batch)
                for kind in ("single", "console"):
                    workers, clients = worker_pids(servers[kind][1]), client_pids(kind)
                    before = cpu_seconds(workers), cpu_seconds(clients)
                    if kind == "single":
                        seconds[kind] += single_batch(servers["single"][0], headers, singles[chosen])
                    else:
                        seconds[kind] += console_batch(page, paths[chosen], peaks[kind])
                    cpu[kind][0] += cpu_seconds(workers) - before[0]
                    cpu[kind][1] += cpu_seconds(clients) - before[1]
                done = min(start + args.batch, args.photos)
                print(f"{done} photos each way: single {seconds['single']:.1f} s, "
                      f"console {seconds['console']:.1f} s", flush=True)
            for peak in peaks.values():
                peak.stop()
            results = {kind: (seconds[kind], (peaks[kind].peaks["upload"] - after) / 2**20, after / 2**20,
                              *cpu[kind], (peaks[kind].peaks["reload"] - after) / 2**20)
                       for kind, (_, _, after) in servers.items()}
            context.close()
        finally:
            browser.close()
            procs.stop_all()
            database.stop()
    table = report(results, args.photos, args.batch, len(base))
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


def report(results: dict, photos: int, batch: int, size: int) -> str:
    single, console = results["single"], results["console"]
    return against_single_report(
        "Console bulk upload",
        f"Command: `python3 bench/console_bulk.py --photos {photos} --batch {batch} "
        f"--concurrency {CONCURRENCY}`. "
        f"The Procfile's "
        f"gunicorn (its default workers; a fresh one per kind, warmed up alike, used in turn batch by "
        f"batch) on a fresh embedded SecantusDB; {photos} distinct photos of {size / 1e6:.2f} MB each way, "
        f"into the builder's library, {CONCURRENCY} requests at a time both ways: the console's queue in "
        f"headless Chromium (files chosen in the library's form, Upload pressed, timed until the page's "
        f"summary says all stored) and Python's single uploads.",
        "console bulk", "console", single=single, other=console, photos=photos,
        extra_rows=(
            f"| workers' CPU per photo | {single[3] / photos * 1000:.0f} ms | "
            f"{console[3] / photos * 1000:.0f} ms | |",
            f"| client's CPU per photo (Python threads; Chromium and Playwright) | "
            f"{single[4] / photos * 1000:.0f} ms | {console[4] / photos * 1000:.0f} ms | |",
            f"| workers' extra RSS, peak while the page reloads its thumbnails (not timed) | | "
            f"{console[5]:.0f} MB | |",
        ),
        peak_label="workers' extra RSS, peak while uploading")


if __name__ == "__main__":
    sys.exit(main())
