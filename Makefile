# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench screenshots clean

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

## test: install and run the linter and the whole test suite
test: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m pytest

## screenshots: run the browser tests, saving the README's screenshots to docs/screenshots
screenshots: $(VENV)/.installed-dev
	WAGATE_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/test_browser.py

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
