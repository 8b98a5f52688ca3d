#!/usr/bin/env python3
"""The embedded default (``make run``: SecantusDB under its supervisor, and gunicorn) under a
shop's real mix, through make run's own entry point (``python -m avenue.devserver``, started by
``tests/support/launcher.py``'s :class:`MakeRun` on a fresh data folder and a free port).

1. **soak** (``--minutes``, 60): ``--clients`` (5) concurrent clients, each picking at random:
   product photos (a new product, then ``POST /api/shop/products/{sku}/images``), library
   uploads (``POST /api/builder/media``), tus uploads (tuspy, 1 MiB ``PATCH``es, into the
   library; a failed ``PATCH`` resumed from the server's offset after 1, 3, 5, 10 s as
   tus-js-client does, then the upload terminated), replaces (``PUT`` of a library image or
   a product photo), renditions from the
   image's ``renditions.srcset`` (AVIF, WebP, JPEG ladder; cold the first time a URL is asked,
   warm after), anonymous reads of public originals and variants (each from one of 250
   visitors' addresses, through one trusted proxy: ``AVENUE_PROXY_COUNT=1``), and deletes; a zip import onto
   a new product every ``--zip-every`` s (180); ops polling both status reports every 30 s. The
   photos are 3-8 MB photo-like JPEGs (12-16 MP gradients and grain), each upload made distinct
   by a JPEG comment. Per ``--row-minutes`` (5) row: requests by kind and status, p50/p99,
   SecantusDB's RSS (the pid in ``<data>/embedded.uri``), the data folder's size (``du`` of
   ``<data>/db``), the bytes acknowledged so far, stalls (30 s without any completed request
   while some are in flight) and the supervisor's restarts (``Restarting the embedded
   database`` in make run's log). At the end every acknowledged image still stored is fetched
   and compared with the digest taken right after its upload (or replace).
2. **flood** (the anonymous render flood): per round 6 fresh 12 MP public photos, then from one
   client address (127.0.0.2) ``N`` keep-alive connections (8, then 4) asking once each for the
   96 ladder renditions ``w_1280``..``w_2560`` in AVIF, WebP, JPEG (from ``renditions.srcset``)
   and PNG (the same ladder URL with ``.png``); every answer expected within 60 s (200, or 429 /
   503 with ``Retry-After``). Meanwhile a direct database read every 2 s (5 s timeout); after
   it: a real read within 5 s, ``/readyz`` 200 and a new upload 201.

    .venv/bin/python bench/embedded.py --quick                      # ~3-4 minute smoke run
    .venv/bin/python bench/embedded.py --only flood --before fb4b483
    .venv/bin/python bench/embedded.py --only soak --minutes 10

``--before REF`` runs the same on a git ref's code first (``git worktree add --detach``, removed
at the end), each side on a fresh data folder. Writes ``bench/results/embedded-<date>.md``
(``-<scenario>`` with ``--only``, ``-before`` with ``--sides before``, ``-quick`` with
``--quick``; a run stopped early writes ``bench/work/embedded/aborted.md``) and prints it; logs
and data folders in ``bench/work/embedded/``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # the app, and tests/support's launcher

import psutil  # noqa: E402
import pymongo  # noqa: E402
from PIL import Image  # noqa: E402
from tests.support import tokens  # noqa: E402
from tests.support.client import multipart  # noqa: E402
from tests.support.launcher import ATTACKER, LOOPBACK, MakeRun  # noqa: E402
from tests.support.zips import make_zip  # noqa: E402

import data  # noqa: E402
from harness import BenchError, folder_bytes, rss_mb, stop_after  # noqa: E402

WORK = BENCH / "work" / "embedded"
RESULTS = BENCH / "results"
MB = 1024 * 1024
DB = "avenue"  # make run's database
RESTART_LINE = "Restarting the embedded database"
STALL_SECONDS = 30.0
LADDER_TOP = (1280, 1600, 1920, 2560)
FORMATS = ("avif", "webp", "jpg", "png")
TUS_RETRY_SECONDS = (1, 3, 5, 10)  # a failed PATCH's pauses before it is retried (tus-js-client's)
TIMEOUT, CUT = 0, -1  # statuses of a request without an answer


def say(message: str) -> None:
    print(f"[embedded {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------
# Photos


def camera_photos(folder: Path) -> list[bytes]:
    """Six photo-like JPEGs of 3, 4, 5, 6, 7 and 8 MB (12 and 16 MP, gradients and grain, the
    grain tuned to the size), made once and kept in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for i, target in enumerate((3, 4, 5, 6, 7, 8)):
        path = folder / f"camera-{target}mb.jpg"
        if not path.exists():
            width, height = (4000, 3000) if i % 2 == 0 else (4608, 3456)
            noise, body = 0.15, b""
            for _ in range(6):
                out = io.BytesIO()
                data.photo_like(width, height, 40 + i, noise).save(out, "JPEG", quality=90)
                body = out.getvalue()
                if abs(len(body) - target * MB) <= 0.08 * target * MB:
                    break
                noise = min(1.0, noise * (target * MB / len(body)) ** 1.4)
            path.write_bytes(body)
        photos.append(path.read_bytes())
    return photos


def photo_12mp() -> bytes:
    return data.photo_12mp(ROOT, BENCH / "work" / "data").read_bytes()


def distinct(photo: bytes) -> bytes:
    return data.with_comment(photo, f"embedded bench {uuid.uuid4().hex}")


# --------------------------------------------------------------------------------------
# HTTP


@dataclass
class Answer:
    status: int  # TIMEOUT, CUT: no answer
    headers: dict[str, str]
    body: bytes
    seconds: float


def call(port: int, method: str, path: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 150.0) -> Answer:
    """One request on a fresh connection; never raises for a network failure."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        payload = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, payload,
                      time.monotonic() - started)
    except TimeoutError:
        return Answer(TIMEOUT, {}, b"", time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(CUT, {}, repr(exc).encode(), time.monotonic() - started)
    finally:
        conn.close()


VISITORS = 250  # storefront visitors' addresses (198.51.100.0/24, documentation's own range)


def visitor(rng: random.Random) -> dict[str, str]:
    """An anonymous storefront request's headers: one of :data:`VISITORS` addresses, as the
    proxy in front of the soak's app forwards it."""
    return {"X-Forwarded-For": f"198.51.100.{rng.randrange(VISITORS)}"}


