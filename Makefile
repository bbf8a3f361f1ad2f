# hcc-cds: `make run` serves the demo, `make test` runs every test (both install what they need).
PYTHON ?= python3
VENV := .venv
FHIR_VENV := .venv-fhir
HOST ?= 127.0.0.1
PORT ?= 8080
PIP := $(VENV)/bin/pip --disable-pip-version-check

.PHONY: run test test-sandbox test-smart lint openapi install install-dev fhir-server bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

# the real FHIR server the integration tests start, in its own venv
$(FHIR_VENV)/bin/sekmet:
	$(PYTHON) -m venv $(FHIR_VENV)
	$(FHIR_VENV)/bin/pip --disable-pip-version-check install -q sekmet-fhir==0.1.1

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev
fhir-server: $(FHIR_VENV)/bin/sekmet

run: install
	$(VENV)/bin/hcc-cds serve --host $(HOST) --port $(PORT)

test: install-dev fhir-server
	$(VENV)/bin/python -m pytest

# the CDS Hooks sandbox (../shared/vendor/cds-hooks-sandbox) in Debian's chromium (also part of `make test`);
# screenshots in test-artifacts/sandbox/
test-sandbox: install-dev
	$(VENV)/bin/python -m pytest -m sandbox tests/browser

# the real SMART App Launcher (tests/vendor/smart-launcher, Node >= 16 and npm) in front of the FHIR test server
# (also part of `make test`); its npm dependencies are installed once into .cache/smart-launcher/
test-smart: install-dev fhir-server
	$(VENV)/bin/python -m pytest -m smart tests/smart

# ruff and mypy as pyproject.toml configures them: ruff over the whole tree, mypy on service/ (default mode)
# and rules/ (strict)
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# the benchmarks (bench/, BENCHMARKS.md): BENCH_ARGS="--quick --check" etc.; throughput needs Debian's wrk
bench: install-dev fhir-server
	$(PIP) install -q -e '.[dev,bench]'
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

openapi: install-dev
	$(VENV)/bin/hcc-cds openapi > openapi.yaml

clean:
	rm -rf $(VENV) $(FHIR_VENV) .pytest_cache .hypothesis test-artifacts .cache
