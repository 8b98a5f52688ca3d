"""Target 2: the app behind the shipped nginx front (deploy/nginx/avenue.conf) and its media cache.

The shipped site is rendered as tests/system/test_nginx.py renders it (upstream port, cache, log
paths), with one more change for the benchmark: its HTTPS listener becomes a plain loopback
one and the ssl_* lines go, because the baseline it is compared with (nginx from disk) speaks
plain HTTP too; TLS would cost both the same in production. Everything else (the cache key,
the bypass and no-cache rules, buffering, limits, the access log with the cache status) is
as shipped. The main nginx.conf around it is the disk baseline's: 2 workers, sendfile.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import BenchError, Procs, WrkResult, free_port, request, wait_port, wrk
from serving import Server

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "avenue.conf"


def render_site(folder: Path, *, app_port: int, port: int, redirect_port: int) -> Path:
    """The shipped site pointed at ``folder`` and the app, listening on plain loopback ports."""
    replacements = {
        "/var/cache/nginx/avenue": str(folder / "cache"),
        "/var/log/nginx/avenue.access.log": str(folder / "access.log"),
        "/var/log/nginx/avenue.error.log": str(folder / "error.log"),
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
        "listen 80;": f"listen 127.0.0.1:{redirect_port};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{port};",
        "listen [::]:443 ssl http2;": "",
    }
    text = SITE.read_text()
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise BenchError(f"{SITE.name} should contain {old!r} exactly once")
        text = text.replace(old, new)
    text = re.sub(r"(?m)^\s*ssl_\w+ .*;\n", "", text)
    site = folder / "avenue.conf"
    site.write_text(text)
    return site


def start_front(procs: Procs, work: Path, app_port: int) -> tuple[Server, Path]:
    """nginx with the shipped site in front of the app; returns it and its access log."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    folder = work / "front"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    port, redirect_port = free_port(), free_port()
    site = render_site(folder, app_port=app_port, port=port, redirect_port=redirect_port)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(
        ("user root root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 2;\ndaemon off;\npid {folder / 'nginx.pid'};\n"
        + f"error_log {folder / 'nginx-error.log'} warn;\n"
        + "events { worker_connections 1024; }\n"
        + "http {\n    access_log off;\n    sendfile on;\n    tcp_nopush on;\n"
        + "    keepalive_requests 1000000;\n"
        + f"{temp}\n    include {site};\n}}\n")
    proc = procs.start("front-nginx", [nginx, "-p", str(folder), "-e", str(folder / "nginx-error.log"),
                                       "-c", str(conf)])
    wait_port(port, proc, 20, "nginx front")
    return Server("front", "Avenue app behind the nginx front (cache)", port, proc, {}), folder / "access.log"


@dataclass
class LogCount:
    """What the front's access log says about the requests for one URL."""

    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # $upstream_cache_status -> count
    reached_app: int = 0  # lines with an upstream response time: nginx asked gunicorn

    def summary(self) -> str:
        shown = ", ".join(f"{k} {v:,}" for k, v in sorted(self.statuses.items()))
        return f"{self.requests:,} requests ({shown}), {self.reached_app:,} reached the app"


_LINE = re.compile(r'"(?:GET|HEAD) (?P<uri>\S+) [^"]*" (?P<status>\d+) .* urt=(?P<urt>\S+) '
                   r"cache=(?P<cache>\S+)$")


def count_log(log: Path, uri: str, start: int = 0) -> tuple[LogCount, int]:
    """Count the log lines for ``uri`` from byte ``start``; returns the count and the end offset."""
    result = LogCount()
    with open(log, "rb") as fh:
        fh.seek(start)
        for raw in fh:
            match = _LINE.search(raw.decode("latin-1").rstrip("\n"))
            if not match or match["uri"] != uri:
                continue
            result.requests += 1
            result.statuses[match["cache"]] = result.statuses.get(match["cache"], 0) + 1
            if match["urt"] not in {"-", ""}:
                result.reached_app += 1
        end = fh.tell()
    return result, end


@dataclass
class SignedProof:
    """wrk on a signed (private) URL through the front, and the access log's count of it."""

    wrk: WrkResult
    log: LogCount
    cookie_stored: bool  # whether a public response fetched with a Cookie was stored

    @property
    def every_request_reached_the_app(self) -> bool:
        """True when the log holds every request wrk made and each went to gunicorn."""
        return (self.log.requests >= self.wrk.requests and self.log.reached_app == self.log.requests
                and not self.log.statuses.keys() - {"BYPASS"})


def prove_private(front: Server, log: Path, signed: str, cookie_path: str, *,
                  seconds: float) -> SignedProof:
    """Hammer ``signed`` through the front and show from nginx's log that each request reached
    the app; and that a public response fetched with a Cookie is not stored in the cache."""
    first = request("GET", front.port, signed, timeout=30)
    if first.status != 200 or first.headers.get("x-cache-status") != "BYPASS":
        raise BenchError(f"signed URL through the front: HTTP {first.status}, "
                         f"X-Cache-Status {first.headers.get('x-cache-status')}")
    time.sleep(1.5)  # the shipped access log is flushed every second
    start = log.stat().st_size
    result = wrk(front.port, signed, seconds=seconds)
    time.sleep(1.5)
    counted, _ = count_log(log, signed, start)
    # A public variant nobody fetched yet, twice with a cookie: neither answer may be stored,
    # so the first request without one is still a MISS.
    with_cookie = [request("GET", front.port, cookie_path, headers={"Cookie": "session=x"}, timeout=30)
                   for _ in range(2)]
    without = request("GET", front.port, cookie_path, timeout=30)
    statuses = [r.headers.get("x-cache-status") for r in (*with_cookie, without)]
    stored = statuses != ["MISS", "MISS", "MISS"]
    return SignedProof(result, counted, stored)