def status_name(status: int) -> str:
    return {TIMEOUT: "timeout", CUT: "cut"}.get(status, str(status))


def media_path(url: str) -> str:
    return url[url.index("/media/"):]


def as_json(answer: Answer) -> dict:
    try:
        value = json.loads(answer.body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def srcset_paths(image: dict) -> dict[str, list[tuple[int, str]]]:
    """``renditions.srcset`` as {format: [(ladder width, path)]}."""
    found: dict[str, list[tuple[int, str]]] = {}
    for fmt, srcset in ((image.get("renditions") or {}).get("srcset") or {}).items():
        for entry in srcset.split(","):
            url = entry.strip().split(" ")[0]
            match = re.search(r"/w_(\d+)\.", url)
            if url and match:
                found.setdefault(fmt, []).append((int(match.group(1)), media_path(url)))
    return found


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------------------
# The run's records: every request, what was acknowledged, the samples


@dataclass
class Event:
    at: float  # seconds from the start, when it finished
    kind: str
    status: int
    seconds: float


@dataclass
class Stored:
    """An acknowledged image: where it is and the digest of its bytes right after the upload."""

    kind: str  # product, library, tus, zip
    id: str
    path: str
    digest: str | None
    size: int  # the stored original's bytes
    image: dict
    sku: str | None = None
    busy: bool = False
    uncertain: bool = False  # a replace without an answer: either version may be there


class Run:
    """What the clients did and saw, and what the samplers measured."""

    def __init__(self, make_run: MakeRun) -> None:
        self.make_run = make_run
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.in_flight = 0
        self.last_done = self.started
        self.stalls: list[tuple[float, float]] = []  # (start, end) seconds from the start
        self.stall_open: float | None = None
        self.stored: list[Stored] = []
        self.deleted = 0
        self.lost_track: list[Stored] = []  # a delete without an answer, or answered 503
        self.acked: list[tuple[float, int]] = []  # (when, bytes sent) of every acknowledged upload
        self.samples: list[tuple[float, float, float | None, int]] = []  # (when, RSS MB, du MB, restarts)
        self.seen_renditions: set[str] = set()
        self.digest_mismatch_at_upload: list[str] = []
        self.stop = threading.Event()
        self.tokens: dict[str, dict[str, str]] = {}  # role -> headers, made while the database answered

    def now(self) -> float:
        return time.monotonic() - self.started

    def request(self, kind: str, method: str, path: str, **kwargs) -> Answer:
        with self.lock:
            self.in_flight += 1
        answer = call(self.make_run.port, method, path, **kwargs)
        self.done(kind, answer.status, answer.seconds)
        return answer

    def done(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.in_flight -= 1
            self.last_done = time.monotonic()
            self.events.append(Event(self.now(), kind, status, seconds))

    def begin(self) -> float:
        with self.lock:
            self.in_flight += 1
        return time.monotonic()

    def acknowledge(self, stored: Stored, sent: int) -> None:
        with self.lock:
            self.stored.append(stored)
            self.acked.append((self.now(), sent))

    def take(self, rng: random.Random, kinds: tuple[str, ...] | None = None, keep: int = 0) -> Stored | None:
        """A stored image no other client is working on (marked busy), if more than ``keep`` are stored."""
        with self.lock:
            free = [s for s in self.stored
                    if not s.busy and not s.uncertain and (kinds is None or s.kind in kinds)]
            if len(self.stored) <= keep or not free:
                return None
            chosen = rng.choice(free)
            chosen.busy = True
            return chosen

    def pick(self, rng: random.Random) -> Stored | None:
        """A stored image to read (busy ones too: readers race writers, as in a shop)."""
        with self.lock:
            return rng.choice(self.stored) if self.stored else None

    # -- the samplers

    def watch_stalls(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                busy, idle = self.in_flight > 0, time.monotonic() - self.last_done
                last = self.last_done - self.started
            if busy and idle >= STALL_SECONDS:
                if self.stall_open is None:
                    self.stall_open = last
                    say(f"stall: no request completed for {idle:.0f} s with {self.in_flight} in flight")
            elif self.stall_open is not None:
                self.stalls.append((self.stall_open, self.now()))
                say(f"stall over after {self.now() - self.stall_open:.0f} s")
                self.stall_open = None

    def sample(self, every: float = 2.0, du_every: float = 20.0) -> None:
        last_du = -du_every
        du: float | None = None
        while True:
            rss = database_rss_mb(self.make_run)
            if self.now() - last_du >= du_every:
                du, last_du = folder_mb(self.make_run.data_dir / "db"), self.now()
            self.samples.append((self.now(), rss, du, restarts(self.make_run.log_path)))
            if self.stop.wait(every):
                return

    def close_stall(self) -> None:
        if self.stall_open is not None:
            self.stalls.append((self.stall_open, self.now()))
            self.stall_open = None


def database_rss_mb(make_run: MakeRun) -> float:
    try:
        return rss_mb([make_run.database_pid()])
    except (OSError, ValueError, IndexError):  # no state file yet, or between two restarts
        return 0.0


def folder_mb(folder: Path) -> float:
    return folder_bytes(folder) / MB


def restarts(log_path: Path) -> int:
    try:
        return log_path.read_text(errors="replace").count(RESTART_LINE)
    except OSError:
        return 0


def unhandled_errors(log_path: Path) -> str:
    """The app's unhandled errors in make run's log: how many, on which requests, of which exception."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "log not read"
    where = collections.Counter(re.sub(r"/[A-Za-z0-9_~-]{16,}", "/<id>", m) for m in
                                re.findall(r"unhandled error on (\w+ '[^']*')", text))
    kinds = collections.Counter(re.findall(r"^(\w+(?:Error|Exception)): ", text, re.M))
    if not where:
        return "none"
    return (f"{sum(where.values())}: " + ", ".join(f"{n} x {w}" for w, n in where.most_common(4))
            + " (exceptions in the log, causes included: "
            + ", ".join(f"{n} x {k}" for k, n in kinds.most_common(4)) + ")")


def restart_reasons(log_path: Path) -> list[str]:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
        return [line.strip() for line in lines if RESTART_LINE in line]
    except OSError:
        return []


# --------------------------------------------------------------------------------------
# The soak's clients


class Shop:
    """The soak's actions, each a method that records its requests in ``run``."""

    def __init__(self, run: Run, photos: list[bytes], editor: dict, admin: dict, ops: dict) -> None:
        self.run = run
        self.photos = photos
        self.editor = editor
        self.admin = admin
        self.ops = ops
        self.counter = iter(range(10**9))
        self.count_lock = threading.Lock()

    def number(self) -> int:
        with self.count_lock:
            return next(self.counter)

    def photo(self, rng: random.Random) -> bytes:
        return distinct(rng.choice(self.photos))

    def digest(self, image: dict) -> str | None:
        """The bytes at the image's ``url`` right after the upload: their sha256 (checked against
        the ``sha256`` the answer gave), or None when they could not be fetched."""
        answer = self.run.request("digest", "GET", media_path(image["url"]))
        if answer.status != 200:
            return None
        digest = sha256(answer.body)
        if image.get("sha256") and image["sha256"] != digest:
            self.run.digest_mismatch_at_upload.append(f"{image.get('id')}: answer {image['sha256'][:12]}, "
                                                      f"served {digest[:12]}")
        return digest

    def keep(self, kind: str, image: dict, sent: int, sku: str | None = None) -> None:
        self.run.acknowledge(Stored(kind, image["id"], media_path(image["url"]), self.digest(image),
                                    int(image.get("bytes") or 0), image, sku), sent)

    def product_photo(self, rng: random.Random) -> None:
        sku = f"SOAK-{self.number()}"
        body = json.dumps({"sku": sku, "name": "Soak photo", "price": rng.randrange(1, 999)}).encode()
        answer = self.run.request("product-create", "POST", "/api/shop/products", body=body,
                                  headers={**self.admin, "Content-Type": "application/json"})
        if answer.status != 201:
            return
        photo = self.photo(rng)
        form, content_type = multipart({}, "images", f"{sku}.jpg", photo)
        answer = self.run.request("product-photo", "POST", f"/api/shop/products/{sku}/images", body=form,
                                  headers={**self.admin, "Content-Type": content_type})
        if answer.status == 201:
            for image in as_json(answer).get("added", []):
                self.keep("product", image, len(photo), sku)

    def library(self, rng: random.Random) -> None:
        photo = self.photo(rng)
        form, content_type = multipart({}, "file", f"library-{self.number()}.jpg", photo)
        answer = self.run.request("library", "POST", "/api/builder/media", body=form,
                                  headers={**self.editor, "Content-Type": content_type})
        if answer.status in (200, 201) and "url" in as_json(answer):
            self.keep("library", as_json(answer), len(photo))

    def tus(self, rng: random.Random) -> None:
        from tusclient import client as tus_client
        from tusclient.exceptions import TusCommunicationError

        photo = self.photo(rng)
        uploader = tus_client.TusClient(f"http://{LOOPBACK}:{self.run.make_run.port}/api/tus",
                                        headers=self.editor).uploader(
            file_stream=io.BytesIO(photo), chunk_size=MB,
            metadata={"filename": f"tus-{self.number()}.jpg", "filetype": "image/jpeg", "target": "builder"})

        def step(kind: str, action, ok: int = 204) -> bool:
            started = self.run.begin()
            try:
                action()
                status = ok
            except TusCommunicationError as exc:
                status = exc.status_code or CUT
            except Exception:  # noqa: BLE001 - requests' own errors: no answer
                status = CUT
            self.run.done(kind, status, time.monotonic() - started)
            return status == ok

        if not step("tus-create", lambda: uploader.set_url(uploader.create_url()), ok=201):
            return
        # As tus clients do (tus-js-client's retryDelays): a PATCH that fails is retried after
        # a pause, from the offset the server gives (HEAD); an upload given up is terminated
        # (DELETE), so it does not hold one of the user's open uploads until it expires.
        failures = 0
        while uploader.offset < len(photo):
            if step("tus-patch", uploader.upload_chunk):
                failures = 0
                continue
            failures += 1
            resume = self._resume(uploader, failures)
            if failures > len(TUS_RETRY_SECONDS) or not step("tus-offset", resume, ok=200):
                self.run.request("tus-delete", "DELETE", urlsplit(uploader.url).path,
                                 headers={**self.editor, "Tus-Resumable": "1.0.0"})
                return
        answer = self.run.request("tus-status", "GET", "/api/tus/" + uploader.url.rsplit("/", 1)[-1],
                                  headers=self.editor)
        image = as_json(answer).get("image")
        if answer.status == 200 and image and "url" in image:
            self.keep("tus", image, len(photo))

    @staticmethod
    def _resume(uploader, failures: int):
        def resume() -> None:
            time.sleep(TUS_RETRY_SECONDS[failures - 1])
            uploader.offset = uploader.get_offset()
        return resume

    def replace(self, rng: random.Random) -> None:
        target = self.run.take(rng, keep=4)
        if target is None:
            return
        photo = self.photo(rng)
        form, content_type = multipart({}, "file", f"replace-{self.number()}.jpg", photo)
        headers = {"Content-Type": content_type}
        if target.kind in ("product", "zip"):
            path = f"/api/shop/products/{target.sku}/images/{target.id}"
            headers.update(self.admin)
        else:
            path = f"/api/builder/media/{target.id}"
            headers.update(self.editor)
        answer = self.run.request("replace", "PUT", path, body=form, headers=headers)
        image = as_json(answer)
        if answer.status == 200 and target.kind in ("product", "zip"):
            image = next((i for i in image.get("images", []) if i.get("id") == target.id), {})
        if answer.status == 200 and "url" in image:
            new = Stored(target.kind, target.id, media_path(image["url"]), self.digest(image),
                         int(image.get("bytes") or 0), image, target.sku)
            with self.run.lock:
                self.run.stored[self.run.stored.index(target)] = new
                self.run.acked.append((self.run.now(), len(photo)))
        elif answer.status in (TIMEOUT, CUT):
            target.uncertain = True  # checked at the end by where its id points then
        target.busy = False

    def delete(self, rng: random.Random) -> None:
        target = self.run.take(rng, keep=12)
        if target is None:
            return
        if target.kind in ("product", "zip"):
            path = f"/api/shop/products/{target.sku}/images/{target.id}"
            answer = self.run.request("delete", "DELETE", path, headers=self.admin)
        else:
            answer = self.run.request("delete", "DELETE", f"/api/builder/media/{target.id}?force=true",
                                      headers=self.editor)
        with self.run.lock:
            if answer.status in (200, 204):
                self.run.stored.remove(target)
                self.run.deleted += 1
            elif answer.status in (TIMEOUT, CUT, 503):
                # No answer, or a 503 from a restart that cut it mid-way: it may have been
                # deleted (one was, in the 60-minute soak), so it is not checked at the end.
                self.run.stored.remove(target)
                self.run.lost_track.append(target)
            target.busy = False

    def rendition(self, rng: random.Random) -> None:
        target = self.run.pick(rng)
        if target is None:
            return
        ladder = srcset_paths(target.image)
        formats = [fmt for fmt in ("avif", "webp", "jpg") if ladder.get(fmt)]
        if not formats:
            return
        _, path = rng.choice(ladder[rng.choice(formats)])
        with self.run.lock:
            kind = "rendition-warm" if path in self.run.seen_renditions else "rendition-cold"
            self.run.seen_renditions.add(path)
        self.run.request(kind, "GET", path, headers=visitor(rng))

    def read(self, rng: random.Random) -> None:
        target = self.run.pick(rng)
        if target is None:
            return
        urls = [target.image["url"]]
        for formats in (target.image.get("variant_urls") or {}).values():
            found = formats.values() if isinstance(formats, dict) else [formats]
            urls += [u for u in found if isinstance(u, str)]
        self.run.request("read", "GET", media_path(rng.choice(urls)), headers=visitor(rng))

    def zip_import(self, rng: random.Random) -> None:
        sku = f"ZIP-{self.number()}"
        body = json.dumps({"sku": sku, "name": "Zip import", "price": 10}).encode()
        if self.run.request("product-create", "POST", "/api/shop/products", body=body,
                            headers={**self.admin, "Content-Type": "application/json"}).status != 201:
            return
        photos = [self.photo(rng) for _ in range(3)]
        archive = make_zip([(f"{sku}_{i + 1}.jpg", p) for i, p in enumerate(photos)],
                           compression=zipfile.ZIP_STORED)
        answer = self.run.request("zip-import", "POST", "/api/shop/import-zip", body=archive,
                                  headers={**self.admin, "Content-Type": "application/zip"})
        if answer.status != 200:
            return
        imported = {e.get("id"): e["name"] for e in as_json(answer).get("entries", [])
                    if e.get("outcome") == "imported"}
        product = as_json(self.run.request("product-read", "GET", f"/api/shop/products/{sku}"))
        sizes = {f"{sku}_{i + 1}.jpg": len(p) for i, p in enumerate(photos)}
        for image in product.get("images", []):
            if image.get("id") in imported:
                self.keep("zip", image, sizes.get(imported[image["id"]], 0), sku)

    def poll_status(self, rng: random.Random) -> None:
        self.run.request("ops-products-status", "GET", "/api/shop/debug/products-status", headers=self.ops)
        self.run.request("ops-storage-status", "GET", "/api/shop/debug/storage-status", headers=self.ops)


MIX = (("product_photo", 2.0), ("library", 2.0), ("tus", 1.5), ("replace", 1.0), ("rendition", 4.0),
       ("read", 4.0), ("delete", 0.7))


def soak(make_run: MakeRun, *, seconds: float, clients: int, zip_every: float, photos: list[bytes]) -> Run:
    uri = make_run.mongo_uri
    run = Run(make_run)
    run.tokens = {role: tokens.issue_on(uri, DB, role) for role in ("editor", "admin", "ops")}
    shop = Shop(run, photos, run.tokens["editor"], run.tokens["admin"], run.tokens["ops"])
    deadline = time.monotonic() + seconds
    actions, weights = zip(*MIX, strict=True)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            getattr(shop, rng.choices(actions, weights)[0])(rng)

    def every(interval: float, action: str, first: float) -> None:
        rng = random.Random(interval)
        at, end = first, deadline - run.started  # seconds from the run's start
        while at < end and not run.stop.wait(max(0.0, at - run.now())):
            getattr(shop, action)(rng)
            at += interval

    background = [threading.Thread(target=run.sample, daemon=True),
                  threading.Thread(target=run.watch_stalls, daemon=True)]
    workers = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(clients)]
    workers += [threading.Thread(target=every, args=(zip_every, "zip_import", min(60.0, zip_every / 2)),
                                 daemon=True),
                threading.Thread(target=every, args=(30.0, "poll_status", 5.0), daemon=True)]
    for thread in background + workers:
        thread.start()
    try:
        for thread in workers:  # the last requests may run 150 s past the deadline
            thread.join(max(1.0, deadline + 160 - time.monotonic()))
    finally:
        run.stop.set()
        run.close_stall()
    return run


@dataclass
class Verified:
    checked: int = 0
    identical: int = 0
    problems: list[str] = field(default_factory=list)
    uncertain: int = 0
    no_digest: int = 0
    unchecked: int = 0  # left when the server stopped answering


def verify(run: Run, editor: dict, admin: dict) -> Verified:
    """Every acknowledged image still stored, fetched and compared with its digest."""
    result = Verified()
    port = run.make_run.port
    silent = 0  # answers in a row that were no answer or a 503: past 5 the rest is left unchecked
    for index, stored in enumerate(list(run.stored)):
        if silent >= 5:
            result.unchecked = len(run.stored) - index
            result.problems.append(f"{result.unchecked} not checked: 5 fetches in a row got no answer or 503")
            break
        if stored.uncertain:  # a replace without an answer: its id's current URL must serve its sha256
            result.uncertain += 1
            if stored.kind in ("product", "zip"):
                product = as_json(call(port, "GET", f"/api/shop/products/{stored.sku}"))
                image = next((i for i in product.get("images", []) if i.get("id") == stored.id), {})
            else:
                image = as_json(call(port, "GET", f"/api/builder/media/{stored.id}", headers=editor))
            answer = call(port, "GET", media_path(image["url"])) if "url" in image else None
            if answer is None or answer.status != 200 or sha256(answer.body) != image.get("sha256"):
                result.problems.append(f"{stored.kind} {stored.id} (replace unanswered): "
                                       f"{status_name(answer.status) if answer else 'gone'}")
            continue
        if stored.digest is None:
            result.no_digest += 1
            continue
        result.checked += 1
        answer = call(port, "GET", stored.path, timeout=60)
        silent = silent + 1 if answer.status in (TIMEOUT, CUT, 503) else 0
        if answer.status == 200 and sha256(answer.body) == stored.digest:
            result.identical += 1
        else:
            result.problems.append(f"{stored.kind} {stored.id}: HTTP {status_name(answer.status)}"
                                   + (", different bytes" if answer.status == 200 else ""))
    return result


def gridfs_mb(uri: str) -> tuple[float, int]:
    """The bytes every GridFS bucket of the app's database holds (files' ``length``), and the files."""
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000, socketTimeoutMS=120000) as client:
        db = client[DB]
        total = files = 0
        for name in db.list_collection_names():
            if name.endswith(".files"):
                for row in db[name].aggregate([{"$group": {"_id": None, "n": {"$sum": 1},
                                                            "bytes": {"$sum": "$length"}}}]):
                    total += row["bytes"]
                    files += row["n"]
    return total / MB, files


# --------------------------------------------------------------------------------------
# The flood


@dataclass
class FloodRound:
    connections: int
    photos: int
    answers: list[tuple[int, float, bool]] = field(default_factory=list)  # (status, seconds, Retry-After)
    upload_seconds: list[float] = field(default_factory=list)
    probes: list[float] = field(default_factory=list)  # direct database reads during the flood (inf: failed)
    read_after: float = float("inf")
    readyz_after: str = ""
    upload_after: str = ""
    restarts: int = 0
    rss_peak: float = 0.0
    seconds: float = 0.0
    note: str = ""


def database_read(uri: str, timeout: float = 5.0) -> float:
    """Seconds for one real read (a document of the app's users), inf when none came in ``timeout``."""
    started = time.monotonic()
    ms = int(timeout * 1000)
    try:
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms,
                                 retryReads=False) as client:
            client[DB].users.find_one({}, {"_id": 1})
    except pymongo.errors.PyMongoError:
        return float("inf")
    return time.monotonic() - started


