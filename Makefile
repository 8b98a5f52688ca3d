# Two commands for a fresh machine: `make run` (app + embedded database) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast coverage lint bench clean chromium node check-vendor docs model

# The venv is filled by uv (Astral's installer, from PyPI; pinned here since it installs the
# pins, not one of them): on a fresh clone it took 16 s against pip's 35 s for the same pins,
# bytecode compiled (docs/contributing.md). Where uv cannot be had or fails, pip does it.
UV_VERSION := 0.13.9

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	($(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
		&& $(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode -r requirements-dev.txt) \
		|| $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Start the app on http://127.0.0.1:8000 (embedded SecantusDB unless MONGO_URI is set).
run: $(STAMP)
	$(PY) -m avenue.devserver

## Lint, check the layers and the core's types, then run every test on mongomock, those whose
## subject is the database (tests/support/subjects.py) on SecantusDB too (and
## AVENUE_TEST_MONGO_URI if set), on 4 processes (pytest-xdist; each starts its own SecantusDB;
## --dist loadgroup keeps each console browser module on one process, its Chromium started once). Bytecode is written even where the environment says not to
## (PYTHONDONTWRITEBYTECODE, set on the project's machines): otherwise each of the run's
## processes (the 4 workers, every gunicorn worker, CLI command and make run a test starts)
## compiles avenue/ and rewrites the test modules again (7 of a worker's 10 s of collection).
test: lint chromium node
	PYTHONDONTWRITEBYTECODE= $(PY) -m compileall -q avenue tests/support
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n 4 --dist loadgroup

## The inner loop (docs/contributing.md): every test on mongomock but the slow ones (servers,
## browsers, fuzzers), no SecantusDB twins (marked real_server), no lint.
test-fast: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n 4 --dist loadgroup -m "not slow and not real_server"

## The store model (tests/support/model/run.py) for MODEL_MINUTES (30) on 2 gunicorn servers of 2 workers
## on a SecantusDB it starts; prints the steps, sequences, rules and invariants it covered.
MODEL_MINUTES ?= 30
model: $(STAMP)
	$(PY) -m tests.support.model.run --minutes $(MODEL_MINUTES) $(MODEL_ARGS)

## make test's pytest run with line coverage of avenue/ (docs/contributing.md has the figure).
coverage: $(STAMP)
	$(PY) -m pytest -n 4 --dist loadgroup --cov=avenue --cov-report=term:skip-covered -q

## The checks that read the code: ruff, the import-linter contracts, mypy --strict.
lint: $(STAMP)
	$(PY) -m ruff check avenue tests bench docs/generate.py wsgi.py gunicorn.conf.py
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

## Headless Chromium for the console's browser tests: Debian's old headless shell, the build
## Playwright runs headless (Playwright's own download is not needed). Does nothing when it is
## there; apt-get update only if the install fails; where it cannot be installed, the full
## chromium package already there serves (tests/support/browser.py takes either).
chromium:
	@test -x /usr/bin/chromium-headless-shell || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium-headless-shell \
		|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium-headless-shell) \
		|| test -x /usr/bin/chromium

## Node, which runs the console's pure JS modules in tests/unit (Debian's package; no npm needed).
node:
	@test -x /usr/bin/node || DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs \
		|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs)

## The vendored npm files against their tarballs: the console's (avenue/console/static/vendor)
## and the tests' (tests/support/vendor: axe-core, for the accessibility audit).
check-vendor: $(STAMP)
	$(PY) -m avenue.console.vendor avenue/console/static/vendor/VENDOR.json tests/support/vendor/VENDOR.json

## The generated parts of docs/: endpoint tables (avenue/apidoc/), configuration (.env.example).
docs: $(STAMP)
	$(PY) docs/generate.py

## The performance benchmark (bench/README.md); BENCH_ARGS=--full for the long run.
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
