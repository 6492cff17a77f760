# The two commands a fresh machine needs: `make up` and `make test`.
# Everything else here is what they are made of.

SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Installed packages are compiled to bytecode once, at install: where PYTHONDONTWRITEBYTECODE
# is set, every Python process would otherwise compile each module it imports anew: about
# half the CPU of starting `wattx` (7 of 14 s), in every test process and subprocess.
export UV_COMPILE_BYTECODE := 1
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python

.PHONY: up test setup chromium lint typecheck pytest chaos bench clean

## Start the whole system on embedded defaults (SQLite, in-process bus, embedded EVM).
up: setup
	.venv/bin/wattx up

## Install everything, then lint, type-check and run the whole test suite.
# The type check runs beside the tests (-j 2), at a low priority (nice), in the CPU time the
# suite leaves idle (a fifth of its run) rather than while the workers start. A failure of
# either fails `make test` once both have finished.
test: setup chromium lint
	@$(MAKE) --no-print-directory -j 2 typecheck pytest TYPECHECK_NICE="nice -n 15"

# The project's own modules are compiled too, at every set-up (only the changed ones, about
# 0.2 s when none is): an editable install leaves them uncompiled, and where
# PYTHONDONTWRITEBYTECODE is set every process compiled those it imported (0.3 s of each
# `wattx up`'s start).
setup: .venv/.synced node_modules/.installed
	@$(PY) -m compileall -q -j 0 src

.tools/bin/uv:
	python3 -m pip install --quiet --target .tools/lib uv==0.13.9
	mkdir -p .tools/bin && ln -sf ../lib/bin/uv .tools/bin/uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

# anvil (an EVM JSON-RPC node) for the chain adapter's tests; the npm package ships the binary.
# `npm ci` installs exactly what the lock records and never rewrites it. The lock records every
# platform's optional binary package (whatever the machine that wrote it), so it is in sync
# everywhere. After changing package.json, refresh the lock with `npm install --package-lock-only`
# and commit both files.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the dashboard's browser tests (Playwright drives it through
# executable_path; Playwright's own browser download is never used). Installed when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
		|| ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench

typecheck: setup
	$(TYPECHECK_NICE) .venv/bin/mypy

# Every test has its own database, ids, MQTT topic prefix and ports (tests/README.md), so the
# suite runs in parallel (pytest-xdist): four workers on the 2-CPU machines it runs on, since
# much of a run is waiting (real-time tests, processes starting); with three the CPUs were
# idle three tenths of the run (tests/README.md). PYTEST_WORKERS=0 runs it in one process. A module's tests stay on one worker
# (--dist loadscope), so a module-scoped chain or service is built once, not once per worker;
# they take the modules in the order tests/conftest.py sets (--no-loadscope-reorder): the ones
# with a slow test first, so that no long module is left to run alone at the end.
PYTEST_WORKERS ?= 4
pytest: setup chromium
	.venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

## The chaos suite's longer runs: faults injected into real processes, invariants checked
## (its short run, tests/chaos/test_short_run.py, is part of `make test`).
chaos: setup
	.venv/bin/pytest -m chaos tests/chaos

bench: setup
	$(PY) bench/market.py

clean:
	rm -rf .venv .tools node_modules .mypy_cache .ruff_cache .pytest_cache