def flood_urls(image: dict) -> list[str]:
    ladder = srcset_paths(image)
    paths = [path for fmt in ("avif", "webp", "jpg") for width, path in ladder.get(fmt, [])
             if width in LADDER_TOP]
    paths += [path.rsplit(".", 1)[0] + ".png" for width, path in ladder.get("jpg", []) if width in LADDER_TOP]
    return paths


def flood(make_run: MakeRun, connections: int, photos: int, editor: dict, source: bytes) -> FloodRound:
    result = FloodRound(connections, photos)
    restarts_before = restarts(make_run.log_path)
    uri = make_run.mongo_uri
    urls: list[str] = []
    for i in range(photos):
        status, image = make_run.upload(editor, distinct(source), f"flood-{i}.jpg", timeout=180)
        if status != 201:
            result.note += f"upload {i}: HTTP {status}; "
            continue
        urls += flood_urls(image)
    say(f"flood: {len(urls)} rendition URLs, {connections} connections from {ATTACKER}")
    queue = collections.deque(urls)
    lock = threading.Lock()
    done = threading.Event()

    def attacker() -> None:
        conn = None
        while True:
            with lock:
                if not queue:
                    break
                path = queue.popleft()
            if conn is None:
                conn = http.client.HTTPConnection(LOOPBACK, make_run.port, timeout=120,
                                                  source_address=(ATTACKER, 0))
            started = time.monotonic()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status, retry_after = response.status, response.getheader("Retry-After") is not None
                if response.will_close:
                    conn.close()
                    conn = None
            except TimeoutError:
                status, retry_after = TIMEOUT, False
                conn.close()
                conn = None
            except (OSError, http.client.HTTPException):
                status, retry_after = CUT, False
                conn.close()
                conn = None
            with lock:
                result.answers.append((status, time.monotonic() - started, retry_after))
        if conn is not None:
            conn.close()

    def prober() -> None:
        while not done.wait(2.0):
            result.probes.append(database_read(uri))

    def rss() -> None:
        while not done.wait(1.0):
            result.rss_peak = max(result.rss_peak, database_rss_mb(make_run))

    helpers = [threading.Thread(target=prober, daemon=True), threading.Thread(target=rss, daemon=True)]
    attackers = [threading.Thread(target=attacker, daemon=True) for _ in range(connections)]
    started = time.monotonic()
    for thread in helpers + attackers:
        thread.start()
    for thread in attackers:
        thread.join(max(1.0, started + 600 - time.monotonic()))
    result.seconds = time.monotonic() - started
    done.set()
    result.read_after = database_read(uri)
    readyz = call(make_run.port, "GET", "/readyz", timeout=30)
    result.readyz_after = f"{status_name(readyz.status)} in {readyz.seconds:.1f} s"
    started = time.monotonic()
    status, _ = make_run.upload(editor, distinct(source), "after-flood.jpg", timeout=180)
    result.upload_after = f"{status_name(status)} in {time.monotonic() - started:.1f} s"
    result.restarts = restarts(make_run.log_path) - restarts_before
    return result


