"""Target 1 and 2: requests/s of hot images and 304s under wrk, and worker RSS under big downloads."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    BenchError,
    Procs,
    RssResult,
    WrkResult,
    concurrent_downloads,
    free_port,
    parallel_get,
    request,
    wait_http,
    wait_port,
    worker_pids,
    wrk,
)

BENCH_DIR = Path(__file__).resolve().parent
FILES = {"100k": "img100k.jpg", "2m": "img2m.jpg", "50m": "img50m.jpg"}


@dataclass
class Server:
    key: str
    label: str
    port: int
    proc: subprocess.Popen
    paths: dict[str, str]  # "100k" / "2m" / "50m" -> URL path
    conditional: bool = True  # does it answer If-None-Match with 304?
    notes: list[str] = field(default_factory=list)


@dataclass
class ServeResult:
    wrk: dict[str, WrkResult] = field(default_factory=dict)  # "100k" / "2m" / "304"
    rss: RssResult | None = None
    problems: list[str] = field(default_factory=list)


def start_nginx(procs: Procs, work: Path, data_dir: Path) -> Server:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = work / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = (BENCH_DIR / "baselines" / "nginx.conf.template").read_text().format(
        work=prefix, port=port, data=data_dir)
    conf_path = prefix / "nginx.conf"
    conf_path.write_text(conf)
    proc = procs.start("nginx", [nginx, "-p", str(prefix), "-e", str(prefix / "nginx-error.log"),
                                 "-c", str(conf_path)])
    wait_port(port, proc, 20, "nginx")
    paths = {k: f"/files/{v}" for k, v in FILES.items()}
    return Server("nginx", "nginx from disk", port, proc, paths)


def start_baseline(procs: Procs, venv_bin: Path, key: str, label: str, module: str,
                   env: dict[str, str], paths: dict[str, str], conditional: bool = True) -> Server:
    """One of the tiny Flask baselines under gunicorn, 2 workers x gthread 4, on loopback."""
    port = free_port()
    argv = [str(venv_bin / "gunicorn"), "--workers", "2", "--worker-class", "gthread",
            "--threads", "4", "--bind", f"127.0.0.1:{port}", "--chdir", str(BENCH_DIR),
            "--log-level", "warning", f"baselines.{module}:app"]
    proc = procs.start(f"baseline-{key}", argv, env=env)
    wait_http(port, paths["100k"], proc, 60, label)
    return Server(key, label, port, proc, paths, conditional)


def _check(server: Server, sizes: dict[str, int],
           keys: tuple[str, ...] = ("100k", "2m")) -> tuple[str | None, list[str]]:
    """GET each small file once: right status and length; returns the ETag of the 100 KB one."""
    problems = []
    etag = None
    for key in keys:
        reply = request("GET", server.port, server.paths[key], timeout=30)
        if reply.status != 200 or len(reply.body) != sizes[key]:
            raise BenchError(f"GET {server.paths[key]}: HTTP {reply.status}, {len(reply.body)} "
                             f"bytes (expected 200, {sizes[key]})")
        if key == "100k":
            etag = reply.headers.get("etag")
    if server.conditional:
        if not etag:
            problems.append("no ETag on the 100 KB response: 304 not measured")
        else:
            again = request("GET", server.port, server.paths["100k"],
                            headers={"If-None-Match": etag}, timeout=30)
            if again.status != 304:
                problems.append(f"If-None-Match answered {again.status}, not 304")
                etag = None
    return etag, problems


def measure(server: Server, sizes: dict[str, int], *, seconds: float, clients: int = 16,
            rss: bool = True, profiler: Callable | None = None,
            only: tuple[str, ...] = ("100k", "2m", "304")) -> ServeResult:
    """wrk on the 100 KB, 2 MB and 304 cases (or ``only`` some of them; the 100 KB file is
    always checked, the 304's ETag is its), then RSS under ``clients`` 50 MB downloads.

    ``profiler(case, worker_pids, seconds)``, when given, starts sampling the workers and
    returns a function that waits for it to finish.
    """
    result = ServeResult()
    etag, result.problems = _check(server, sizes, ("100k", "2m") if "2m" in only else ("100k",))
    parallel_get(server.port, server.paths["100k"], 32)  # every worker and thread once
    cases = [(key, server.paths[key], None) for key in ("100k", "2m") if key in only]
    if server.conditional and etag and "304" in only:
        cases.append(("304", server.paths["100k"], {"If-None-Match": etag}))
    for key, path, headers in cases:
        done = profiler(key, worker_pids(server.proc), seconds) if profiler else None
        try:
            result.wrk[key] = wrk(server.port, path, seconds=seconds, headers=headers)
        finally:
            if done:
                done()
    if rss and worker_pids(server.proc):
        # Two downloads first, so that each worker's steady-state buffers count as "before".
        concurrent_downloads(server.port, server.paths["50m"], clients=2,
                             expect_bytes=sizes["50m"], master=server.proc)
        result.rss = concurrent_downloads(server.port, server.paths["50m"], clients=clients,
                                          expect_bytes=sizes["50m"], master=server.proc)
        if result.rss.ok_downloads != clients:
            result.problems.append(f"only {result.rss.ok_downloads}/{clients} downloads complete "
                                   f"({result.rss.detail})")
    return result


def load_gridfs_baseline(mongo_uri: str, files: dict[str, Path]) -> dict[str, str]:
    """Store the files the Flask-PyMongo way (``save_file``, which adds the sha1 ETag).

    Returns key -> file id (the naive baseline fetches by id).
    """
    from flask import Flask
    from flask_pymongo import PyMongo

    app = Flask("bench-loader")
    app.config["MONGO_URI"] = mongo_uri
    mongo = PyMongo(app)
    ids = {}
    with app.app_context():
        for key, name in FILES.items():
            existing = mongo.db["fs.files"].find_one({"filename": name}, {"_id": 1})
            if existing is None:
                with open(files[name], "rb") as fh:
                    ids[key] = str(mongo.save_file(name, fh))
            else:
                ids[key] = str(existing["_id"])
    mongo.cx.close()
    return ids


def ensure_not_running(server: Server) -> None:
    if server.proc.poll() is not None:
        raise BenchError(f"{server.label} died (exit {server.proc.returncode})")
