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

SERVICES := services/auth services/users libs/service-kit

.PHONY: help sync run migrate test test-unit test-e2e lint fmt clean

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

run: migrate ## start gateway, auth and users (Ctrl-C stops them all)
	@echo "gateway  http://127.0.0.1:$(GATEWAY_PORT)   (auth docs: /auth/docs, users docs: /users/docs)"
	@echo "auth     http://127.0.0.1:$(AUTH_PORT)"
	@echo "users    http://127.0.0.1:$(USERS_PORT)"
	@$(RUN) honcho --no-colour --procfile Procfile --env /dev/null start

test: test-unit test-e2e ## unit tests of both services, then the end-to-end suite

test-unit: sync
	@$(RUN) pytest libs/service-kit/tests
	@$(RUN) pytest services/auth/tests
	@$(RUN) pytest services/users/tests

test-e2e: sync ## black-box tests through the real gateway (starts the stack itself)
	@$(RUN) pytest tests/e2e

lint: sync ## ruff, ruff format --check, mypy --strict
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@for target in $(foreach s,$(SERVICES),$(s)/src $(s)/tests) tests/e2e "conftest.py testsupport"; do \
		echo "mypy $$target"; $(RUN) mypy $$target || exit 1; done

fmt: sync ## format and autofix
	@$(RUN) ruff format .
	@$(RUN) ruff check --fix .

clean: ## remove local databases and caches (not .venv)
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
