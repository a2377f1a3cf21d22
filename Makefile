# One entry point for humans: `make run` and `make test` on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
BOOKREC := $(VENV)/bin/bookrec
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test test-commands test-spark java lint format bench clean

$(UV):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --inexact --extra spark
	touch $@

install: $(VENV)/.installed ## create .venv and install the locked dependencies

run: install ## migrate, load demo data when empty, train when no model is active, serve on :8000
	$(BOOKREC) db upgrade
	$(BOOKREC) data demo
	$(BOOKREC) train --if-missing
	$(BOOKREC) serve

test: lint ## lint, then the whole test suite (SQLite and PostgreSQL), on two processes
	$(VENV)/bin/pytest -q -n 2

test-commands: install ## every bookrec command on an empty database, each in a new process (~2 min)
	$(VENV)/bin/pytest -q -n 2 -m commands

test-spark: install java ## training on Apache Spark, local mode (SQLite, PostgreSQL, movielens-small)
	$(VENV)/bin/pytest -q -m spark -p no:cacheprovider tests/spark

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

MOVIELENS ?= ../shared/data/movielens-small

bench: install ## benchmarks (ratios against floors measured in the same run); results in docs/benchmarks.md
	$(VENV)/bin/python -m benchmarks.cli_startup
	$(VENV)/bin/python -m benchmarks.import_bench --repeats 4
	$(VENV)/bin/python -m benchmarks.train_bench --repeats 2
	@if command -v wrk >/dev/null; then $(VENV)/bin/python -m benchmarks.serve_bench; \
	else echo "serving benchmark skipped: wrk is not installed (apt-get install wrk)"; fi
	@if [ -f "$(MOVIELENS)/ratings.csv" ]; then \
		$(VENV)/bin/python -m benchmarks.quality_bench "$(MOVIELENS)"; \
	else echo "quality benchmark skipped: no $(MOVIELENS)/ratings.csv (set MOVIELENS=DIR)"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
