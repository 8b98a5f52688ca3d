"""The sections of the benchmark, run in order, and the rows of the one table they fill."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

import appside
import data
import front
import ingest
import profiles
import serving
import status
import upload
from harness import BenchError, ForeignLoad, Procs, free_port, wait_port, worker_pids
from report import Report, machine, num, ratio

NOISY_PERCENT = 20  # other processes' share of the CPUs above which a verdict is flagged
BASELINE_DB = "bench_baseline"
APP_DB = "avenue_bench"
LABELS = {
    "nginx": "nginx from disk",
    "disk": "Flask send_from_directory (disk)",
    "pymongo": "Flask-PyMongo send_file (GridFS)",
    "naive": "naive fs.get(id).read() (GridFS)",
    "app": "Avenue app",
    "front": "Avenue app behind the nginx front (cache)",
    "nginx2": "nginx from disk, again right before the front",
}


@dataclass
class Suite:
    root: Path
    bench: Path
    work: Path
    results: Path
    venv_bin: Path
    procs: Procs
    cfg: dict
    mode: str
    sections: set[str]
    profile: bool
    say: Callable[[str], None]
    report: Report = field(init=False)
    serve: dict[str, serving.ServeResult | str] = field(default_factory=dict)
    pillow: dict[str, list[float]] = field(default_factory=dict)
    signed: front.SignedProof | str | None = None
    app_upload: upload.UploadResult | str | None = None
    ingests: dict[str, ingest.IngestResult | str] = field(default_factory=dict)
    status: status.StatusResult | str | None = None
    index_seconds: float | None = None  # ensure_indexes after the status seed
    raw: list[str] = field(default_factory=list)
    app_reason: str | None = None
    profiles: dict[str, list[Path]] = field(default_factory=dict)
    foreign: dict[str, float | None] = field(default_factory=dict)  # step -> other CPU %

    def __post_init__(self) -> None:
        self.report = Report(self.mode)

    # ----------------------------------------------------------------------------------
    # Infrastructure

    def embedded_env(self) -> dict[str, str]:
        """What `make run` tells the app about its embedded database: the data folder."""
        return {"AVENUE_EMBEDDED_DATA_PATH": str(self.work / "db" / "main")}

    def secantus(self, name: str) -> tuple[subprocess.Popen, str]:
        """A SecantusDB on a free port with a fresh data folder; returns (process, base URI)."""
        storage = self.work / "db" / name
        shutil.rmtree(storage, ignore_errors=True)
        storage.parent.mkdir(parents=True, exist_ok=True)
        port = free_port()
        proc = self.procs.start(f"secantus-{name}", [
            str(self.venv_bin / "secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
            "--storage-path", str(storage), "--log-level", "WARNING", "--cache-size", "256M",
        ], cwd=storage.parent)
        wait_port(port, proc, 60, f"SecantusDB ({name})")
        return proc, f"mongodb://127.0.0.1:{port}"

    def stop_secantus(self, proc: subprocess.Popen, name: str) -> None:
        self.procs.stop(proc, timeout=20)
        shutil.rmtree(self.work / "db" / name, ignore_errors=True)

    @staticmethod
    def uri(base: str, db: str) -> str:
        return f"{base}/{db}?directConnection=true"

    def guarded(self, what: str, fn: Callable[[], object]) -> object | str:
        """Run a step; an unexpected failure becomes a note instead of ending the run.

        Also records how much CPU other processes (not this run's) used meanwhile.
        """
        load = ForeignLoad()
        load.start()
        try:
            return fn()
        except appside.AppUnavailable as exc:
            self.say(f"{what}: app not available: {exc}")
            return f"app not available: {exc}"
        except BenchError as exc:
            self.say(f"{what}: {exc}")
            return f"failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - report and go on with the other sections
            self.raw.append(f"## {what} traceback\n{traceback.format_exc()}")
            self.say(f"{what}: {type(exc).__name__}: {exc}")
            return f"failed: {type(exc).__name__}: {exc}"
        finally:
            self.foreign[what] = load.percent()

    def noisy(self, *whats: str) -> str:
        """' (noisy: N % CPU elsewhere)' when other work took over 20 % during those steps."""
        worst = max((self.foreign.get(w) or 0.0 for w in whats), default=0.0)
        return f" (noisy: {worst:.0f} % CPU elsewhere)" if worst > NOISY_PERCENT else ""

    # ----------------------------------------------------------------------------------
    # The run

    def run(self) -> None:
        self.say(f"mode {self.mode}; sections {', '.join(sorted(self.sections))}")
        busy = psutil.cpu_percent(interval=1.0)
        self.report.note(f"CPU busy before the run: {busy:.0f} % (1 s sample; other work on the "
                         "machine lowers every figure, ratios less so)")
        if busy > 15:
            self.say(f"warning: the machine is already {busy:.0f} % busy; figures will be low")
        self.files = data.ensure_files(self.work / "data")
        self.sizes = {k: self.files[v].stat().st_size for k, v in serving.FILES.items()}
        self.say("data: " + ", ".join(f"{k} {v:,} B" for k, v in self.sizes.items()))
        self.app_reason = appside.missing_reason(self.root, str(self.venv_bin / "python"))
        if self.app_reason:
            self.say(f"app not available: {self.app_reason}")
        need_db = bool(self.sections & {"serve", "upload", "status"})
        if need_db:
            db_proc, base = self.secantus("main")
            try:
                if "serve" in self.sections:
                    self.run_baselines(base)
                self.run_app(base)
            finally:
                self.stop_secantus(db_proc, "main")
        if "ingest" in self.sections:
            self.run_ingest()

    def run_baselines(self, base: str) -> None:
        uri = self.uri(base, BASELINE_DB)
        ids = serving.load_gridfs_baseline(uri, self.files)
        data_dir = self.files["img100k.jpg"].parent
        env = {"BENCH_DATA_DIR": str(data_dir), "BENCH_MONGO_URI": uri,
               "PATH": f"{self.venv_bin}:/usr/bin:/bin"}
        name_paths = {k: f"/files/{v}" for k, v in serving.FILES.items()}
        id_paths = {k: f"/files/{ids[k]}" for k in serving.FILES}
        # Flask-from-disk last, right before the app: the pair the targets compare.
        starters = {
            "nginx": lambda: serving.start_nginx(self.procs, self.work, data_dir),
            "pymongo": lambda: serving.start_baseline(self.procs, self.venv_bin, "pymongo",
                                                      LABELS["pymongo"], "pymongo_app", env,
                                                      name_paths),
            "naive": lambda: serving.start_baseline(self.procs, self.venv_bin, "naive",
                                                    LABELS["naive"], "naive_app", env, id_paths,
                                                    conditional=False),
            "disk": lambda: serving.start_baseline(self.procs, self.venv_bin, "disk",
                                                   LABELS["disk"], "disk_app", env, name_paths),
        }
        for key, start in starters.items():
            self.serve[key] = self.guarded(key, lambda start=start: self.measure_server(start))

    def measure_server(self, start: Callable[[], serving.Server]) -> serving.ServeResult:
        """Start a baseline server, measure it, stop it."""
        server = start()
        try:
            return self._measure_running(server)
        finally:
            self.procs.stop(server.proc)

    # ----------------------------------------------------------------------------------
    # The app: serving, upload and status share one app server

    def run_app(self, base: str) -> None:
        if {"upload"} & self.sections:
            photo = data.photo_12mp(self.root, self.work / "data")
            self.photo = photo.read_bytes()
            self.say(f"upload: bare Pillow variants of {photo.name}")
            for draft in (False, True):
                key = "draft" if draft else "full"
                self.pillow[key] = upload.time_pillow(self.photo, draft=draft,
                                                      repeat=self.cfg["pillow_repeat"])
        if self.app_reason:
            reason = f"app not available: {self.app_reason}"
            self.serve["app"] = reason
            self.app_upload = reason
            self.status = reason
            return
        result = self.guarded("app", lambda: self._run_app(base))
        if isinstance(result, str):
            for attr in ("app_upload", "status"):
                if getattr(self, attr) is None:
                    setattr(self, attr, result)
            self.serve.setdefault("app", result)

    def _run_app(self, base: str) -> None:
        import pymongo

        core = appside.media_core(self.root)
        uri = self.uri(base, APP_DB)
        found = appside.routes(self.root, str(self.venv_bin / "python"),
                               appside.app_env(self.root, uri, APP_DB))
        client = pymongo.MongoClient(uri, tz_aware=True)
        db = client[APP_DB]
        try:
            docs = {}
            if self.sections & {"serve", "status"}:
                for key, name in serving.FILES.items():
                    t0 = time.perf_counter()
                    docs[key] = core.put(db, self.files[name].read_bytes(), name,
                                         max_bytes=64 * 2**20)
                    self.say(f"app: stored {name} in {time.perf_counter() - t0:.2f} s")
            seeded: tuple | str | None = None
            if "status" in self.sections:
                # Bulk-load before the indexes exist: building them afterwards is ~2x faster
                # on SecantusDB than maintaining six indexes per inserted document.
                seeded = self.guarded("app status seed", lambda: self._seed(db, core, docs, found))
            self.index_seconds = None
            if core.ensure_indexes:
                t0 = time.perf_counter()
                core.ensure_indexes(db)
                self.index_seconds = time.perf_counter() - t0
                self.say(f"app: ensure_indexes in {self.index_seconds:.1f} s")
            server = appside.start_app(self.procs, self.root, self.venv_bin, uri, APP_DB,
                                       **self.embedded_env())
            for note in server.notes:
                self.report.note(f"app: {note}")
            try:
                if "status" in self.sections:
                    # First: the calls right after the start, while the warm-up may compute.
                    self.status = seeded if isinstance(seeded, str) else self.guarded(
                        "app status", lambda: self._app_status(server, seeded))
                # Serving and uploads are measured after the app's one-off status warm-up
                # (computing the missing snapshots at first start): not beside it.
                self.guarded("app warm-up", lambda: self._wait_for_warm_up(db, server))
                if "serve" in self.sections:
                    paths = {k: core.url(doc) for k, doc in docs.items()}
                    app_server = serving.Server("app", LABELS["app"], server.port, server.proc,
                                                paths)
                    self.serve["app"] = self.guarded(
                        "app serve", lambda: self._measure_running(app_server))
                    self.serve["front"] = self.guarded(
                        "front", lambda: self._measure_front(db, core, docs, server, paths))
                if "upload" in self.sections:
                    self.app_upload = self.guarded(
                        "app upload", lambda: self._app_upload(server, found))
            finally:
                self.procs.stop(server.proc)
            if isinstance(self.status, status.StatusResult):
                self.guarded("app status restart", lambda: self._status_after_restart(uri, self.status))
        finally:
            client.close()

    def _measure_front(self, db, core: appside.MediaCore, docs: dict, server: appside.AppServer,
                       paths: dict[str, str]) -> serving.ServeResult:
        """The same URLs through the shipped nginx front (hot: from its cache), then the
        proof that a signed URL reaches the app every time."""
        if "nginx" in self.serve:
            # The front's target is a ratio to nginx from disk: measured again next to it, since
            # the first nginx run was minutes ago and the machine's load changes.
            def again() -> serving.ServeResult:
                disk = serving.start_nginx(self.procs, self.work, self.files["img100k.jpg"].parent)
                try:
                    return serving.measure(disk, self.sizes, seconds=self.cfg["wrk_seconds"], rss=False)
                finally:
                    self.procs.stop(disk.proc)
            self.serve["nginx2"] = self.guarded("nginx again", again)
        nginx, log = front.start_front(self.procs, self.work, server.port)
        try:
            nginx.paths = paths
            self.say(f"serve: {nginx.label} on port {nginx.port}")
            result = serving.measure(nginx, self.sizes, seconds=self.cfg["wrk_seconds"], rss=False)
            for key, res in result.wrk.items():
                self.raw.append(f"## {nginx.label} — {key}\n{res.raw}")
            for problem in result.problems:
                self.report.note(f"{nginx.label}: {problem}")
            time.sleep(1.5)  # the shipped access log is flushed every second
            hot, _ = front.count_log(log, paths["100k"])
            self.report.note(f"front, hot 100 KB URL: {hot.summary()} (the MISS is the first GET)")
            private = core.put_private(db, data.with_comment(self.files["img100k.jpg"].read_bytes(),
                                                             "private copy"), "private.jpg")
            signed = core.obj(private, key=appside.SECRET_KEY)["url"]
            cookie_path = core.obj(docs["2m"])["variants"]["thumb"]
            self.signed = self.guarded("front signed", lambda: front.prove_private(
                nginx, log, signed, cookie_path, seconds=self.cfg["wrk_seconds"]))
            summary = ", ".join(f"{k} {v.rps:,.0f}/s" for k, v in result.wrk.items())
            self.say(f"serve: {nginx.label}: {summary}")
            return result
        finally:
            self.procs.stop(nginx.proc)

    def _measure_running(self, server: serving.Server) -> serving.ServeResult:
        profiler = self.start_profiler if self.profile and server.key == "app" else None
        self.say(f"serve: {server.label} on port {server.port}")
        result = serving.measure(server, self.sizes, seconds=self.cfg["wrk_seconds"],
                                 profiler=profiler)
        for key, res in result.wrk.items():
            self.raw.append(f"## {server.label} — {key}\n{res.raw}")
        summary = ", ".join(f"{k} {v.rps:,.0f}/s" for k, v in result.wrk.items())
        if result.rss:
            summary += f", RSS +{result.rss.peak_growth_mb:.1f} MB peak"
        self.say(f"serve: {server.label}: {summary}")
        for problem in result.problems:
            self.report.note(f"{server.label}: {problem}")
        return result

    def start_profiler(self, key: str, pids: list[int], seconds: float,
                       gil: bool = True) -> Callable[[], None]:
        """py-spy each worker for ``seconds``; returns a function that waits for them.

        ``gil=True`` samples only the thread holding the GIL: right for request overhead,
        blind to Pillow's encoders, which release it (so uploads are sampled without it).
        """
        spies = []
        folder = self.work / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        outputs = []
        for pid in pids:
            out = folder / f"{key}-{pid}.txt"
            out.unlink(missing_ok=True)
            outputs.append(out)
            spies.append(self.procs.start(f"py-spy-{key}-{pid}", [
                str(self.venv_bin / "py-spy"), "record", "--pid", str(pid), "--duration",
                str(max(1, int(seconds))), "--format", "raw", "--output", str(out),
                *(["--gil"] if gil else []), "--nonblocking"]))
        self.profiles[key] = outputs

        def stop() -> None:
            for spy in spies:
                try:
                    spy.wait(timeout=seconds + 20)
                except subprocess.TimeoutExpired:
                    pass
                self.procs.stop(spy)
        return stop

    def _app_upload(self, server: appside.AppServer, found: set[str]) -> upload.UploadResult:
        appside.require_route(found, "POST /api/shop/products")
        appside.require_route(found, "POST /api/shop/products/<>/images")
        if not server.token:
            raise appside.AppUnavailable("no admin token (see notes)")
        self.say("upload: app POST /api/shop/products/<sku>/images")
        done = None
        if self.profile:  # sample for about as long as the uploads take (~1 s each)
            done = self.start_profiler("upload", worker_pids(server.proc),
                                       1.5 * (self.cfg["upload_repeat"] + 1), gil=False)
        # The bare Pillow baselines again, one of each after each app upload: on a shared
        # machine the load changes by the minute, and the ratio must compare like with like.
        interleaved: dict[str, list[float]] = {"full": [], "draft": []}
        pillow_cpu: list[float] = []

        def baselines() -> None:
            for key in ("draft", "full"):
                cpu = time.process_time()
                interleaved[key] += upload.time_pillow(self.photo, draft=key == "draft", repeat=1,
                                                       warm=False)
                if key == "draft":
                    pillow_cpu.append((time.process_time() - cpu) * 1000)
        try:
            result = upload.time_app_uploads(server.port, server.headers(), self.photo,
                                             repeat=self.cfg["upload_repeat"],
                                             worker_pids=worker_pids(server.proc), between=baselines,
                                             run_id=str(int(time.time())))
        finally:
            if done:
                done()
        result.pillow_cpu_ms = pillow_cpu
        if interleaved["draft"]:
            self.pillow = interleaved
            self.report.note("upload: the bare Pillow figures are the runs interleaved with the app's "
                             "uploads (one of each after each upload)")
        for problem in result.problems:
            self.report.note(f"app upload: {problem}")
        if not result.times_ms:
            raise appside.AppUnavailable(result.problems[0] if result.problems else "no upload")
        return result

    def _seed(self, db, core: appside.MediaCore, docs: dict, found: set[str]) -> tuple:
        for path in status.ENDPOINTS:
            appside.require_route(found, f"GET {path}")
        template = docs.get("100k")
        if template is None:
            template = core.put(db, self.files["img100k.jpg"].read_bytes(), "template.jpg")
        n_products = self.cfg["status_products"]
        per = self.cfg["status_per_product"]
        self.say(f"status: seeding {n_products:,} products / {n_products * per:,} images "
                 f"({n_products * per * 9:,} files documents)")
        # What was there before (the serve section's images, the template): the answers
        # must count it too.
        files_before = db[f"{status.BUCKET}.files"].count_documents({})
        products_before = db[status.PRODUCTS].count_documents({})
        t0 = time.perf_counter()
        seeded = status.seed(db, template, core.reference, products=n_products, per_product=per)
        seconds = time.perf_counter() - t0
        self.say(f"status: seeded in {seconds:.1f} s")
        return (*seeded, seconds, products_before + seeded[0], files_before + seeded[2])

    def _app_status(self, server: appside.AppServer, seeded: tuple) -> status.StatusResult:
        if not server.token:
            raise appside.AppUnavailable("no admin token (see notes)")
        self.say("status: timing the endpoints (first calls right after the app started)")
        result = status.time_endpoints(server.port, server.headers(),
                                       repeat=self.cfg["status_repeat"], ready_at=server.ready_at)
        (result.products, result.images, result.files_docs, result.seed_seconds,
         result.products_expected, result.files_expected) = seeded
        result.index_seconds = self.index_seconds
        for path, summary in result.summaries.items():
            self.raw.append(f"## {path}\n{summary}")
        for problem in result.problems:
            self.report.note(f"status: {problem}")
        if not any(t.first_ms is not None for t in result.times.values()):
            raise appside.AppUnavailable(result.problems[0] if result.problems else "no answer")
        return result

    def _wait_for_warm_up(self, db, server: appside.AppServer, timeout: float = 900) -> None:
        """Wait until the app's workers have no status sweep running (a result saved, no lease
        held); note how long after the app's start that was."""
        reports = db["status_reports"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = reports.find_one({"_id": "sweep"}) or {}
            if doc.get("result") and not doc.get("lease_owner"):
                waited = time.monotonic() - server.ready_at
                self.report.note(f"app: serve and upload measured after the status warm-up had finished "
                                 f"({waited:.1f} s after the app started answering)")
                return
            time.sleep(0.5)
        self.report.note(f"app: the status warm-up was still running after {timeout:.0f} s; "
                         "serve and upload measured beside it")

    def _status_after_restart(self, uri: str, result: status.StatusResult) -> None:
        """Stop-start the app on the same database (its snapshots stay in MongoDB), call again."""
        self.say("status: restarting the app, first calls again")
        server = appside.start_app(self.procs, self.root, self.venv_bin, uri, APP_DB,
                                   **self.embedded_env())
        try:
            if server.token:
                status.time_after_restart(server.port, server.headers(), result)
        finally:
            self.procs.stop(server.proc)

    # ----------------------------------------------------------------------------------
    # Ingest: the stock driver and the app's store, each on its own fresh SecantusDB

    def run_ingest(self) -> None:
        import gridfs
        import pymongo

        base_image, quality = data.ingest_base()
        budget = self.cfg["ingest_budget_s"]

        def progress(label):
            return lambda msg: self.say(f"ingest {label}: {msg}")

        def stock() -> ingest.IngestResult:
            proc, base = self.secantus("ingest-stock")
            client = pymongo.MongoClient(self.uri(base, "ingest_stock"))
            try:
                bucket = gridfs.GridFSBucket(client["ingest_stock"], "fs")
                return ingest.ingest(lambda d, name: bucket.upload_from_stream(name, d),
                                     base_image, quality, count=self.cfg["ingest_stock"],
                                     seed=1, time_budget_s=budget, progress=progress("stock"))
            finally:
                client.close()
                self.stop_secantus(proc, "ingest-stock")

        def app() -> ingest.IngestResult:
            if self.app_reason:
                raise appside.AppUnavailable(self.app_reason)
            core = appside.media_core(self.root)
            proc, base = self.secantus("ingest-app")
            client = pymongo.MongoClient(self.uri(base, "ingest_app"), tz_aware=True)
            db = client["ingest_app"]
            timer = appside.WriteTimer()
            try:
                if core.ensure_indexes:
                    core.ensure_indexes(db)
                return ingest.ingest(lambda d, name: core.put(db, d, name), base_image, quality,
                                     count=self.cfg["ingest_app"], seed=2, time_budget_s=budget,
                                     progress=progress("app"),
                                     write_ms=timer.take if timer.install() else None)
            finally:
                timer.uninstall()
                client.close()
                self.stop_secantus(proc, "ingest-app")

        self.say(f"ingest: distinct ~1 MB JPEGs (quality {quality}, {base_image.size[0]}px)")
        self.ingests["stock"] = self.guarded("ingest stock", stock)
        self.ingests["app"] = self.guarded("ingest app", app)
        for key, res in self.ingests.items():
            if isinstance(res, ingest.IngestResult):
                for problem in res.problems:
                    self.report.note(f"ingest {key}: {problem}")
                self.raw.append(f"## ingest {key} ms per file\n" +
                                " ".join(f"{t:.0f}" for t in res.times_ms))
                if res.write_ms:
                    self.raw.append(f"## ingest {key} storage.write_files ms per file\n" +
                                    " ".join(f"{t:.0f}" for t in res.write_ms))

    # ----------------------------------------------------------------------------------
    # The table

    def rows(self) -> None:
        r = self.report
        app = self.serve.get("app")
        app_ok = isinstance(app, serving.ServeResult)
        unavailable = app if isinstance(app, str) else "not run"

        def rps(key: str, case: str) -> float | None:
            res = self.serve.get(key)
            if isinstance(res, serving.ServeResult) and case in res.wrk:
                return res.wrk[case].rps
            return None

        def wrk_note(key: str, case: str) -> str:
            res = self.serve.get(key)
            if isinstance(res, serving.ServeResult) and case in res.wrk and not res.wrk[case].clean:
                w = res.wrk[case]
                return f" ({w.errors} err, {w.non_2xx_3xx} bad)"
            return ""

        if "serve" in self.sections:
            # (case, title, app alone ÷ Flask from disk, app behind the front ÷ nginx from disk)
            cases = [("100k", "GET 100 KB JPEG, req/s", 2.0, 0.5), ("2m", "GET 2 MB JPEG, req/s", 1.0, None),
                     ("304", "GET 100 KB If-None-Match → 304, req/s", 2.0, 0.5)]
            front_res = self.serve.get("front")
            for case, title, need, front_need in cases:
                app_rps = rps("app", case)
                front_rps = rps("front", case)
                # The front's target sits on the nginx run next to it when there is one.
                adjacent = isinstance(self.serve.get("nginx2"), serving.ServeResult)
                front_base = "nginx2" if adjacent else "nginx"
                for key in ("nginx", "disk", "pymongo", "naive", "app", "nginx2", "front"):
                    res = self.serve.get(key)
                    if (case == "304" and key == "naive") or (key == "nginx2" and key not in self.serve):
                        continue
                    if key == "app" and not app_ok:
                        r.add(title, LABELS[key], "-", verdict=unavailable)
                        continue
                    if not isinstance(res, serving.ServeResult):
                        r.add(title, LABELS[key], "-", verdict=str(res or "not run"))
                        continue
                    value = rps(key, case)
                    target = verdict = ""
                    if key == front_base and front_need is not None:
                        target = f"front ≥ {front_need:.2f}x"
                        verdict = self.verdict(front_rps, value, lambda a, b, n=front_need: a / b >= n,
                                               str(front_res or "not run"))
                        if front_rps is not None and value:
                            verdict += f" ({front_rps / value:.2f}x)" + self.noisy(
                                "nginx again" if key == "nginx2" else "nginx", "front")
                    if key == "disk":
                        target = f"app ≥ {need:.2f}x"
                        verdict = self.verdict(app_rps, value, lambda a, b, n=need: a / b >= n,
                                               unavailable)
                        if app_rps is not None:
                            verdict += self.noisy("disk", "app serve")
                    r.add(title, LABELS[key], num(value) + wrk_note(key, case),
                          "" if key == "app" else ratio(app_rps, value), target, verdict)

            title = "private media behind the front: signed 100 KB URL under wrk"
            proof = self.signed
            if isinstance(proof, front.SignedProof):
                r.add(title, "requests wrk made / nginx log (cache status)",
                      f"{proof.wrk.requests:,} / {proof.log.summary()}", "",
                      "every one reaches the app", "PROVEN" if proof.every_request_reached_the_app
                      else "NOT PROVEN")
                bad = "" if proof.wrk.clean else f" ({proof.wrk.errors} err, {proof.wrk.non_2xx_3xx} bad)"
                r.add(title, "signed URL through the front, req/s (the app's pace, not the cache's)",
                      num(proof.wrk.rps) + bad)
                r.add(title, "public response fetched with a Cookie", "stored" if proof.cookie_stored
                      else "not stored (MISS, MISS, then MISS without it)", "", "never stored",
                      "MISSED" if proof.cookie_stored else "MET")
            else:
                r.add(title, LABELS["front"], "-", verdict=str(proof or "not run"))

            title = "16 x 50 MB downloads: workers' RSS growth, MB peak (after)"
            app_rss = app.rss.peak_growth_mb if app_ok and app.rss else None
            for key in ("nginx", "disk", "pymongo", "naive", "app"):
                res = self.serve.get(key)
                if not isinstance(res, serving.ServeResult) or res.rss is None:
                    r.add(title, LABELS[key], "-",
                          verdict=unavailable if key == "app" else str(res or "not run"))
                    continue
                rss = res.rss
                value = f"{rss.peak_growth_mb:.1f} ({rss.after_growth_mb:.1f})"
                if rss.ok_downloads != rss.clients:
                    value += f" [{rss.ok_downloads}/{rss.clients} ok]"
                if key == "app":
                    ok = rss.peak_growth_mb <= 32 and rss.ok_downloads == rss.clients
                    r.add(title, LABELS[key], value, "", "≤ 32 MB peak", "MET" if ok else "MISSED")
                else:
                    meaningful = app_rss is not None and rss.peak_growth_mb >= 1
                    r.add(title, LABELS[key], value,
                          ratio(app_rss, rss.peak_growth_mb) if meaningful else "")

        if "upload" in self.sections and self.pillow:
            up = self.app_upload
            app_ms = up.median if isinstance(up, upload.UploadResult) else None
            n = len(self.pillow["draft"])
            title = (f"12 MP JPEG: bare Pillow → 4 WebP variants vs the app's upload (validate + "
                     f"strip + 8 renditions + store), ms (median of {n})")
            full = statistics.median(self.pillow["full"])
            draft = statistics.median(self.pillow["draft"])
            r.add(title, "bare Pillow, full decode + LANCZOS", num(full), ratio(app_ms, full))
            r.add(title, "bare Pillow, draft + reducing_gap", num(draft), ratio(app_ms, draft),
                  "app ≤ 0.50x",
                  self.verdict(app_ms, draft, lambda a, b: a / b <= 0.5,
                               up if isinstance(up, str) else "not run")
                  + (self.noisy("app upload") if app_ms else ""))
            if isinstance(up, upload.UploadResult):
                r.add(title, f"app: admin upload (HTTP, median of {len(up.times_ms)})",
                      num(app_ms))
                if up.cpu_ms and up.pillow_cpu_ms:
                    app_cpu = statistics.median(up.cpu_ms)
                    pillow_cpu = statistics.median(up.pillow_cpu_ms)
                    r.add(title, "CPU ms per upload: app workers, all threads (bare Pillow draft, "
                          "one thread)", f"{num(app_cpu)} ({num(pillow_cpu)})",
                          f"{app_cpu / pillow_cpu:.2f}x" if pillow_cpu else "")
                if up.peak_rss_mb:
                    worst = max(up.peak_rss_mb)
                    r.add(title, "app: workers' peak extra RSS per upload, MB (above idle, warm-up "
                          "included)", f"{worst:.1f} ({up.peak_above_idle_mb:.1f})", "",
                          "≤ 150 MB", "MET" if worst <= 150 else "MISSED")
            else:
                r.add(title, "app: admin upload (HTTP)", "-", verdict=str(up or "not run"))

        if "ingest" in self.sections:
            title = "ingest distinct 1 MB JPEGs: ms/file first-50 → last-50 median"
            stock = self.ingests.get("stock")
            appi = self.ingests.get("app")
            for key, label in (("stock", "stock GridFSBucket.upload_from_stream"),
                               ("app", "app media.store (validate, 4 variants, write)")):
                res = self.ingests.get(key)
                if isinstance(res, ingest.IngestResult) and res.growth is None:
                    r.add(title, label, f"{len(res.times_ms)} files", verdict="too few files "
                          f"for two windows of {ingest.WINDOW} (time budget)")
                    continue
                if not isinstance(res, ingest.IngestResult):
                    r.add(title, label, "-", verdict=str(res or "not run"))
                    continue
                mb = res.stored_bytes / 2**20
                value = (f"{res.first:.0f} → {res.last:.0f} ({res.growth:.2f}x, "
                         f"{len(res.times_ms)} files, {mb:,.0f} MB)")
                if key == "app":
                    r.add(title, label, value, "", "last ≤ 1.5x first",
                          ("MET" if res.growth <= 1.5 else "MISSED") + self.noisy("ingest app"))
                    phase = res.write_phase()
                    if phase and phase[0] > 0:
                        r.add(title, "  of which storage.write_files (original + 8 variants)",
                              f"{phase[0]:.0f} → {phase[1]:.0f} ({phase[1] / phase[0]:.2f}x)")
                else:
                    vs = ""
                    if isinstance(appi, ingest.IngestResult) and appi.growth and stock.growth:
                        vs = f"{appi.growth / stock.growth:.2f}x growth"
                    r.add(title, label, value, vs)

        if "status" in self.sections:
            st = self.status
            if isinstance(st, status.StatusResult):
                title = (f"status, {st.products:,} products / {st.images:,} images "
                         f"({st.files_docs:,} files docs), ms")
                scale = "" if st.products >= 10_000 else f" at {st.products:,} products (--full: 10,000)"
                scale += self.noisy("app status")
                index = f", indexes built in {st.index_seconds:,.1f} s" if st.index_seconds else ""
                r.add(title, "seeding (bulk inserts, before the indexes)",
                      f"{st.seed_seconds:,.1f} s{index}")
                for path, t in st.times.items():
                    name = path.rsplit("/", 1)[-1]
                    if t.first_ms is None:
                        r.add(title, f"GET …/{name}", "-", verdict="no answer")
                        continue
                    how = ("waited for the warm-up's compute" if t.first_waited
                           else "computed in the request" if t.first_waited is False
                           else "answered from the snapshot the warm-up had saved")
                    if t.first_after_s is not None:
                        how += f"; called {t.first_after_s:,.1f} s after the app started"
                    r.add(title, f"GET …/{name}: first call on a database without snapshots",
                          f"{num(t.first_ms)} ({how})", "", "< 300 ms",
                          ("MET" if t.first_ms < status.TARGET_MS else "MISSED") + scale)
                    if t.restart_ms is not None:
                        value = num(t.restart_ms) + (" stale" if t.restart_stale else "")
                        r.add(title, f"GET …/{name}: first call after an app restart (snapshot kept)",
                              value, "", "< 300 ms",
                              ("MET" if t.restart_ms < status.TARGET_MS else "MISSED") + scale)
                    if t.repeat_ms:
                        worst, med = max(t.repeat_ms), statistics.median(t.repeat_ms)
                        value = f"{worst:,.0f} ({med:,.0f}, n={len(t.repeat_ms)})"
                        if t.served_stale:
                            value += " stale"
                        r.add(title, f"GET …/{name}: next calls, worst (median)", value, "",
                              "< 300 ms", ("MET" if worst < status.TARGET_MS else "MISSED") + scale)
                    if t.compute_ms is not None:
                        r.add(title, f"GET …/{name}: computing the report (its compute_ms)",
                              num(t.compute_ms))
                    if t.counted:
                        expected = (f"products.total={st.products_expected:,}"
                                    if "products.total" in t.counted else f"files={st.files_expected:,}")
                        r.add(title, f"GET …/{name}: first answer counted", t.counted, "",
                              expected.split("=")[0] + " as seeded",
                              "MATCHES SEED" if expected in t.counted else "DIFFERS FROM SEED")
            else:
                r.add("status endpoints (10,000 products / 50,000 images)", "app", "-",
                      verdict=str(st or "not run"))

    @staticmethod
    def verdict(app: float | None, base: float | None, test: Callable[[float, float], bool],
                unavailable: str) -> str:
        if app is None:
            return unavailable
        if not base:
            return "no baseline"
        return "MET" if test(app, base) else "MISSED"

    def finish(self, command: str, target: Path) -> None:
        """Print the table and write it as markdown to ``target``."""
        shown = {k: v for k, v in self.foreign.items()
                 if v is not None and k not in ("app", "app status seed")}
        if shown:
            self.report.note("CPU used by other processes while measuring (% of all cores): "
                             + ", ".join(f"{k} {v:.0f} %" for k, v in shown.items()))
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        self.report.note(f"load average at the end (1, 5, 15 min): {load}")
        self.rows()
        info = machine()
        text = self.report.text(info)
        print()
        print(text, flush=True)
        target.write_text(self.report.markdown(info, command))
        raw = target.with_suffix(".raw")
        raw.write_text("\n\n".join(self.raw) + "\n")
        if self.profiles:
            out = ["# py-spy of the app's gunicorn workers during wrk", ""]
            for key, paths in self.profiles.items():
                out += [f"## {key}", ""] + profiles.summarize(paths) + [""]
            (self.results / "profile.md").write_text("\n".join(out))
            self.say(f"wrote {self.results / 'profile.md'} (raw stacks: {self.work / 'profiles'})")
        self.say(f"wrote {target} (raw wrk output: {raw})")
