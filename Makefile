# Peer Bridge: `make demo` and `make test` each do all their own set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install browser axe test demo lint bench clean

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

# axe-core for the page checks of the browser tests, pinned by the committed lock file
axe: tests/web/axe/node_modules/axe-core/axe.min.js
tests/web/axe/node_modules/axe-core/axe.min.js: tests/web/axe/package-lock.json
	cd tests/web/axe && npm ci --no-audit --no-fund --silent

# the linters first (seconds), then the suite: CI runs this
test: install browser axe lint
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/bridge demo $(DEMO_ARGS)

lint: install
	$(VENV)/bin/ruff check bridge dev tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/mapping.py

clean:
	rm -rf $(VENV) var .pytest_cache