# --------------------------------------------------------------------------------------
# Running a side (the code of this checkout or of --before's ref) on a fresh make run


def start_make_run(label: str, root: Path, scenario: str) -> tuple[MakeRun, list[int]]:
    folder = WORK / f"{label}-{scenario}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # The soak's storefront readers are a shop's many visitors, as a CDN or load balancer in
    # front hands them on (docs/production.md): one trusted proxy and a visitor's address each
    # in X-Forwarded-For, so the per-address render limit (600 an hour) applies per visitor, not
    # to the whole storefront at once. The flood is one visitor: no proxy there.
    extra_env = {"AVENUE_PROXY_COUNT": "1"} if scenario == "soak" else None
    make_run = MakeRun(folder / "data", folder / "make-run.log", extra_env=extra_env,
                       root=root).start(timeout=180)
    return make_run, descendants(make_run)


def descendants(make_run: MakeRun) -> list[int]:
    """make run's database and gunicorn (and its workers), to stop if make run leaves them."""
    if make_run.process is None:
        return []
    try:
        pids = [child.pid for child in psutil.Process(make_run.process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        pids = []
    try:
        pids.append(make_run.database_pid())
    except (OSError, ValueError, IndexError):
        pass
    return pids


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_make_run(make_run: MakeRun, pids: list[int]) -> str:
    """Ctrl-C to make run; anything of its still there 15 s later is SIGKILLed by pid (the note says)."""
    pids = sorted(set(pids + descendants(make_run)))
    took = make_run.stop(grace=30)
    deadline = time.monotonic() + 15
    left = pids
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if alive(pid)]
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return f"make run stopped in {took:.1f} s" + (f"; {len(left)} of its processes left, killed"
                                                   if left else "")


# --------------------------------------------------------------------------------------
# Report


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def largest_files(folder: Path, count: int = 4) -> str:
    sizes = []
    for path in folder.iterdir():
        try:
            sizes.append((path.lstat().st_blocks * 512 / MB, path.name))
        except OSError:
            pass
    return ", ".join(f"`{name}` {size:.0f} MB" for size, name in sorted(sizes, reverse=True)[:count])


def statuses(counter: collections.Counter) -> str:
    return ", ".join(f"{status_name(code)} x{n}" for code, n in sorted(counter.items()))


def soak_section(label: str, run: Run, row_seconds: float, seconds: float, verified: Verified,
                 stored_mb: float, files: int, final_du: float, stop_note: str) -> list[str]:
    lines = [f"### Soak, {label}", "",
             "| minutes | requests by kind: status x count | p50 ms | p99 ms | DB RSS peak MB "
             "| data folder MB | acknowledged MB | stalls | restarts |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    last = max((e.at for e in run.events), default=0.0)
    windows = max(1, math.ceil(max(seconds, last) / row_seconds))
    for w in range(windows):
        lo, hi = w * row_seconds, (w + 1) * row_seconds
        events = [e for e in run.events if lo <= e.at < hi]
        by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for e in events:
            by_kind[e.kind][e.status] += 1
        cell = "; ".join(f"{kind}: {statuses(c)}" for kind, c in sorted(by_kind.items())) or "none"
        lat = [e.seconds * 1000 for e in events]
        samples = [s for s in run.samples if lo <= s[0] < hi]
        rss = max((s[1] for s in samples), default=0.0)
        du = next((s[2] for s in reversed(samples) if s[2] is not None), None)
        acked = sum(b for at, b in run.acked if at < hi) / MB
        stalls = [s for s in run.stalls if lo <= s[0] < hi]
        before = max((s[3] for s in run.samples if s[0] < lo), default=0)
        after = max((s[3] for s in samples), default=before)
        stall_cell = ", ".join(f"{end - start:.0f} s" for start, end in stalls) or "0"
        overtime = " (past the end: the last answers)" if lo >= seconds else ""
        lines.append(f"| {lo / 60:g}-{hi / 60:g}{overtime} | {cell} | {ms(percentile(lat, 50))} "
                     f"| {ms(percentile(lat, 99))} | {rss:.0f} | {du if du is None else round(du)} "
                     f"| {acked:.0f} | {stall_cell} | {after - before} |")
    lines += ["", "| kind | requests | statuses | p50 ms | p99 ms | max ms |",
              "| --- | ---: | --- | ---: | ---: | ---: |"]
    kinds: dict[str, list[Event]] = collections.defaultdict(list)
    for e in run.events:
        kinds[e.kind].append(e)
    for kind, events in sorted(kinds.items()):
        lat = [e.seconds * 1000 for e in events]
        codes = statuses(collections.Counter(e.status for e in events))
        lines.append(f"| {kind} | {len(events)} | {codes} | "
                     f"{percentile(lat, 50):.0f} | {percentile(lat, 99):.0f} | {max(lat):.0f} |")
    acked_mb = sum(b for _, b in run.acked) / MB
    live = sum(s.size for s in run.stored) / MB
    peak = max((s[1] for s in run.samples), default=0.0)
    reasons = restart_reasons(run.make_run.log_path)
    lines += [
        "",
        f"- acknowledged: {len(run.acked)} uploads and replaces, {acked_mb:.0f} MB sent; "
        f"{len(run.stored)} images stored at the end ({live:.0f} MB of originals), {run.deleted} deleted, "
        f"{len(run.lost_track)} deletes without an answer or answered 503 (may be deleted: not checked)",
        f"- **byte-identical at the end: {verified.identical} of {verified.checked}**"
        + (f"; problems: {'; '.join(verified.problems[:8])}" if verified.problems else "")
        + (f"; {verified.no_digest} not fetched right after the upload (no digest)"
           if verified.no_digest else "")
        + (f"; {verified.uncertain} with an unanswered replace, checked against their current sha256"
           if verified.uncertain else ""),
        f"- served bytes differing from the answer's sha256 right after upload: "
        f"{len(run.digest_mismatch_at_upload)}" + (f" ({'; '.join(run.digest_mismatch_at_upload[:4])})"
                                                  if run.digest_mismatch_at_upload else ""),
        f"- data folder (du of `<data>/db`) at the end: {final_du:.0f} MB; GridFS holds "
        f"{stored_mb:.0f} MB in {files} files (originals, variants, renditions, trash): "
        f"**ratio {final_du / stored_mb:.2f}x**; "
        f"(largest files: {largest_files(run.make_run.data_dir / 'db')}); "
        f"to the originals of the acknowledged images still stored: {final_du / live:.2f}x"
        if stored_mb and live else f"- data folder at the end: {final_du:.0f} MB; GridFS: {stored_mb:.0f} MB",
        f"- SecantusDB RSS: **peak {peak:.0f} MB**, at the end "
        f"{run.samples[-1][1] if run.samples else 0:.0f} MB",
        f"- stalls (30 s without a completed request while some were in flight): {len(run.stalls)}"
        + (f", longest {max(e - s for s, e in run.stalls):.0f} s" if run.stalls else ""),
        f"- supervisor restarts: {len(reasons)}"
        + (f", at minute {', '.join(f'{m:.1f}' for m in restart_minutes(run))}; why: "
           + "; ".join(sorted({re.sub(r" \(pid \d+\)", "", r) for r in reasons})) if reasons else ""),
        f"- the app's unhandled errors (500): {unhandled_errors(run.make_run.log_path)}",
        f"- {stop_note}",
        "",
    ]
    return lines


def restart_minutes(run: Run) -> list[float]:
    """When the supervisor's restarts showed in the log (the samples every 2 s)."""
    found, seen = [], 0
    for at, _, _, count in run.samples:
        found += [at / 60] * (count - seen)
        seen = max(seen, count)
    return found


def flood_section(results: list[tuple[str, FloodRound]]) -> list[str]:
    lines = ["| code | connections | answers | statuses | max s | over 60 s | 429/503 without Retry-After "
             "| DB reads during (max s, failed) | DB read after | /readyz after | upload after | restarts "
             "| DB RSS peak MB |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | --- | --- | --- | ---: | ---: |"]
    for label, r in results:
        codes = collections.Counter(s for s, _, _ in r.answers)
        worst = max((t for _, t, _ in r.answers), default=0.0)
        late = sum(1 for s, t, _ in r.answers if t > 60 or s in (TIMEOUT, CUT))
        bare = sum(1 for s, _, ra in r.answers if s in (429, 503) and not ra)
        finite = [p for p in r.probes if p != float("inf")]
        failed = len(r.probes) - len(finite)
        wedged = " **(wedged)**" if failed and r.read_after == float("inf") else ""
        read_after = "none in 5 s" if r.read_after == float("inf") else f"{r.read_after:.2f} s"
        lines.append(f"| {label} | {r.connections} | {len(r.answers)} | {statuses(codes)} | {worst:.1f} "
                     f"| {late} | {bare} | {max(finite, default=0):.1f} s, {failed} of {len(r.probes)} "
                     f"failed{wedged} | {read_after} | {r.readyz_after} | {r.upload_after} | {r.restarts} "
                     f"| {r.rss_peak:.0f} |")
    notes = [f"- {label}, {r.connections} connections: {r.note}" for label, r in results if r.note]
    return [*lines, "", *notes]


# --------------------------------------------------------------------------------------


def git_rev(root: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, help="the soak's length (60; 1.5 with --quick)")
    parser.add_argument("--clients", type=int, default=5, help="the soak's concurrent clients (5)")
    parser.add_argument("--row-minutes", type=float, help="minutes per row of the soak (5; 0.5 with --quick)")
    parser.add_argument("--zip-every", type=float, help="seconds between zip imports (180; 45 with --quick)")
    parser.add_argument("--connections", default=None,
                        help="the flood's rounds' connections (8,4; 8 with --quick)")
    parser.add_argument("--photos", type=int, help="fresh 12 MP photos per flood round (6; 2 with --quick)")
    parser.add_argument("--flood-photo", choices=("camera", "corpus"), default="camera",
                        help="the flood's 12 MP photo: camera (the 5 MB 4000x3000 photo-like one the soak "
                             "uploads too) or corpus (the test corpus's photo_12mp.jpg, smooth, ~1.2 MB)")
    parser.add_argument("--only", choices=("soak", "flood"), help="one scenario")
    parser.add_argument("--before", metavar="REF", help="also run on this git ref's code, first")
    parser.add_argument("--before-label", default="before",
                        help="what the tables call --before's code (before; e.g. main for a newer ref)")
    parser.add_argument("--sides", help="with --before: before,after (default both), or one of them")
    parser.add_argument("--quick", action="store_true", help="a ~3-4 minute smoke run")
    parser.add_argument("--out", help="the results file (default bench/results/embedded-<date>[...].md)")
    args = parser.parse_args()
    minutes = args.minutes or (1.5 if args.quick else 60.0)
    row_seconds = 60 * (args.row_minutes or (0.5 if args.quick else 5.0))
    zip_every = args.zip_every or (45.0 if args.quick else 180.0)
    rounds = [int(c) for c in (args.connections or ("8" if args.quick else "8,4")).split(",")]
    photos_per_round = args.photos or (2 if args.quick else 6)
    scenarios = [args.only] if args.only else ["soak", "flood"]
    sides = (args.sides or "before,after").split(",") if args.before else ["after"]
    per_side = ("soak" in scenarios) * (minutes * 60 + 900) + ("flood" in scenarios) * 900 * len(rounds)
    limit = int(len(sides) * per_side)
    stop_after(limit + 300)

    WORK.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = [os.getloadavg()]
    say("making the photos (cached in bench/work/data)")
    photos = camera_photos(BENCH / "work" / "data" / "embedded")
    flood_photo = photos[2] if args.flood_photo == "camera" else photo_12mp()  # photos[2]: 4000x3000
    with Image.open(io.BytesIO(flood_photo)) as opened:
        flood_size = f"{opened.width}x{opened.height}, {len(flood_photo) / MB:.1f} MB ({args.flood_photo})"
    worktree: Path | None = None
    soak_lines: list[str] = []
    flood_results: list[tuple[str, FloodRound]] = []
    notes: list[str] = []
    aborted = None
    active: tuple[MakeRun, list[int]] | None = None
    try:
        plan: list[tuple[str, Path]] = []
        if "before" in sides:
            worktree = Path(tempfile.mkdtemp(prefix="avenue-before-"))
            subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=ROOT,
                           check=True, capture_output=True)
            rev = git_rev(worktree)
            name = args.before_label
            plan.append((f"{name} ({args.before})" if rev.startswith(args.before) else
                         f"{name} ({args.before}, {rev})", worktree))
        if "after" in sides:
            plan.append((f"after ({git_rev(ROOT)})", ROOT))
        for label, root in plan:
            side = "before" if root != ROOT else "after"
            if "soak" in scenarios:
                say(f"soak, {label}: {minutes:g} min, {args.clients} clients")
                active = start_make_run(side, root, "soak")
                make_run = active[0]
                run = soak(make_run, seconds=minutes * 60, clients=args.clients, zip_every=zip_every,
                           photos=photos)
                say(f"soak, {label}: {len(run.events)} requests; verifying {len(run.stored)} images")
                uri = make_run.mongo_uri
                # The soak's own tokens: a new one is a write, which a wedged database never answers.
                verified = verify(run, run.tokens["editor"], run.tokens["admin"])
                try:
                    stored_mb, files = gridfs_mb(uri)
                except pymongo.errors.PyMongoError as exc:
                    stored_mb, files = 0.0, 0
                    notes.append(f"soak, {label}: GridFS sizes not read ({type(exc).__name__})")
                final_du = folder_mb(make_run.data_dir / "db")
                stop_note = stop_make_run(*active)
                active = None
                soak_lines += soak_section(label, run, row_seconds, minutes * 60, verified, stored_mb, files,
                                           final_du, stop_note)
            if "flood" in scenarios:
                active = start_make_run(side, root, "flood")
                make_run = active[0]
                editor = tokens.issue_on(make_run.mongo_uri, DB, "editor")
                for connections in rounds:
                    say(f"flood, {label}: {photos_per_round} photos, {connections} connections")
                    result = flood(make_run, connections, photos_per_round, editor, flood_photo)
                    flood_results.append((label, result))
                    say(f"flood, {label}, {connections} connections: "
                        f"{statuses(collections.Counter(s for s, _, _ in result.answers))}")
                note = stop_make_run(*active)
                active = None
                notes.append(f"flood, {label}: {note}")
    except (KeyboardInterrupt, BenchError, RuntimeError, subprocess.CalledProcessError) as exc:
        aborted = f"{type(exc).__name__}: {exc}"[:500]
        say(f"stopped: {aborted}")
    finally:
        signal.alarm(0)
        if active is not None:
            stop_make_run(*active)
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False,
                           capture_output=True)
    loads.append(os.getloadavg())
    command = "bench/embedded.py " + " ".join(sys.argv[1:])
    text = [f"# The embedded database under a shop's mix — {started}", "",
            f"`{command}`: make run's entry point (`python -m avenue.devserver`, `MakeRun`) on a fresh data "
            f"folder per side and scenario, 256M cache as shipped; SecantusDB "
            f"{_version('SecantusDB')}. Load average {loads[0][0]:.2f} at the start, {loads[1][0]:.2f} at "
            f"the end, on {os.cpu_count()} cores shared with other work.", ""]
    if "soak" in scenarios:
        text += [f"## Soak: {minutes:g} minutes, {args.clients} clients, a zip import every {zip_every:g} s, "
                 "ops polling every 30 s", "",
                 "Photos: 3-8 MB photo-like JPEGs (12 and 16 MP), each upload distinct. Kinds: "
                 "`product-create` + `product-photo` (a new product and its photo), `library`, "
                 "`tus-create`/`tus-patch` (1 MiB)/"
                 "`tus-status`, `replace` (PUT), `rendition-cold`/`-warm` (srcset URLs), `read` (anonymous, "
                 "originals and variants), `delete`, `zip-import` (3 photos) + `product-read`, `digest` (the "
                 "GET of the original right after its upload), `ops-*` (status reports). Statuses `timeout`, "
                 "`cut`: no answer.", "", *soak_lines]
    if "flood" in scenarios:
        text += [f"## Flood: per round {photos_per_round} fresh public photos ({flood_size}, each distinct), "
                 "then their ladder "
                 f"renditions w_1280..w_2560 x AVIF, WebP, JPEG, PNG ({16 * photos_per_round} URLs) asked "
                 f"once each from {ATTACKER} over N keep-alive connections", "",
                 "Expected: every answer within 60 s, 200 or 429/503 with Retry-After. `DB reads during`: "
                 "a direct `find_one` every 2 s with a 5 s timeout; `wedged`: reads failed during the flood "
                 "and none answered within 5 s after it.", "", *flood_section(flood_results)]
    if notes or aborted:
        text += ["", *[f"- {n}" for n in notes]]
    if aborted:
        text += [f"- run stopped early ({aborted}): partial results"]
    report = "\n".join(text) + "\n"
    print("\n" + report)
    if aborted:
        target = WORK / "aborted.md"
    elif args.out:
        target = Path(args.out)
    else:
        suffix = (f"-{args.only}" if args.only else "") + ("-before" if sides == ["before"] else "") \
            + ("-quick" if args.quick else "")
        RESULTS.mkdir(exist_ok=True)
        target = RESULTS / f"embedded-{time.strftime('%Y-%m-%d', time.gmtime())}{suffix}.md"
        # Never over an earlier run's results of the same day (one was lost so): -2, -3, ...
        stem, number = target.stem, 2
        while target.exists():
            target, number = target.with_name(f"{stem}-{number}.md"), number + 1
    target.write_text(report)
    say(f"written to {target}; logs in {WORK.relative_to(ROOT)}/")
    return 1 if aborted else 0


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
