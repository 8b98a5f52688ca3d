"""Configuration and packaging: .env files, unknown variables, the package and its defaults.

(That every variable in .env.example is read by the code is tests/api/test_strict_input.py's.)
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from avenue import envfile
from avenue.config import KNOWN_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
INTERNAL = {"AVENUE_TEST_MONGO_URI", "AVENUE_FUZZ_EXAMPLES", "AVENUE_SCHEMATHESIS_EXAMPLES",
            "AVENUE_FIXTURES", "AVENUE_METRICS_PREPARED_BY"}  # test knobs and gunicorn.conf.py's own marker


def env_example_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M))


def test_the_known_avenue_variables_are_exactly_those_env_example_lists():
    listed = {name for name in env_example_names() if name.startswith("AVENUE_")}
    assert KNOWN_VARIABLES - INTERNAL == listed


def test_an_unknown_avenue_variable_is_warned_about_at_start(app_factory, monkeypatch, caplog):
    monkeypatch.setenv("AVENUE_MAX_UPLAOD_BYTES", "1")  # a typo: nothing reads it
    monkeypatch.setenv("AVENUE_MAX_UPLOAD_BYTES", "10485760")
    with caplog.at_level(logging.WARNING):
        app_factory()
    warned = [r.getMessage() for r in caplog.records if "nothing reads it" in r.getMessage()]
    assert warned and all("AVENUE_MAX_UPLAOD_BYTES" in line for line in warned)
    assert not any("AVENUE_MAX_UPLOAD_BYTES " in line for line in warned)


def test_a_dotenv_file_is_loaded_without_overriding_the_environment(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("AVENUE_MEDIA_BASE_URL=https://cdn.example.com\nMONGO_DB=from_file\n")
    monkeypatch.setenv("AVENUE_MEDIA_BASE_URL", "")  # recorded, so teardown removes what the file sets
    monkeypatch.delenv("AVENUE_MEDIA_BASE_URL")
    monkeypatch.setenv("MONGO_DB", "from_environment")
    assert envfile.load([tmp_path / "missing", tmp_path]) == tmp_path / ".env"
    assert os.environ["AVENUE_MEDIA_BASE_URL"] == "https://cdn.example.com"
    assert os.environ["MONGO_DB"] == "from_environment"
    assert envfile.load([tmp_path / "missing"]) is None


def gunicorn_settings(tmp_path: Path, **env: str) -> dict[str, str]:
    """gunicorn.conf.py evaluated in a clean process, as the gunicorn master reads it (the decode
    ledger's folder in ``tmp_path`` unless ``env`` says otherwise: none is left in /dev/shm)."""
    env = {"AVENUE_DECODE_LEDGER_DIR": str(tmp_path / "ledger"), **env}
    clean = {k: v for k, v in os.environ.items()
             if k not in {"WEB_CONCURRENCY", "GUNICORN_THREADS", "PROMETHEUS_MULTIPROC_DIR",
                          "AVENUE_METRICS_PREPARED_BY", "AVENUE_DECODE_LEDGER_DIR"}}
    code = ("import runpy, json, os; ns = runpy.run_path('gunicorn.conf.py'); "
            "print(json.dumps({'workers': ns['workers'], 'threads': ns['threads'], "
            "'metrics': os.environ['PROMETHEUS_MULTIPROC_DIR'], "
            "'ledger': os.environ['AVENUE_DECODE_LEDGER_DIR']}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean | env, capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_documented_defaults_for_workers_and_threads_are_gunicorn_conf_pys(tmp_path):
    settings = gunicorn_settings(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip()
            for line in (ROOT / "docs/configuration.md").read_text().splitlines() if line.startswith("| `")}
    assert rows["WEB_CONCURRENCY"] == f"`{settings['workers']}`"
    assert rows["GUNICORN_THREADS"] == f"`{settings['threads']}`"
    assert "WEB_CONCURRENCY=2" in (ROOT / ".env.example").read_text() and settings["workers"] == 2


def test_gunicorn_prepares_the_metrics_folder_removing_only_old_metric_files(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old")
    (folder / "keep.txt").write_text("not ours")
    assert gunicorn_settings(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder))["metrics"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    made = Path(gunicorn_settings(tmp_path)["metrics"])
    try:
        assert made.name.startswith("avenue-metrics-") and made.is_dir()
    finally:
        made.rmdir()


def test_gunicorn_hands_its_workers_one_folder_for_the_decode_budgets_ledger(tmp_path):
    # The workers inherit the master's environment: all of them reserve in the same ledger
    # (avenue/media/ingest/decode_budget.py), so the decode budget is the instance's, not a worker's.
    chosen = tmp_path / "decode" / "ledger"
    settings = gunicorn_settings(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
                                 AVENUE_DECODE_LEDGER_DIR=str(chosen))
    assert settings["ledger"] == str(chosen) and chosen.is_dir()
    made = Path(gunicorn_settings(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
                                  AVENUE_DECODE_LEDGER_DIR="")["ledger"])
    try:
        assert made.name.startswith("avenue-decode-") and made.is_dir()
        assert made.parent == Path("/dev/shm") or not Path("/dev/shm").is_dir()
    finally:
        made.rmdir()


def test_gunicorn_removes_the_ledger_folder_it_made_and_keeps_a_chosen_one(tmp_path):
    code = ("import runpy, os, sys; ns = runpy.run_path('gunicorn.conf.py'); "
            "ns['on_exit'](None); print(os.environ['AVENUE_DECODE_LEDGER_DIR'])")
    clean = {k: v for k, v in os.environ.items()
             if k not in {"AVENUE_METRICS_PREPARED_BY", "AVENUE_DECODE_LEDGER_DIR"}}

    def exited(**env: str) -> Path:
        env = clean | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")} | env
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60, check=True)
        return Path(out.stdout.strip().splitlines()[-1])

    assert not exited().exists()
    chosen = tmp_path / "chosen"
    assert exited(AVENUE_DECODE_LEDGER_DIR=str(chosen)) == chosen and chosen.is_dir()


def _malloc_probe(tmp_path: Path, code: str, how: str) -> int:
    """The last number ``code`` prints, run in a fresh Python with ``how`` as its argument (it
    runs gunicorn.conf.py when that is "config"), glibc's malloc variables unset."""
    unset = {"AVENUE_METRICS_PREPARED_BY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "AVENUE_DECODE_LEDGER_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code, how], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_gunicorn_has_freed_large_buffers_go_back_to_the_kernel(tmp_path):
    # glibc's default keeps a large buffer freed after another in the process's RSS (its
    # mmap threshold has risen past it); gunicorn.conf.py fixes the threshold at 1 MiB.
    code = ("import runpy, sys\n"
            "if sys.argv[1] == 'config': runpy.run_path('gunicorn.conf.py')\n"
            "def rss():\n"
            "    return next(int(line.split()[1]) for line in open('/proc/self/status')\n"
            "                if line.startswith('VmRSS'))\n"
            "before = rss()\n"
            "for _ in range(3):\n"
            "    kept = [bytearray(24 << 20), bytes(100)]\n"
            "    del kept[0]\n"
            "print((rss() - before) // 1024)\n")
    assert _malloc_probe(tmp_path, code, "plain") >= 20  # glibc's default: the 24 MiB stay (MB)
    assert _malloc_probe(tmp_path, code, "config") < 4


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_gunicorn_keeps_a_requests_small_buffers_in_the_heap_between_requests(tmp_path):
    # Fixing the mmap threshold also fixed glibc's trim threshold at 128 KiB: a cold render's
    # half-MiB buffers, freed at its end, went back to the kernel and were faulted in again by
    # the next one (about 600 page faults a render). gunicorn.conf.py raises it to 4 MiB.
    code = ("import ctypes, resource, runpy, sys\n"
            "if sys.argv[1] == 'config': runpy.run_path('gunicorn.conf.py')\n"
            "else: ctypes.CDLL(None).mallopt(-3, 1 << 20)  # the mmap threshold alone, as before\n"
            "def request():\n"
            "    held = [bytearray(600 << 10) for _ in range(4)]  # a request's buffers, each < 1 MiB\n"
            "    del held\n"
            "request()\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(50):\n"
            "    request()\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    assert _malloc_probe(tmp_path, code, "mmap-only") > 50 * 400  # 2.4 MiB faulted in again by each
    assert _malloc_probe(tmp_path, code, "config") < 200


def test_pyproject_declares_the_package_its_requirements_and_the_avenue_command():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(lines):
        return {re.split(r"[=<>!~ ]", line.strip(), maxsplit=1)[0].lower() for line in lines
                if line.strip() and not line.strip().startswith("#")}

    assert names(project["dependencies"]) == names((ROOT / "requirements.txt").read_text().splitlines())
    assert project["scripts"] == {"avenue": "avenue.cli:main"}


def test_the_avenue_command_lists_the_cli():
    env = {**os.environ, "MONGO_URI": "mongodb://127.0.0.1:1", "AVENUE_ENV": "development",
           "SECRET_KEY": "dev"}
    code = "import sys; sys.argv = ['avenue', '--help']; from avenue.cli import main; main()"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    for command in ("users", "import-legacy", "gc", "fsck", "backup", "restore"):
        assert command in out.stdout


@pytest.mark.parametrize("raw, code", [("eur", "EUR"), (" usd ", "USD"), ("JPY", "JPY")])
def test_the_shop_s_currency_is_an_iso_4217_code(monkeypatch, raw, code):
    from avenue.config import from_environment

    monkeypatch.setenv("AVENUE_CURRENCY", raw)
    assert from_environment()["AVENUE_CURRENCY"] == code


@pytest.mark.parametrize("raw", ["euro", "€", "E1R", "", "ÉUR"])
def test_a_currency_that_is_no_iso_4217_code_stops_the_start(monkeypatch, raw):
    from avenue.config import from_environment

    monkeypatch.setenv("AVENUE_CURRENCY", raw)
    with pytest.raises(RuntimeError, match="AVENUE_CURRENCY must be an ISO 4217 code"):
        from_environment()
