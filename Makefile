# Quickstart: `make run` (install + run the pipeline for today) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# One line saying what is wrong when no Python 3.11 is found (an empty $(PYTHON) would
# make "-c" make's ignore-error prefix and skip the check).
CHECK_PYTHON = if [ -z "$(PYTHON)" ]; then \
	  echo "make: no python3.11 or python3 on PATH: install Python 3.11, or run make PYTHON=/path/to/python3.11" >&2; exit 1; \
	elif ! command -v "$(PYTHON)" >/dev/null; then \
	  echo "make: PYTHON=$(PYTHON) is not a program: install Python 3.11, or run make PYTHON=/path/to/python3.11" >&2; exit 1; \
	fi; version=$$("$(PYTHON)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	[[ "$$version" =~ ^[0-9]+\.[0-9]+$$ ]] || version=; \
	if [ "$$version" != 3.11 ]; then \
	  echo "make: Python 3.11 is required, $(PYTHON) is $${version:-not Python}: install Python 3.11, or run make PYTHON=/path/to/python3.11" >&2; exit 1; \
	fi
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/airflow_home
# No telemetry from any tool started by make.
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DBT_VERSION_CHECK := false
export GX_ANALYTICS_ENABLED := false
export SCARF_ANALYTICS := false
export DO_NOT_TRACK := 1
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False

.PHONY: install run test test-scale bench sizing lint format airflow-ui docs summary pins clean old-duckdb help
# make alone installs, as it always did; make help lists the targets.
.DEFAULT_GOAL := install

install: $(STAMP)

# The oldest DuckDB client the single-file serving copy promises to open (docs/bi.md), in
# its own venv: tests/include/test_bi.py runs it as a subprocess, without network.
OLD_DUCKDB_VENV := .venv-duckdb-1.1
# pytz: duckdb 1.1 needs it to fetch TIMESTAMP WITH TIME ZONE values into Python.
OLD_DUCKDB := duckdb==1.1.3 pytz==2026.6
old-duckdb: $(OLD_DUCKDB_VENV)/.installed

$(OLD_DUCKDB_VENV)/.installed: Makefile
	@test -x $(OLD_DUCKDB_VENV)/bin/python || { $(CHECK_PYTHON); }
	test -x $(OLD_DUCKDB_VENV)/bin/python || $(PYTHON) -m venv $(OLD_DUCKDB_VENV)
	$(OLD_DUCKDB_VENV)/bin/python -m pip install --quiet $(OLD_DUCKDB)
	touch $@

# uv installs the pins (several times faster than pip on a cold cache), itself pinned and
# installed from PyPI by the venv's pip. When uv cannot be installed or cannot install
# (an index only pip is configured for, say), pip installs the same requirements.txt.
# --compile-bytecode: uv, unlike pip, leaves no .pyc files by default, and a Python told not
# to write them (PYTHONDONTWRITEBYTECODE, as on many CI machines and containers) compiles
# every imported module again in each process: each dbt run, Airflow task and test worker.
# pip compiles at install by default.
UV_PIN := uv==0.13.9

$(STAMP): requirements.txt pyproject.toml
	@$(CHECK_PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing $(UV_PIN) into $(VENV), then requirements.txt with it"
	@if $(BIN)/python -m pip install --quiet --disable-pip-version-check $(UV_PIN) \
	  && $(BIN)/uv pip install --python $(BIN)/python --compile-bytecode --requirement requirements.txt \
	  && $(BIN)/uv pip install --python $(BIN)/python --no-deps --no-build-isolation --editable .; \
	then :; else \
	  echo "uv could not install the requirements: installing them with pip instead (slower)"; \
	  $(BIN)/python -m pip install --disable-pip-version-check --requirement requirements.txt \
	  && $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .; \
	fi
	touch $(STAMP)

run: install
	$(BIN)/slw run

# Every test, the slow end-to-end (-m e2e) and real-dbt (-m dbt) ones too, on every core
# (TEST_WORKERS=1 for one process; tests/conftest.py keeps shared runs on one worker); then
# the 10 slowest. Locally, `.venv/bin/pytest -m "not e2e and not dbt"` skips the slow ones.
TEST_WORKERS ?= auto
test: install old-duckdb
	$(BIN)/pytest --numprocesses=$(TEST_WORKERS) --dist=loadgroup --durations=10

# The scale tests (-m scale): real PostgreSQL and Redis servers from the system's packages
# (apt-get installs them when run as root; otherwise the tests skip, saying so), Airflow on
# CeleryExecutor with two workers, the DuckLake warehouse on a PostgreSQL catalog. README
# "Tests". One process: the servers and workers are the parallelism.
test-scale: install
	SLW_TEST_SCALE=1 $(BIN)/pytest -m scale -rs --durations=10 tests

# make bench, or make bench NAME=pipeline_overhead
bench: install
	$(BIN)/python bench/run.py $(NAME)

# Rows, bytes, time and memory of one day per component at 1x, 4x and 16x the demo roster
# (README "Scaling"); make sizing SCALES=1,2 for a shorter run.
SCALES ?= 1,4,16
sizing: install
	$(BIN)/python bench/sizing.py --scales $(SCALES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_project

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/sqlfluff fix dbt_project

summary: install
	$(BIN)/slw summary

# The Airflow UI on the same files as `make run`: http://127.0.0.1:8080, user admin, the
# password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated. The UI on
# loopback only unless exposed on purpose: make airflow-ui AIRFLOW_UI_HOST=0.0.0.0 (README
# says what else standalone listens on).
AIRFLOW_UI_HOST ?= 127.0.0.1
AIRFLOW_UI_PORT ?= 8080
airflow-ui: install
	$(BIN)/airflow db migrate
	$(BIN)/airflow pools set duckdb_warehouse 1 "Single writer to the DuckDB warehouse"
	PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" \
	  AIRFLOW__CORE__LOAD_EXAMPLES=False PYTHONPATH="$(CURDIR)/include" \
	  AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
	  AIRFLOW__LOGGING__BASE_LOG_FOLDER="$(AIRFLOW_HOME)/logs" \
	  AIRFLOW__API__HOST=$(AIRFLOW_UI_HOST) AIRFLOW__API__PORT=$(AIRFLOW_UI_PORT) \
	  AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_UI_PORT)/execution/ \
	  $(BIN)/airflow standalone

# dbt docs and GX Data Docs of the last publish, on http://127.0.0.1:$SLW_DOCS_PORT (8081).
docs: install
	$(BIN)/slw docs

# Regenerate the pins after editing requirements.in (uv resolves).
pins:
	$(BIN)/python -m pip install --quiet $(UV_PIN)
	$(BIN)/uv pip compile requirements.in --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -o requirements.txt

clean:
	rm -rf data airflow_home dbt_project/target dbt_project/logs

# One line per target; tests/test_makefile.py checks that every target is listed.
help:
	@echo "make targets (make alone = make install):"
	@echo "  install     create .venv and install the pinned packages (Python 3.11)"
	@echo "  run         install, then run the pipeline for today against the sandbox API"
	@echo "  test        install, then run the whole test suite"
	@echo "  test-scale  the scale tests: PostgreSQL, Redis, Airflow on two Celery workers, DuckLake"
	@echo "  bench       run the benchmarks (make bench NAME=<one>)"
	@echo "  sizing      measure one day per component at 1x, 4x, 16x the demo roster (README Scaling)"
	@echo "  lint        ruff and SQLFluff checks"
	@echo "  format      ruff format and fix, SQLFluff fix"
	@echo "  summary     print the summary of the last run"
	@echo "  airflow-ui  the Airflow UI on http://127.0.0.1:8080 over the same files as make run"
	@echo "  docs        serve the last publish's dbt docs and GX Data Docs on 127.0.0.1"
	@echo "  pins        regenerate requirements.txt from requirements.in"
	@echo "  clean       remove data/, airflow_home/ and dbt's target and logs"
	@echo "  old-duckdb  a venv with DuckDB 1.1 for the single-file compatibility test"
	@echo "  help        this list"
