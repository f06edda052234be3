# registry-sync: every target sets up (or reuses) .venv from uv.lock itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.8
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

DEMO_HOME := $(CURDIR)/data/demo
KEY_FILE := $(CURDIR)/.secrets/pseudonym.key
DEMO_CHILDREN ?= 3000
DEMO_COUNCILS ?= 3

# Airflow runs from this checkout: its home, DAGs and metadata database stay in the project.
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__EXECUTOR := LocalExecutor
export AIRFLOW__API__HOST := 127.0.0.1
export AIRFLOW__API__PORT := 8080
export GX_ANALYTICS_ENABLED := False
export NO_COLOR := 1
export REGISTRY_SYNC_KEY_FILE := $(KEY_FILE)
# airflow standalone starts its components as `airflow ...` subprocesses found on PATH
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv demo demo-data test test-all airflow bench lint key clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): uv.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --quiet
	@rm -f $(VENV)/.synced-* && touch $@

venv: $(STAMP) ## Create or update .venv from the lock file

key: $(KEY_FILE) ## Make a local development pseudonymisation key (ignored by git)

$(KEY_FILE):
	@mkdir -p $(dir $@) && chmod 700 $(dir $@)
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@
	@echo "made a development key in $@ (never commit it; production keys live in Airflow)"

demo: demo-data ## Make a synthetic population and run the real DAG into the SQLite index
	@$(BIN)/airflow db migrate > $(DEMO_HOME)/airflow-db.log 2>&1 || { tail -20 $(DEMO_HOME)/airflow-db.log; exit 1; }
	@echo "running: airflow dags test registry_sync (log in $(DEMO_HOME)/airflow-dags-test.log)"
	@REGISTRY_SYNC_HOME=$(DEMO_HOME) AIRFLOW_CONN_REGISTRY_SYNC_PSEUDONYM_KEY="$$(printf '{"conn_type": "generic", "password": "%s"}' $$(cat $(KEY_FILE)))" \
		$(BIN)/airflow dags test registry_sync > $(DEMO_HOME)/airflow-dags-test.log 2>&1 \
		|| { grep -E "ERROR|Error|error" $(DEMO_HOME)/airflow-dags-test.log | tail -20; exit 1; }
	@$(BIN)/registry-sync --home $(DEMO_HOME) report

demo-data: $(STAMP) $(KEY_FILE) ## Reset data/demo (index included) and drop a fresh synthetic population
	@rm -rf $(DEMO_HOME) && mkdir -p $(DEMO_HOME)
	$(BIN)/registry-sync --home $(DEMO_HOME) synth --children $(DEMO_CHILDREN) --councils $(DEMO_COUNCILS) --seed 1

# One pytest worker per core; idle workers take tests queued on the other.
PYTEST_PARALLEL = -n auto --dist worksteal

test: $(STAMP) ## Run the whole test suite (PostgreSQL tests skip with a reason if it is absent)
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

test-all: $(STAMP) ## Run the suite including slow tests
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL) -m ''

airflow: $(STAMP) $(KEY_FILE) ## Run Airflow (scheduler, LocalExecutor, UI) on http://127.0.0.1:8080
	@mkdir -p $(DEMO_HOME)
	@$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1
	@echo "Airflow UI: http://127.0.0.1:8080  user admin, password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated"
	@REGISTRY_SYNC_HOME=$(DEMO_HOME) AIRFLOW_CONN_REGISTRY_SYNC_PSEUDONYM_KEY="$$(printf '{"conn_type": "generic", "password": "%s"}' $$(cat $(KEY_FILE)))" \
		$(BIN)/airflow standalone

bench: $(STAMP) ## Benchmarks: pipeline throughput against the DuckDB I/O floor
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.resync
	$(BIN)/python -m bench.synth
	$(BIN)/python -m bench.validate
	$(BIN)/python -m bench.pii

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean: ## Remove generated data, Airflow state and the virtual environment (keeps .secrets/)
	rm -rf data/demo .airflow $(VENV)
