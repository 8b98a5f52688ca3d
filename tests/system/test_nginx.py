"""deploy/nginx/avenue.conf: valid for nginx, and in front of the app it caches public media only.

The shipped file is rendered with its machine-specific values (upstream port, listen ports,
cache, log and certificate paths) pointed at a temp folder; everything else is tested as
shipped. nginx is installed with apt-get when missing (as bench/run.py does); the tests are
skipped, saying why, only when that is impossible.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPSConnection
from pathlib import Path

import pymongo
import pytest

from avenue.embedded import free_port
from tests.helpers import image_bytes
from tests.support.client import multipart
from tests.support.launcher import LOOPBACK, ROOT, gunicorns

SITE = ROOT / "deploy" / "nginx" / "avenue.conf"


def _install(*packages: str) -> str | None:
    """apt-get install ``packages``; None when done, else why it could not be."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root, or no apt-get"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300, check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, timeout=600, check=True,
                       capture_output=True)
    except (subprocess.SubprocessError, OSError) as error:
        return f"apt-get install {' '.join(packages)} failed: {error}"
    return None


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    why = _install(package)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        pytest.skip(f"{name} is not installed and could not be installed ({why}); "
                    f"run `apt-get install {package}`")
    return found


@pytest.fixture(scope="session")
def nginx() -> str:
    return _tool("nginx", "nginx")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1."""
    openssl = _tool("openssl", "openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def render_site(folder: Path, certificate: tuple[Path, Path], *, app_port: int | None = None,
                http_port: int | None = None, https_port: int | None = None) -> Path:
    """The shipped site with its machine-specific values replaced (each must be there once)."""
    cert, key = certificate
    replacements = {
        "/var/cache/nginx/avenue": str(folder / "cache"),
        "/etc/ssl/avenue/fullchain.pem": str(cert),
        "/etc/ssl/avenue/privkey.pem": str(key),
        "/var/log/nginx/avenue.access.log": str(folder / "avenue.access.log"),
        "/var/log/nginx/avenue.error.log": str(folder / "avenue.error.log"),
    }
    if app_port:
        replacements["server 127.0.0.1:8000;"] = f"server {LOOPBACK}:{app_port};"
    if http_port and https_port:
        replacements.update({
            "listen 80;": f"listen {LOOPBACK}:{http_port};",
            "listen [::]:80;": "",
            "listen 443 ssl http2;": f"listen {LOOPBACK}:{https_port} ssl http2;",
            "listen [::]:443 ssl http2;": "",
        })
    text = SITE.read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{SITE.name} should contain {old!r} exactly once"
        text = text.replace(old, new)
    site = folder / "avenue.conf"
    site.write_text(text)
    return site


def main_config(folder: Path, site: Path, *, foreground: bool = False) -> Path:
    """A minimal nginx.conf that includes ``site`` in its http block, all paths in ``folder``."""
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(
        ("user root root;\n" if os.geteuid() == 0 else "")
        + ("daemon off;\n" if foreground else "")
        + f"worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\n{temp}\n    access_log {folder / 'access.log'};\n    include {site};\n}}\n")
    return conf


def compiled_prefix(nginx: str) -> Path:
    """The prefix this nginx was built with (``nginx -V``): where its relative paths point."""
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=30).stderr
    for word in built.split():
        if word.startswith("--prefix="):
            return Path(word.removeprefix("--prefix="))
    return Path("/usr/local/nginx")  # nginx's own default when built without --prefix


def lend_modules(nginx: str, folder: Path) -> None:
    """Give the prefix ``folder`` the ``modules`` folder of the installed nginx.

    Debian's nginx-light, -full and -extras load their dynamic modules with a path relative to
    the prefix (``load_module modules/ngx_http_echo_module.so;`` in modules-enabled/), so a test
    that moves the prefix to a temp folder must bring that folder along (issue 32). A link, so
    nothing installed is copied or changed.
    """
    modules = compiled_prefix(nginx) / "modules"
    if modules.is_dir() and not (folder / "modules").exists():
        (folder / "modules").symlink_to(modules.resolve(), target_is_directory=True)


def nginx_t(nginx: str, conf: Path, folder: Path) -> subprocess.CompletedProcess:
    lend_modules(nginx, folder)
    return subprocess.run([nginx, "-t", "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)],
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_site_passes_nginx_t(nginx, certificate, tmp_path):
    conf = main_config(tmp_path, render_site(tmp_path, certificate))
    result = nginx_t(nginx, conf, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_the_site_drops_into_the_distributions_own_nginx_conf(nginx, certificate, tmp_path):
    """As /etc/nginx/conf.d/avenue.conf: no directive clashes with what Debian's http block sets."""
    system = Path("/etc/nginx/nginx.conf")
    if not system.exists() or "include /etc/nginx/conf.d/*.conf;" not in system.read_text():
        pytest.skip("no Debian-style /etc/nginx/nginx.conf including conf.d/*.conf here")
    site = render_site(tmp_path, certificate)
    text = system.read_text().replace("include /etc/nginx/conf.d/*.conf;", f"include {site};")
    text = text.replace("include /etc/nginx/sites-enabled/*;", "")
    conf = tmp_path / "system-nginx.conf"
    conf.write_text(text)
    result = nginx_t(nginx, conf, tmp_path)
    assert result.returncode == 0, result.stderr


