# make setup | make run | make test   (see README.md)
SHELL := /bin/bash
# Another Python in its own venv: make test-smoke PYTHON=python3.13 VENV=.venv-3.13 (the service runs on 3.11-3.13).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Tests use their own database (pytest-django creates test_<name> and drops it after).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pointscene
export PYTHONDONTWRITEBYTECODE := 1
# No secret has a default: local runs use a random key made once per checkout (var/ is git-ignored). An explicit
# SECRET_KEY in the environment wins.
export SECRET_KEY_FILE ?= $(CURDIR)/var/secret-key

.PHONY: setup setup-dev browser run migrate test test-postgres test-sqlite test-faults test-smoke lint bench-api

# What the service needs at run time: the runtime dependencies and this checkout's key. No dev extras, no browser,
# no sudo (make run).
setup: $(VENV)/.runtime var/secret-key graphiql

# Everything make test needs on top: the dev extras and a browser for the Playwright tests.
setup-dev: setup $(VENV)/.dev browser

var/secret-key: | $(VENV)/.runtime
	$(PY) -m pointscene.keys

$(VENV)/.runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The browser tests drive Debian's chromium (Playwright never downloads a browser here). Installing it is the one
# step of make test that may need root; it says so in one line before asking.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "make test: the browser tests need Chromium; installing Debian's chromium needs root, so this asks sudo (or install chromium yourself and re-run)."; \
	    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi; }

migrate: setup
	$(PY) manage.py migrate --no-input

# Web, one worker and beat together (Procfile); starts a private redis-server if none answers at REDIS_URL.
run: migrate
	PORT=$(PORT) LOG_FORMAT=$${LOG_FORMAT:-text} $(PY) -m pointscene.run

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

test: lint test-postgres test-sqlite

test-postgres: setup-dev
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -q

test-sqlite: setup-dev
	DATABASE_URL=sqlite:///$(CURDIR)/var/test.sqlite3 $(PY) -m pytest -q

# A few minutes on another Python (CI runs it on 3.12 and 3.13; make test runs these tests too): the tests marked
# `smoke` (the API's, the packaging metadata, and one job fired by a real beat and run by a real worker), on
# PostgreSQL, in the venv VENV made from PYTHON. No browser needed. E.g.
#   make test-smoke PYTHON=python3.13 VENV=.venv-3.13
test-smoke: $(VENV)/.dev var/secret-key
	@$(PY) -c 'import sys; print("make test-smoke: Python", sys.version.split()[0], "in $(VENV)")'
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -q -m smoke

# The fault-injection suite (tests/faults/, marker `faults`): real workers and beats killed and restarted, Redis
# flushed and restarted, hypothesis fuzzing of the API. PostgreSQL only; several minutes. See docs/reliability.md.
test-faults: setup-dev
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -q -m faults tests/faults

bench-api: setup-dev
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pointscene_bench} $(PY) bench/api.py

# Scheduler benchmark (about 40-60 minutes for the full matrix; see docs/benchmarks.md). E.g. a quick try:
#   make bench-scheduler BENCH_SCHEDULER_ARGS='--n 1000 --schedulers ours,redbeat'
.PHONY: bench-scheduler
bench-scheduler: setup-dev
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pointscene_schedbench} \
		$(PY) bench/scheduler.py $(BENCH_SCHEDULER_ARGS)

# Sync benchmark: a scheduled rclone.sync job run vs bare rclone on the same tree (about 15-25 minutes with the
# default 5 repetitions; see docs/benchmarks.md). E.g. a quick try:
#   make bench-sync BENCH_SYNC_ARGS='--reps 1 --no-doc'
.PHONY: bench-sync
bench-sync: setup-dev
	BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pointscene_syncbench} \
		$(PY) bench/sync.py $(BENCH_SYNC_ARGS)

# ACC bridge benchmark: ACC -> local through the bridge vs the same tree on `rclone serve webdav` (about a minute).
.PHONY: bench-acc
bench-acc: setup-dev
	$(PY) bench/acc.py $(BENCH_ACC_ARGS)

# Sweep benchmark: one jobs.sweep over 1,000 and 10,000 active jobs (about two minutes; see docs/benchmarks.md).
.PHONY: bench-sweep
bench-sweep: setup-dev
	BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pointscene_sweepbench} \
		$(PY) bench/sweep.py $(BENCH_SWEEP_ARGS)

# Prune benchmark: jobs.retention.prune deleting 1,000,000 old runs and ~990,000 log files while history pages are
# read (about 15 minutes; see docs/benchmarks.md). Every run seeds afresh.
.PHONY: bench-prune
bench-prune: setup-dev
	BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pointscene_prunebench} \
		$(PY) bench/prune.py $(BENCH_PRUNE_ARGS)

# The served schema, exported for clients (docs/contract/served.graphql; a test fails when it is stale).
.PHONY: schema
schema: setup
	$(PY) manage.py graphql_schema --out docs/contract/served.graphql

# GraphiQL's browser files (graphiql, React, the explorer plugin, graphql-ws), pinned in package-lock.json, from npm into
# a git-ignored folder the service serves itself, so the page needs no CDN. Optional: the service never needs Node, and
# without npm /graphql's page says the files are missing. npm runs again only when the lock changes (make run offline).
GRAPHIQL_ASSETS := pointscene/graphql/static/graphiql
.PHONY: graphiql
graphiql: $(GRAPHIQL_ASSETS)/.installed

$(GRAPHIQL_ASSETS)/.installed: package.json package-lock.json .npmrc
	@if ! command -v npm >/dev/null; then \
	  echo "make setup: npm not found, so GraphiQL (/graphql in a browser) is unavailable; the API works without it (install Node.js, then make graphiql)."; \
	else npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run --silent assets && touch $@; fi
