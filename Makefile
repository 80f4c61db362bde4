# AegisGitea MCP. Every target installs what it needs into .venv on first use.
# `make help` lists the targets: it reads the `## ` comment after each target's name below.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: help setup setup-test run test lint conformance bench bench-smoke generate-key \
        rotate-key check-key-age auth-summary oauth-admin verify-audit docker-build clean \
        bench-redaction

help: ## list these targets
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## / {printf "make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.run-installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	@touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed setup.py
	$(PIP) install -e '.[test]'
	@touch $@

$(VENV)/.lint-installed: $(VENV)/.run-installed setup.py
	$(PIP) install -e '.[lint]'
	@touch $@

setup: $(VENV)/.run-installed ## install the server into .venv
setup-test: $(VENV)/.test-installed ## install the server and the test tools into .venv

run: setup ## run the server (reads .env; demo Gitea and a generated key when none is configured)
	$(VENV)/bin/aegis-mcp $(ARGS)

test: setup-test ## run the test suite (PYTEST_ARGS=... to pass options)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.lint-installed ## static checks: ruff lint, ruff format check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

conformance: setup-test ## run the official MCP conformance suite against the server
	scripts/run_conformance.sh

bench: setup-test ## the benchmark against a bare Tornado proxy and the MCP SDK (about 9 minutes)
	$(PY) bench/run.py $(BENCH_ARGS)

bench-smoke: setup-test ## the 20-second performance guard CI runs
	$(PY) bench/run.py --smoke $(BENCH_ARGS)

bench-redaction: setup-test ## cost per KB of secret redaction and hidden-text removal
	$(PY) bench/redaction.py $(BENCH_ARGS)

generate-key: setup ## create an API key (metadata saved, never the key)
	$(PY) scripts/generate_api_key.py --save-metadata

rotate-key: setup ## guided key rotation (grace period: old and new keys both valid)
	$(PY) scripts/rotate_key.py --save-metadata

check-key-age: setup ## warn about keys older than 90 days
	$(PY) scripts/check_key_age.py $(if $(wildcard .env),--env-file .env) $(if $(CONFIG),--config $(CONFIG))

auth-summary: ## weekly authentication summary from the audit log (LOG=file to choose it)
	scripts/auth_summary.sh --days 7 $(LOG)

oauth-admin: setup ## static OAuth clients: ARGS='add-client --name N --redirect-uri U', list-clients, delete-client ID, revoke-user LOGIN
	$(PY) -m aegis_tornado.oauth.admin $(ARGS)

verify-audit: setup ## check the audit log's hash chain (LOG="older.log audit.log", oldest first)
	$(PY) scripts/verify_audit.py $(or $(LOG),logs/audit.log)

docker-build: ## build the container image (docker compose build)
	docker compose build

clean: ## remove .venv and build leftovers
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
