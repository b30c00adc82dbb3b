# guardflow: every target goes through uv. If uv is missing, it is installed with pip into .tools/.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV
export UV_PYTHON_DOWNLOADS := never

AIRFLOW := UV_PROJECT_ENVIRONMENT=.venv-airflow $(UV) run --locked --package airflow-provider-guardflow --group dev
PREFECT := UV_PROJECT_ENVIRONMENT=.venv-prefect $(UV) run --locked --package prefect-guardflow --group dev
CORE := UV_PROJECT_ENVIRONMENT=.venv-core $(UV) run --locked --package guardflow --all-extras --group dev
DOCS := UV_PROJECT_ENVIRONMENT=.venv-airflow $(UV) run --locked --package airflow-provider-guardflow --group dev --group docs
PYTEST_ARGS ?=

.PHONY: help uv envs browser postgres demo test test-core test-airflow test-prefect test-e2e lint typecheck bench \
	bench-inference bench-vault bench-drift bench-gates bench-pii docs clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

uv: ## install uv with pip if it is not on PATH
	@command -v uv >/dev/null 2>&1 || [ -x .tools/bin/uv ] || \
	  (python3 -m venv .tools && .tools/bin/pip install --quiet uv)

envs: uv ## build .venv-airflow, .venv-prefect and .venv-core from uv.lock
	UV_PROJECT_ENVIRONMENT=.venv-airflow $(UV) sync --locked --package airflow-provider-guardflow --group dev
	UV_PROJECT_ENVIRONMENT=.venv-prefect $(UV) sync --locked --package prefect-guardflow --group dev
	UV_PROJECT_ENVIRONMENT=.venv-core $(UV) sync --locked --package guardflow --all-extras --group dev

browser: ## install Debian's chromium for the review-page tests when it is missing (needs root or sudo)
	@[ -x /usr/bin/chromium ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

postgres: ## install Debian's PostgreSQL server for the gate-store tests when it is missing (root or sudo)
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends postgresql; }

demo: envs ## start the local model server and run the reference workflow on Airflow and Prefect
	$(AIRFLOW) python example_dags/run_demo.py --prefect-python .venv-prefect/bin/python

test: envs browser postgres lint typecheck test-core test-airflow test-prefect test-e2e ## everything CI runs

test-core: uv ## core tests, in both orchestrator environments (slow ones in the first only)
	GUARDFLOW_REQUIRE_POSTGRES=1 $(AIRFLOW) pytest tests/core $(PYTEST_ARGS)
	$(PREFECT) pytest tests/core -m "not slow" $(PYTEST_ARGS)

test-airflow: uv ## Airflow provider tests (real Airflow, dag.test())
	$(AIRFLOW) pytest tests/airflow $(PYTEST_ARGS)

test-prefect: uv ## Prefect integration tests (real ephemeral Prefect server)
	$(PREFECT) pytest tests/prefect $(PYTEST_ARGS)

test-e2e: uv ## built wheels in clean environments, kill/restart of the model server
	$(AIRFLOW) pytest tests/e2e $(PYTEST_ARGS)

lint: uv ## ruff lint and format check
	$(CORE) ruff check .
	$(CORE) ruff format --check .

typecheck: uv ## mypy: strict on the core, standard on the adapters
	$(CORE) mypy --strict shared/src
	$(AIRFLOW) mypy airflow_provider/src
	$(PREFECT) mypy prefect_blocks/src

bench: bench-inference bench-vault bench-drift bench-gates bench-pii ## run every benchmark; each appends to benchmarks/RESULTS.md

bench-inference: uv ## guardflow vs plain httpx and one request per row, on a real MLflow server
	$(AIRFLOW) python benchmarks/inference.py

bench-vault: uv ## cached reads and batched transit vs plain hvac, on a real OpenBao dev server
	$(CORE) python benchmarks/vault.py --record

bench-drift: uv ## native drift engine vs Evidently's DataDriftPreset at 10k, 100k and 1M rows
	$(CORE) python benchmarks/drift.py --record

bench-gates: uv ## 200 waiting gate tasks on a real Airflow (scheduler, triggerer): slots held, decision-to-resume vs native
	$(AIRFLOW) python benchmarks/gates.py --record

bench-pii: uv ## PII accuracy and speed vs Presidio on the same data, a generated 1 GB Parquet file masked with peak RSS, then masking with 1..N worker processes
	$(CORE) python benchmarks/pii_accuracy.py --record
	$(CORE) python benchmarks/pii_speed.py --record
	$(CORE) python benchmarks/pii_workers.py --record

docs: uv ## build the documentation site into site/
	$(DOCS) mkdocs build --strict

clean: ## remove environments and build outputs
	rm -rf .venv-airflow .venv-prefect .venv-core .tools dist site .demo
