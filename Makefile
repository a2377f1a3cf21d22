# One entry point for humans: `make run` and `make test` on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
BOOKREC := $(VENV)/bin/bookrec
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test test-commands test-reliability test-spark test-browser chromium java lint format bench clean deploy-tools

$(UV):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: every command imports ~11,000 library modules' bytecode instead of
# compiling their sources on each start (this machine sets PYTHONDONTWRITEBYTECODE)
$(VENV)/.installed: $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen --inexact --extra spark --compile-bytecode
	touch $@

install: $(VENV)/.installed ## create .venv and install the locked dependencies

run: install ## migrate, load demo data when empty, train when no model is active, serve on :8000
	$(BOOKREC) db upgrade
	$(BOOKREC) data demo
	$(BOOKREC) train --if-missing
	$(BOOKREC) serve

test: lint ## lint, then the whole test suite (SQLite and PostgreSQL), on two processes
	$(VENV)/bin/pytest -q -n 2 --durations=20

test-commands: install ## every bookrec command on an empty database, each in a new process (~2 min)
	$(VENV)/bin/pytest -q -n 2 -m commands

test-reliability: install ## production mode under faults: own PostgreSQL + Redis, serve, kills (~3 min)
	$(VENV)/bin/pytest -q -m reliability tests/reliability

test-spark: install java ## training on Apache Spark, local mode (SQLite, PostgreSQL, movielens-small)
	$(VENV)/bin/pytest -q -m spark -p no:cacheprovider tests/spark

test-browser: install chromium ## the web app in headless Chromium (Playwright); screenshots in var/screenshots/
	$(VENV)/bin/pytest -q -m browser -p no:cacheprovider tests/browser

chromium: ## Debian's chromium for the browser tests, only when missing (never a downloaded browser build)
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing chromium from Debian"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; \
	fi

java: ## Java for Spark and PostgreSQL's JDBC driver, from Debian, only when missing
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq default-jre-headless; }
	@[ -f /usr/share/java/postgresql.jar ] || { apt-get update -qq && apt-get install -y -qq libpostgresql-jdbc-java; }

lint: install ## ruff, mypy and the architecture contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

CHECKOV_VENV := .venv-checkov
DEPLOY_PACKAGES := nginx prometheus

deploy-tools: install ## what tests/ops needs: Debian's nginx and prometheus (when missing), checkov
	@missing=""; for p in $(DEPLOY_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing from Debian"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(CHECKOV_VENV) $(UV) sync --frozen --project deploy/checkov --quiet

MOVIELENS ?= ../shared/data/movielens-small

bench: install ## benchmarks (ratios against floors measured in the same run); results in docs/benchmarks.md, the soak's in docs/reliability.md
	$(VENV)/bin/python -m benchmarks.cli_startup
	$(VENV)/bin/python -m benchmarks.import_bench --repeats 4
	$(VENV)/bin/python -m benchmarks.train_bench --repeats 2
	$(VENV)/bin/python -m benchmarks.search_bench
	@if command -v wrk >/dev/null; then $(VENV)/bin/python -m benchmarks.serve_bench; \
	else echo "serving benchmark skipped: wrk is not installed (apt-get install wrk)"; fi
	$(VENV)/bin/python -m benchmarks.soak
	@if [ -f "$(MOVIELENS)/ratings.csv" ]; then \
		$(VENV)/bin/python -m benchmarks.quality_bench "$(MOVIELENS)"; \
	else echo "quality benchmark skipped: no $(MOVIELENS)/ratings.csv (set MOVIELENS=DIR)"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
