# LedgerLink: `make demo` runs the example DAGs against the bundled sandbox; `make test` runs every test.
# Both create their own virtual environment (.venv) and install what they need.

PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-airflow-$(AIRFLOW_VERSION)
# Airflow 3.0.x needs a few libraries held back (see the file); newer lines install as they are.
CONSTRAINTS ?= $(if $(filter 3.0.%,$(AIRFLOW_VERSION)),ci/constraints-airflow-3.0.txt)

.PHONY: venv demo test lint unit integration system benchmark clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	@# The connection-form browser tests drive Debian's Chromium (no browser is downloaded).
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# No network: tests/unit/conftest.py fails a test that opens a TCP connection.
unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

# Against the sandbox: tests/integration/<vendor>/ (emulator, hook, operators, DAGs) and what spans vendors.
integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

system: $(STAMP)
	$(PY) -m pytest tests/system -q

# One pytest run for every suite, so the closing summary counts every test; TEST_WORKERS processes
# share the files (real-Airflow suites stay on one worker, see tests/conftest.py).
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest tests -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup

benchmark: $(STAMP)
	$(PY) benchmarks/afas_extract.py

clean:
	rm -rf $(VENV) .airflow demo-output .pytest_cache .mypy_cache .ruff_cache