# --- nginx in front of the app -------------------------------------------------------------


class Nginx:
    def __init__(self, nginx: str, conf: Path, folder: Path, port: int) -> None:
        self.folder = folder
        argv = [nginx, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"nginx did not start: {(folder / 'error.log').read_text()[-2000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@pytest.fixture
def front(nginx, certificate, secantus, tmp_path):
    """The Procfile's gunicorn (AVENUE_PROXY_COUNT=1) behind the shipped nginx site, over TLS."""
    with gunicorns(secantus.uri, tmp_path) as start_gunicorn:
        app = start_gunicorn(AVENUE_PROXY_COUNT="1")
        http_port, https_port = free_port(), free_port()
        folder = tmp_path / "nginx"
        folder.mkdir()
        site = render_site(folder, certificate, app_port=app.port, http_port=http_port, https_port=https_port)
        server = Nginx(nginx, main_config(folder, site, foreground=True), folder, https_port)
        try:
            yield Front(https_port, app)
        finally:
            server.stop()


class Front:
    """HTTPS requests to nginx (the certificate is self-signed: not verified)."""

    def __init__(self, port: int, app) -> None:
        self.port = port
        self.app = app
        self.tls = ssl.create_default_context()
        self.tls.check_hostname = False
        self.tls.verify_mode = ssl.CERT_NONE

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = HTTPSConnection(LOOPBACK, self.port, timeout=30, context=self.tls)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def upload(self, token: dict[str, str], filename: str, data: bytes, visibility: str,
               **headers: str) -> dict:
        """An upload through the front (its own headers: nginx's X-Forwarded-* replace the client's)."""
        body, content_type = multipart({"visibility": visibility}, "file", filename, data)
        status, _, answer = self.request("POST", "/api/uploads", body, {
            **token, "Content-Type": content_type, **headers})
        assert status == 201, answer
        return json.loads(answer)


@pytest.mark.slow
def test_public_media_is_cached_and_private_media_and_the_api_never_are(front):
    token = front.app.token()
    with pymongo.MongoClient(front.app.mongo_uri) as client:
        db = client[front.app.db_name]
        spoofed = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example"}
        public = front.upload(token, "dot.png", image_bytes("good/progressive.jpg"), "public", **spoofed)
        private = front.upload(token, "scan.png", image_bytes("good/png16.png"), "private")
        # nginx replaces the client's X-Forwarded-*: the app saw the real peer, not 6.6.6.6.
        assert {entry["ip"] for entry in db.audit_logs.find({"action": "upload_created"})} == {LOOPBACK}

    first = front.request("GET", public["url"])
    second = front.request("GET", public["url"])
    assert first[0] == second[0] == 200 and first[2] == second[2]
    assert (first[1]["X-Cache-Status"], second[1]["X-Cache-Status"]) == ("MISS", "HIT")

    # A negotiated variant is cached per Accept class: WebP never reaches a client without it.
    card = public["variants"]["card"]
    for accept, content_type in (("image/avif,image/webp,*/*", "image/webp"), ("*/*", "image/jpeg")):
        answers = [front.request("GET", card, headers={"Accept": accept})[1] for _ in range(2)]
        assert [a["X-Cache-Status"] for a in answers] == ["MISS", "HIT"]
        assert {a["Content-Type"] for a in answers} == {content_type}

    # A rendition on request too, in three classes: AVIF reaches only a client that asks for it;
    # an Accept with q-values on image types is keyed whole (q=0 is never: issue 62).
    rendition = card.rsplit("/", 1)[0] + "/w_320"
    for accept, content_type in (("image/avif,image/webp,*/*", "image/avif"),
                                 ("image/webp,*/*", "image/webp"), ("*/*", "image/jpeg"),
                                 ("image/avif;q=0,image/webp,*/*", "image/webp")):
        answers = [front.request("GET", rendition, headers={"Accept": accept})[1] for _ in range(2)]
        assert [a["X-Cache-Status"] for a in answers] == ["MISS", "HIT"]
        assert {a["Content-Type"] for a in answers} == {content_type}

    assert "?" in private["url"] and "sig=" in private["url"]
    for _ in range(3):
        status, headers, _ = front.request("GET", private["url"])
        assert status == 200 and headers["Cache-Control"].startswith("private")
        assert headers["X-Cache-Status"] == "BYPASS"

    api = f"/api/uploads/{public['id']}"
    for _ in range(2):
        status, headers, _ = front.request("GET", api, headers=token)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        assert "X-Cache-Status" not in headers
    cache = front.app.log_path.parent / "nginx" / "cache"
    # the original, two card answers and four answers of the rendition
    assert len([p for p in cache.rglob("*") if p.is_file()]) == 7


@pytest.mark.slow
def test_nginx_refuses_what_the_app_would_refuse_before_gunicorn_sees_it(front):
    status, headers, body = front.request("POST", "/api/auth/login", b"x" * (64 * 1024),
                                          {"Content-Type": "application/json"})
    assert status == 413 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "request_entity_too_large"
    # The zone refills one login every 6 s, and eight logins one after another took longer than
    # that on a loaded CI machine (a seventh passed). So the eight are connected first and sent
    # together: nginx decides each as it arrives, within milliseconds of the others.
    connections = [HTTPSConnection(LOOPBACK, front.port, timeout=60, context=front.tls) for _ in range(8)]
    for conn in connections:
        conn.connect()
    start = threading.Barrier(len(connections))

    def login(conn: HTTPSConnection) -> int:
        start.wait()
        conn.request("POST", "/api/auth/login", b'{"email": "a@b.c", "password": "x"}',
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status

    try:
        with ThreadPoolExecutor(len(connections)) as pool:
            statuses = sorted(pool.map(login, connections))
    finally:
        for conn in connections:
            conn.close()
    assert statuses == [401] * 6 + [429] * 2  # 1 + a burst of 5, then limited
    # Refusals are in the access log, never in the error log (a flood of them wrote 263 MB of
    # error log in 30 s when they were logged at error level).
    error_log = front.app.log_path.parent / "nginx" / "avenue.error.log"
    assert "limiting" not in (error_log.read_text() if error_log.exists() else "")


@pytest.mark.slow
def test_what_a_request_with_a_cookie_or_credentials_fetched_is_never_stored_but_may_be_served(front):
    token = front.app.token()
    public = front.upload(token, "cookie.jpg", image_bytes("good/grayscale.jpg"), "public")
    thumb = public["variant_urls"]["thumb"]["jpg"]
    statuses = [front.request("GET", thumb, headers=headers)[1]["X-Cache-Status"] for headers in (
        {"Cookie": "session=abc"}, token, {}, {"Cookie": "session=abc"})]
    # Neither credentialed answer was stored; the first plain one was, and then serves everyone.
    assert statuses == ["MISS", "MISS", "MISS", "HIT"]
