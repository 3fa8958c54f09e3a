# taskq: the verbs a person types, and CI calls the same ones.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv runs the workspace from uv.lock. A machine without it gets this pinned version, project-local
# (.tools/), from scripts/get_uv.py: pip or PyPI's index, checksum checked, nothing piped to a shell.
UV_VERSION := 0.13.9
UV_LOCAL := .tools/uv-$(UV_VERSION)/uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_LOCAL))
PY := $(UV) run --frozen
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 240
# Docker Compose v2 (the plugin exits non-zero on failure; override with COMPOSE=...).
COMPOSE ?= docker compose
# down/logs/ps only read the project: let them work before `make up` has written .env.
COMPOSE_READ := $(if $(wildcard .env),,REDIS_PASSWORD=unset API_TOKEN=unset) $(COMPOSE)
GEN_SECRET := python3 -c 'import secrets; print(secrets.token_urlsafe(32))'
N ?= 3
WORKERS ?= 2
# Both phases (taskq's images, then examples/thumbnails on the same stack), builds included.
E2E_TIMEOUT ?= 900
CHAOS_TIMEOUT_SHORT ?= 720
AXE_VERSION := 4.14.1

.PHONY: help install lint fmt test test-core test-redis7 bench
.PHONY: bench-worker bench-client
.PHONY: fuzz bench-producer
.PHONY: up down logs ps scale e2e dev clean lint-docker lint-compose chaos chaos-short
.PHONY: browser-deps screenshots

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(if $(filter $(UV_LOCAL),$(UV)),$(UV_LOCAL)) ## Create .venv with every service and the dev tools (uv sync from uv.lock)
	$(UV) sync --frozen

$(UV_LOCAL):
	python3 scripts/get_uv.py $(UV_VERSION) $@

lint: install ## ruff (lint + format check), mypy --strict, hadolint and docker compose config
	$(PY) ruff check .
	$(PY) ruff format --check .
	$(PY) mypy
	@$(MAKE) --no-print-directory lint-docker

fmt: install ## Apply ruff's fixes and formatting
	$(PY) ruff check --fix .
	$(PY) ruff format .

test: install ## Run the whole test suite against a real Valkey started on 127.0.0.1
	$(PY) pytest $(PYTEST_ARGS)

browser-deps: ## Browser tests' tools: Debian's chromium (needs root) and axe-core from npm into tests/browser/.axe
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	cd tests/browser && mkdir -p .axe && npm install --prefix .axe --no-save --no-audit --no-fund axe-core@$(AXE_VERSION)

screenshots: install ## Regenerate docs/img/dashboard-*.png (real producer and worker, headless chromium)
	$(PY) python scripts/screenshots.py

test-core: install ## Run only the core engine suite
	$(PY) pytest tests/core $(PYTEST_ARGS)

test-redis7: install ## Run the core engine suite against Debian's redis-server (fails unless it is Redis 7.x)
	TASKQ_SERVER=redis $(PY) pytest tests/core $(PYTEST_ARGS)

bench: install ## Run the core benchmarks (wake-up latency, throughput, enqueue, memory)
	$(PY) python -m bench.core --out bench/results/core.md

bench-worker: install ## Worker throughput vs Dramatiq and Celery (peers installed in bench/.venv-*)
	$(PY) python -m bench.worker

bench-client: install ## Default clients: enqueue vs Dramatiq send(), enqueue->handler start vs taskiq (3 rounds)
	$(PY) python -m bench.client --out bench/results/client.md

fuzz: install ## Schemathesis on the producer's /openapi.json (all checks, bounded): no 5xx, no schema lie
	$(PY) python tests/producer/fuzz.py --max-examples 25 --max-time $(FUZZ_SECONDS)

bench-producer: install ## POST /send-email and /jobs vs the original sync-redis endpoint, wrk at 1/16/64 conns
	$(PY) python -m bench.producer --out bench/results/producer.md

