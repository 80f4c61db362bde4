# AegisGitea MCP. Every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: help setup setup-test run test conformance bench bench-smoke generate-key rotate-key \
        check-key-age auth-summary docker-build clean bench-redaction

help:
	@echo "make run            run the server (demo Gitea and a generated key when none is configured)"
	@echo "make test           run the test suite"
	@echo "make conformance    run the official MCP conformance suite against the server"
	@echo "make generate-key   create an API key (metadata saved, never the key)"
	@echo "make rotate-key     guided key rotation"
	@echo "make check-key-age  warn about keys older than 90 days"
	@echo "make auth-summary   weekly authentication summary from the audit log"

$(VENV)/.run-installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	@touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed setup.py
	$(PIP) install -e '.[test]'
	@touch $@

setup: $(VENV)/.run-installed
setup-test: $(VENV)/.test-installed

run: setup
	$(VENV)/bin/aegis-mcp $(ARGS)

test: setup-test
	$(PY) -m pytest $(PYTEST_ARGS)

conformance: setup-test
	scripts/run_conformance.sh

bench: setup-test
	$(PY) bench/run.py $(BENCH_ARGS)

bench-smoke: setup-test
	$(PY) bench/run.py --smoke $(BENCH_ARGS)

bench-redaction: setup-test
	$(PY) bench/redaction.py $(BENCH_ARGS)

generate-key:
	$(PYTHON) scripts/generate_api_key.py --save-metadata

rotate-key:
	$(PYTHON) scripts/rotate_key.py --save-metadata

check-key-age:
	$(PYTHON) scripts/check_key_age.py $(if $(wildcard .env),--env-file .env) $(if $(CONFIG),--config $(CONFIG))

auth-summary:
	scripts/auth_summary.sh --days 7 $(LOG)

docker-build:
	docker compose build

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
