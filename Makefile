# The two commands a fresh machine needs: `make up` and `make test`.
# Everything else here is what they are made of.

SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python

.PHONY: up test setup chromium lint typecheck pytest bench clean

## Start the whole system on embedded defaults (SQLite, in-process bus, embedded EVM).
up: setup
	.venv/bin/wattx up

## Install everything, then lint, type-check and run the whole test suite.
test: setup lint typecheck pytest

setup: .venv/.synced node_modules/.installed chromium

.tools/bin/uv:
	python3 -m pip install --quiet --target .tools/lib uv==0.13.9
	mkdir -p .tools/bin && ln -sf ../lib/bin/uv .tools/bin/uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

# anvil (an EVM JSON-RPC node) for the chain adapter's tests; the npm package ships the binary.
# `npm install` rather than `npm ci`: the lock pins anvil 1.7.1 but records only this platform's
# optional binary package, which `npm ci` refuses as out of sync.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the dashboard's browser tests (Playwright drives it through
# executable_path; Playwright's own browser download is never used). Installed when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || $(SUDO) apt-get install -y chromium \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench

typecheck: setup
	.venv/bin/mypy

pytest: setup
	.venv/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(PY) bench/market.py

clean:
	rm -rf .venv .tools node_modules .mypy_cache .ruff_cache .pytest_cache
