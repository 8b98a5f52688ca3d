"""Dockerfile and compose.yaml: what can be checked without pulling images or running docker.

(nginx -t on deploy/nginx/avenue.conf, the file compose mounts, is tests/system/test_nginx.py's.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from avenue.dialect import FIXED_SINCE, MINIMUM_SERVER

ROOT = Path(__file__).resolve().parents[2]


def env_example_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M))


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_the_image_is_a_slim_python_running_the_procfiles_gunicorn_as_a_non_root_user():
    steps = dockerfile()
    [base] = [args for kind, args in steps if kind == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base)
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert [kind for kind, _ in steps].index("USER") < [kind for kind, _ in steps].index("CMD")
    [cmd] = [args for kind, args in steps if kind == "CMD"]
    web = (ROOT / "Procfile").read_text().split("web:", 1)[1].splitlines()[0].split()
    assert json.loads(cmd) == web == ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
    [health] = [args for kind, args in steps if kind == "HEALTHCHECK"]
    assert "/healthz" in health and "--interval=" in health


def test_the_images_install_steps_are_the_documented_ones():
    installs = [args for kind, args in dockerfile() if kind == "RUN" and "pip install" in args]
    documented = [line.strip() for line in (ROOT / "docs/production.md").read_text().splitlines()
                  if line.strip().startswith("python -m pip install")]
    assert installs and installs == documented
    copied = " ".join(args for kind, args in dockerfile() if kind == "COPY")
    for needed in ("requirements.txt", "pyproject.toml", "wsgi.py", "gunicorn.conf.py", "avenue"):
        assert needed in copied


def test_compose_runs_the_app_a_one_node_replica_set_and_the_shipped_nginx_front():
    services = compose()["services"]
    assert set(services) == {"app", "mongo", "nginx"}
    mongo = services["mongo"]
    assert "--replSet" in mongo["command"] and "rs0" in mongo["command"]
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    app = services["app"]
    assert app["build"] == "."
    assert "replicaSet=rs0" in app["environment"]["MONGO_URI"]
    assert app["environment"]["MONGO_URI"].startswith("mongodb://mongo:27017/")
    assert app["depends_on"]["mongo"]["condition"] == "service_healthy"
    nginx = services["nginx"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in nginx["volumes"]}
    assert mounts["./deploy/nginx/avenue.conf"].startswith("/etc/nginx/conf.d/")
    assert (ROOT / "deploy/nginx/avenue.conf").is_file()
    # The shipped file proxies to 127.0.0.1:<port>: nginx shares the app's network namespace.
    site = (ROOT / "deploy/nginx/avenue.conf").read_text()
    upstream = re.search(r"upstream avenue_app \{\s*server ([\d.]+):(\d+);", site)
    assert upstream and nginx["network_mode"] == "service:app"
    assert (app["environment"]["HOST"], app["environment"]["PORT"]) == upstream.groups()
    certs = re.search(r"ssl_certificate\s+(/\S+)/fullchain\.pem;", site)
    assert certs and certs.group(1) in mounts.values()


def test_compose_runs_a_mongod_production_supports_without_zlib_compression():
    mongo = compose()["services"]["mongo"]
    name, tag = mongo["image"].split(":")
    branch = tuple(int(part) for part in tag.split(".")[:2])
    # A branch tag follows its patch releases: one at or past the minimum's, with the CVE's fix.
    assert name == "mongo" and len(tag.split(".")) == 2 and branch >= MINIMUM_SERVER[:2]
    assert branch in FIXED_SINCE or branch > max(FIXED_SINCE)
    # and no zlib (CVE-2025-14847) even on a cached image pulled before that fix
    command = mongo["command"]
    assert "zlib" not in command[command.index("--networkMessageCompressors") + 1].split(",")


def test_the_apps_environment_uses_only_env_example_names():
    names = set(compose()["services"]["app"]["environment"])
    assert names and names <= env_example_names(), names - env_example_names()
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / "compose.yaml").read_text()))
    assert referenced <= env_example_names()


def test_the_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "var"} <= ignored
