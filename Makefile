# Two commands on a fresh machine with python3 (>= 3.11) and make: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: demo test test-fast lint format wheel bench server serve backfill clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/customer-equity demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# The inner loop while editing: every test not marked `slow` (no end-to-end flow run,
# no subprocess, no crash or concurrency scenario); about two fifths of the suite's time.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The installable package: one import name, customer_equity (pyproject.toml, force-include).
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation --no-index --wheel-dir dist .

bench: $(STAMP)
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_model_fit.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_report.py

# Scheduling on one machine (docs/runbook.md): `make server` in one terminal,
# `make serve` in a second, then `make backfill START=2025-12-01 END=2025-12-07`.
PREFECT_API ?= http://127.0.0.1:4200/api

server: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

serve: $(STAMP)
	PREFECT_API_URL=$(PREFECT_API) $(BIN)/customer-equity serve

backfill: $(STAMP)
	PREFECT_API_URL=$(PREFECT_API) $(BIN)/prefect deployment run backfill/backfill \
		--param start=$(START) --param end=$(END) --watch

clean:
	rm -rf data dist .prefect .pytest_cache .ruff_cache
