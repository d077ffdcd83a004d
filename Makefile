# Peer Bridge: `make demo` and `make test` each do all their own set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install browser idp axe test demo lint bench docs clean

install: $(STAMP)

# the bridge with its dev tools, and its development kit (dev/: samples, sandbox EHR, demo), which
# is a distribution of its own so the runtime package never ships it
$(STAMP): pyproject.toml dev/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./dev
	touch $(STAMP)

# Browser tests drive Debian's chromium through Playwright (never `playwright install`: no downloads)
browser:
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

# The OpenID Provider for tests and the demo (npm oidc-provider, dev/idp) from its lock file; the
# fixtures and `bridge demo` run the same `npm ci` themselves when node_modules is missing
idp: dev/idp/node_modules/.package-lock.json

dev/idp/node_modules/.package-lock.json: dev/idp/package-lock.json
	cd dev/idp && npm ci --no-audit --no-fund --loglevel=error

# axe-core for the page checks of the browser tests, pinned by the committed lock file
axe: tests/web/axe/node_modules/axe-core/axe.min.js
tests/web/axe/node_modules/axe-core/axe.min.js: tests/web/axe/package-lock.json
	cd tests/web/axe && npm ci --no-audit --no-fund --silent

# the linters first (seconds), then the suite: CI runs this
test: install browser idp axe lint
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: install idp
	$(VENV)/bin/bridge demo $(DEMO_ARGS)

lint: install
	$(VENV)/bin/ruff check bridge dev tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/mapping.py

# docs/configuration.md and docs/api.md, generated from the config schema and the OpenAPI document
docs: install
	$(PY) -m bridge_dev.docs

clean:
	rm -rf $(VENV) var .pytest_cache dev/idp/node_modules dev/medplum/node_modules
