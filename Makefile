# taskq: the verbs a person types, and CI calls the same ones.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PY := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: help install lint fmt test test-core test-redis7 bench

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Create .venv with every service and the dev tools (uv sync from uv.lock)
	$(UV) sync --frozen

lint: install ## ruff (lint + format check) and mypy --strict
	$(PY) ruff check .
	$(PY) ruff format --check .
	$(PY) mypy

fmt: install ## Apply ruff's fixes and formatting
	$(PY) ruff check --fix .
	$(PY) ruff format .

test: install ## Run the whole test suite against a real Valkey started on 127.0.0.1
	$(PY) pytest $(PYTEST_ARGS)

test-core: install ## Run only the core engine suite
	$(PY) pytest tests/core $(PYTEST_ARGS)

test-redis7: install ## Run the core engine suite against Debian's redis-server (Redis 7.0)
	TASKQ_SERVER=redis $(PY) pytest tests/core $(PYTEST_ARGS)

bench: install ## Run the core benchmarks (wake-up latency, throughput, enqueue, memory)
	$(PY) python -m bench.core
