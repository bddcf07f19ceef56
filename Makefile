# accord — one command per habit, the same locally and in CI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-unit lint bench dev-up dev-down clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment (.venv) with accord and its dev tools

demo: $(STAMP) ## Start the whole stack and drive a book of deals from the CRM through every system (accord demo)
	$(BIN)/accord demo

test: $(STAMP) ## Run every test (starts real Kafka and PostgreSQL by itself)
	$(BIN)/pytest

test-unit: $(STAMP) ## Only the fast tests that need no infrastructure
	$(BIN)/pytest -m unit

lint: $(STAMP) ## ruff, and mypy --strict on libs/ and on each service
	$(BIN)/ruff check .
	$(BIN)/ruff format --check libs services tests bench
	$(BIN)/mypy
	for s in services/*/; do MYPYPATH=libs $(BIN)/mypy --strict $$s || exit 1; done

bench: $(STAMP) ## Run the benchmarks in bench/ (ratios against baselines measured in the same run)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench

dev-up: $(STAMP) ## Start the local stack (accord dev up)
	$(BIN)/accord dev up

dev-down: $(STAMP) ## Stop the local stack (accord dev down)
	$(BIN)/accord dev down

clean: ## Stop the stack and remove the venv, state and caches of this checkout
	-[ -x $(BIN)/accord ] && $(BIN)/accord dev down
	rm -rf $(VENV) .accord .pytest_cache .mypy_cache .ruff_cache
