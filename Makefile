# Every habit of the project is a target here; each calls the real tool.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
# A uv already on PATH is used; otherwise the Makefile installs its own into .tools/.
UV ?= $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen

export GATEWAY_PORT ?= 8000
export AUTH_PORT ?= 8001
export USERS_PORT ?= 8002
export GATEWAY_INTERNAL_PORT ?= 8080
export PYTHONUNBUFFERED := 1

.PHONY: help sync run migrate test test-unit test-e2e test-faults compose-test lint fmt clean \
	bench bench-auth bench-clients bench-users bench-memory bench-gateway bench-system wrk browser

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

sync: | $(UV) ## install the locked dependencies into .venv
	@$(UV) sync --frozen --quiet

migrate: sync ## upgrade both databases to head
	@$(RUN) auth-service migrate
	@$(RUN) users-service migrate

# AUTH_REPLICAS=2 USERS_REPLICAS=2 runs several processes of each (PostgreSQL only).
# scripts/run_stack.py checks the settings, then (after the migrations) supervises the stack.
run: sync ## start gateway, auth and users (Ctrl-C stops them all)
	@$(RUN) python scripts/run_stack.py --check || exit 2
	@$(MAKE) --no-print-directory migrate || exit 2
	@exec $(RUN) python scripts/run_stack.py

test: test-unit test-e2e ## unit tests of both services, then the end-to-end suite

test-unit: sync ## every unit test (service-kit, auth-client, auth, users, deploy, docs, scripts), one run
	@$(RUN) pytest libs services tests/deploy tests/docs tests/scripts --durations=15

test-e2e: sync browser ## black-box tests through the real gateway (starts the stack itself)
	@$(RUN) pytest tests/e2e --durations=15

test-faults: sync ## replicas killed under load, PostgreSQL restarted (its own PostgreSQL)
	@$(RUN) pytest tests/faults -s

compose-test: sync browser ## the compose stack, built here with no registry, under tests/e2e; leaves nothing running
	@scripts/containers/compose-test.sh

lint: sync ## ruff, ruff format --check, mypy --strict, hadolint, docker compose config
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) hadolint libs/service-kit/Dockerfile gateway/Dockerfile compose/postgres/Dockerfile \
		compose/redis/Dockerfile
	@scripts/containers/docker-engine.sh compose --env-file compose/env.example -f docker-compose.yml config -q
	@scripts/containers/docker-engine.sh compose --env-file compose/env.example -f docker-compose.yml \
		-f compose/local-images.yml config -q
	@$(RUN) mypy

# Benchmarks print their figures (ratios against a baseline measured in the same run);
# on demand only, never in CI. docs/benchmarks.md records them.
bench: bench-auth bench-clients bench-users bench-memory bench-gateway bench-system ## every benchmark

bench-auth: sync wrk ## password and refresh grants, JWKS, health p99 under a login storm
	@$(RUN) python -m scripts.benchmarks.auth

bench-clients: sync wrk ## client_credentials grants and introspections, via the gateway and direct
	@$(RUN) python -m scripts.benchmarks.clients
	@$(RUN) python -m scripts.benchmarks.clients --backend postgresql

bench-users: sync wrk ## /users/me against /users/health, JWKS fetches, memory
	@$(RUN) python -m scripts.benchmarks.users

bench-memory: sync ## each process's memory idle after start and after one request of each kind, both databases
	@$(RUN) python -m scripts.benchmarks.users --memory
	@$(RUN) python -m scripts.benchmarks.users --memory --backend postgresql

bench-gateway: sync wrk ## the gateway's overhead, two users replicas against one, Traefik's Go runtime
	@$(RUN) python -m scripts.benchmarks.gateway

bench-system: sync wrk ## the mixed load on both databases: goals, tables and charts into docs/
	@$(RUN) python -m scripts.benchmarks.system

wrk:
	@command -v wrk >/dev/null || { apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; }

# The docs pages' test drives Debian's Chromium with Playwright (testsupport/browser.py);
# Playwright's own browser download is never used.
browser:
	@test -x /usr/bin/chromium || { export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; }

fmt: sync ## format and autofix
	@$(RUN) ruff format .
	@$(RUN) ruff check --fix .

clean: ## remove local databases and caches (not .venv)
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
