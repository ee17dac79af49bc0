# Every target is a command CI or an operator runs; `make help` lists them.
SHELL := /bin/bash
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
ENV ?= staging

.PHONY: help bootstrap sync run test lint typecheck unit bench synth snapshot diff deploy rollback diagnose connectivity logs

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

bootstrap: ## install the pinned uv if it is missing
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet --user "uv==$(UV_VERSION)" || python3 -m pip install --quiet "uv==$(UV_VERSION)"

sync: bootstrap ## install every locked dependency group into .venv
	$(UV) sync --locked --all-groups

run: bootstrap ## run the queue service locally on embedded defaults (starts Redis and the simulators if needed)
	$(UV) sync --locked --all-groups --quiet
	$(UV) run --no-sync python -m local.stack

lint: ## ruff (lint and format check)
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .

typecheck: ## mypy, strict
	$(UV) run --no-sync mypy

unit: ## pytest only
	$(UV) run --no-sync python -m local.with_redis pytest -q

test: sync lint typecheck unit ## the full CI gate: install, lint, types, tests

bench: sync ## benchmarks; results are written to bench/results.md
	$(UV) run --no-sync python -m local.with_redis python -m bench

# Infrastructure (docs/infrastructure.md). The cdktf CLI is pinned and fetched by npx; synth and snapshot need
# only Python, diff/deploy/rollback also need Terraform and gcloud credentials. Extra CLI flags: CDKTF_ARGS=…
CDKTF := npx --yes cdktf-cli@0.21.0

synth: ## synthesize every environment into cdktf.out/ (no cdktf CLI or Terraform needed)
	$(UV) run --no-sync python -m infra.main

snapshot: ## refresh the committed snapshots in tests/infra/snapshots/
	$(UV) run --no-sync python -m infra.snapshot

diff: ## show what a deploy would change in one environment: make diff ENV=staging
	$(CDKTF) diff $(ENV) $(CDKTF_ARGS)

deploy: ## build the queue image if its sources changed, then deploy one environment: make deploy ENV=staging
	$(CDKTF) deploy $(ENV) $(CDKTF_ARGS)

rollback: ## deploy one environment at a pinned queue image: make rollback ENV=staging IMAGE=<image>:<tag>
	@test -n "$(IMAGE)" || { echo "usage: make rollback ENV=<env> IMAGE=<registry>/<project>/<repo>/<name>:<tag>" >&2; exit 2; }
	CALLQUEUE_ROLLBACK_ENV=$(ENV) CALLQUEUE_ROLLBACK_IMAGE=$(IMAGE) $(CDKTF) deploy $(ENV) $(CDKTF_ARGS)
