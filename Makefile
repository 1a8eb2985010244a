# Durable jobs: every task a developer or CI runs. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install dev test test-unit test-integration test-e2e test-browser bench chaos lint format protos protos-check clients clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

dev: $(STAMP) ## run Postgres, NATS, the four services and the gateway (Ctrl-C stops all)
	$(PY) -m devstack --dir .dev

test: $(STAMP) ## the whole suite: unit, integration (real Postgres/NATS), end-to-end
	$(PY) -m pytest

test-unit: $(STAMP) ## pure code only, seconds
	$(PY) -m pytest tests/unit

test-integration: $(STAMP) ## against real Postgres and nats-server processes
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP) ## the services as processes, driven over gRPC and HTTP
	$(PY) -m pytest tests/e2e

test-browser: $(STAMP) ## the page in headless Chromium (Debian's chromium; JOBS_REQUIRE_BROWSER=1 fails without it)
	$(PY) -m pytest tests/browser

bench: $(STAMP) ## benchmarks: throughput, latency, event latency, floors, CPU and memory
	$(PY) -m bench --out bench-results/bench.json $(BENCH_ARGS)

chaos: $(STAMP) ## the chaos suite, long form: kill everything in turn (then mid-import and the object store, then during a fair backlog), print the damage tables; CLUSTER=1: on 3 NATS nodes and a Postgres pair (leaders killed, a failover, a paused node)
ifeq ($(CLUSTER),1)
	$(PY) -m tests.chaos.cluster --clients $(or $(CLIENTS),8)
else
	$(PY) -m tests.chaos --jobs $(or $(JOBS),200)
	$(PY) -m tests.chaos.shapes --rows $(or $(ROWS),10000)
	$(PY) -m tests.chaos.fair --jobs $(or $(FLOOD),2000)
endif

lint: $(STAMP) protos-check ## ruff, format check, mypy --strict, buf lint and breaking (vs main), stale stubs and client
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd protos && ../$(VENV)/bin/buf lint
	$(VENV)/bin/buf breaking protos --against '.git#branch=main,subdir=protos'
	$(PY) scripts/gen_ts_client.py --check

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

protos: $(STAMP) ## regenerate libs/jobkit/gen from protos/
	$(PY) scripts/gen_protos.py

protos-check: $(STAMP) ## fail if the checked-in stubs differ from protos/
	$(PY) scripts/gen_protos.py --check

clients: $(STAMP) ## regenerate the TypeScript client (clients/typescript) from the gateway's OpenAPI
	$(PY) scripts/gen_ts_client.py

clean: ## remove the dev stack's data and caches (not .venv)
	rm -rf .dev .pytest_cache .mypy_cache .ruff_cache
