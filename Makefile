# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests run in parallel (pytest-xdist). A test spends most of its time waiting on threads,
# servers and subprocesses, so two workers per core (at most 8) keep the cores busy. A module
# stays on one worker: several share one live server, browser or database cluster.
PYTEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n * 2 > 8 ? 8 : n * 2 )))
PYTEST := $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder
# The tiers that start real processes, browsers or long property-based runs.
SLOW_TIERS := browser or integration or fuzz or live_server or neonize

.PHONY: run test test-fast lint bench screenshots clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## run: install and start the embedded server on http://127.0.0.1:5000
run: $(VENV)/.installed
	$(PY) app.py

## test: install and run the linter and the whole test suite, every tier
test: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PYTEST)

## test-fast: the linter and every test but the slow tiers (a minute or two)
test-fast: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PYTEST) -m "not ($(SLOW_TIERS))"

## screenshots: run the browser tests, saving the README's screenshots to docs/screenshots
screenshots: $(VENV)/.installed-dev
	WAGATE_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/test_browser.py

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