lint-docker: install ## hadolint on the Dockerfiles (the example's too), then `docker compose config -q` on the files
	$(PY) hadolint services/producer/Dockerfile services/worker/Dockerfile services/e2e/Dockerfile \
	  examples/thumbnails/Dockerfile
	@if $(COMPOSE) version >/dev/null 2>&1; then $(MAKE) --no-print-directory lint-compose; \
	else echo "lint-compose skipped: no docker compose here (CI runs it after the Docker bootstrap)"; fi

lint-compose: ## Validate compose.yaml (also --profile observability) and its overlays (test, chaos, examples/thumbnails) (needs docker compose, not a daemon)
	REDIS_PASSWORD=lint API_TOKEN=lint TASKQ_ENV_FILE=/dev/null $(COMPOSE) --env-file /dev/null -f compose.yaml config -q
	REDIS_PASSWORD=lint API_TOKEN=lint TASKQ_ENV_FILE=/dev/null $(COMPOSE) --env-file /dev/null -f compose.yaml -f compose.test.yaml config -q
	REDIS_PASSWORD=lint API_TOKEN=lint TASKQ_ENV_FILE=/dev/null $(COMPOSE) --env-file /dev/null -f compose.yaml -f compose.test.yaml -f compose.chaos.yaml config -q
	REDIS_PASSWORD=lint API_TOKEN=lint TASKQ_ENV_FILE=/dev/null $(COMPOSE) --env-file /dev/null -f compose.yaml -f examples/thumbnails/compose.yaml config -q
	REDIS_PASSWORD=lint API_TOKEN=lint TASKQ_ENV_FILE=/dev/null $(COMPOSE) --env-file /dev/null -f compose.yaml -f compose.test.yaml -f examples/thumbnails/compose.yaml config -q
	REDIS_PASSWORD=lint API_TOKEN=lint TASKQ_ENV_FILE=/dev/null $(COMPOSE) --env-file /dev/null -f compose.yaml --profile observability config -q

.env: ## (file) Created from .env.example with fresh secrets by the first `make up` or `make dev`
	@umask 077 && sed -e "s/^REDIS_PASSWORD=change-me$$/REDIS_PASSWORD=$$($(GEN_SECRET))/" \
	  -e "s/^API_TOKEN=change-me$$/API_TOKEN=$$($(GEN_SECRET))/" .env.example > .env.tmp && mv .env.tmp .env
	@echo "Wrote .env with fresh secrets (keep it private, never commit it)."

up: .env ## Build and start the stack (Docker), wait until healthy, print the URLs and a working curl
	$(COMPOSE) up -d --build --wait --wait-timeout 180
	@scripts/urls.sh

down: ## Stop and remove the containers (the Redis volume, i.e. queued jobs, is kept)
	$(COMPOSE_READ) down --remove-orphans

logs: ## Follow the logs of every service (S=worker for one)
	$(COMPOSE_READ) logs -f --tail=100 $(S)

ps: ## Show the containers and their health
	$(COMPOSE_READ) ps

scale: .env ## Run N worker containers (make scale N=3); removed ones stop gracefully
	$(COMPOSE) up -d --wait --no-recreate --scale worker=$(N)

e2e: ## Build the images, run the e2e scenarios in Docker on a fresh project, always tear down
	COMPOSE="$(COMPOSE)" E2E_TIMEOUT=$(E2E_TIMEOUT) scripts/e2e.sh

chaos: ## Chaos at scale: 20,000 jobs per scenario under faults, Jepsen-style checker (long; see docs/reliability.md)
	COMPOSE="$(COMPOSE)" CHAOS_MODE=full scripts/chaos.sh

chaos-short: ## The CI form of `make chaos`: ~2,000 jobs, scenarios 2 3 5 8 + the negative control
	COMPOSE="$(COMPOSE)" CHAOS_MODE=short CHAOS_TIMEOUT=$(CHAOS_TIMEOUT_SHORT) scripts/chaos.sh

dev: install .env ## The same system without Docker: Valkey, producer, WORKERS=N workers, SMTP sink
	$(PY) python scripts/dev.py --workers $(WORKERS)

clean: ## Remove the stack *with its volumes* (queued jobs, reports), the dev data and local caches
	$(COMPOSE_READ) down -v --remove-orphans
	rm -rf .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis "$${TMPDIR:-/tmp}/taskq-dev-$$(id -u)"
