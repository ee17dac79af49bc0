# Every target is a command CI or an operator runs; `make help` lists them.
SHELL := /bin/bash
UV_VERSION := 0.13.8
# uv on PATH, else the one `make tools` installs with pip (run as a module: no PATH change needed).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
ENV ?= staging

.PHONY: help tools sync venv browser run demo docs test lint typecheck unit bench synth snapshot diff bootstrap image deploy promote rollback campaign-demo diagnose connectivity logs

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

tools: ## install the pinned uv if it is missing
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"

sync: tools ## install every locked dependency group into .venv
	$(UV) sync --locked --all-groups

# Every target that runs Python needs .venv current: on a fresh clone this installs it (quietly, once per make).
venv: tools
	@$(UV) sync --locked --all-groups --quiet

run: venv ## run the queue service locally on embedded defaults (starts Redis and the simulators if needed; AGENT_MODE=stock: pipecat's stock agent)
	@$(UV) run --no-sync python -m local.stack $(if $(AGENT_MODE),--agent-mode $(AGENT_MODE))

demo: venv ## like run, but queue one test call, print its status changes until its outcome, and exit
	@$(UV) run --no-sync python -m local.stack --demo

campaign-demo: venv ## a campaign against the simulators: bulk enqueue, a redial, calling hours, status (clock moved)
	@$(UV) run --no-sync python -m local.campaign_demo

docs: venv ## regenerate the variable tables of docs/configuration.md from the settings module
	$(UV) run --no-sync python -m local.config_doc

lint: venv ## ruff (lint and format check)
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .

typecheck: venv ## mypy, strict
	$(UV) run --no-sync mypy

# Tests run in PYTEST_WORKERS processes (pytest-xdist); the infra tests stay together on one (tests/conftest.py).
PYTEST_WORKERS ?= 2
unit: venv ## pytest only (PYTEST_WORKERS=2 processes; PYTEST_WORKERS=0 for one)
	$(UV) run --no-sync python -m local.with_redis pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The operator page's test drives Debian's chromium with playwright (never a downloaded browser build).
CHROMIUM := /usr/bin/chromium
browser: ## install Debian's chromium for the browser test if it is missing (apt-get, as root)
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { echo "the operator page test needs $(CHROMIUM): install Debian's chromium (apt-get install chromium) as root" >&2; exit 2; }; \
	  echo "installing Debian's chromium for the browser test" >&2; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "apt-get did not install $(CHROMIUM); the browser test cannot run" >&2; exit 2; }

test: sync browser lint typecheck unit ## the full CI gate: install, lint, types, tests

bench: sync ## benchmarks; results are written to bench/results.md
	$(UV) run --no-sync python -m local.with_redis python -m bench

# Infrastructure (docs/infrastructure.md). The cdktf CLI is pinned and fetched by npx; synth and snapshot need
# only Python, the cloud targets also need gcloud (logged in, and application-default credentials), Terraform
# and Node. Order on a fresh project: bootstrap, image, deploy; then promote and rollback. Extra CLI flags:
# CDKTF_ARGS=…
CDKTF := CHECKPOINT_DISABLE=1 npx --yes cdktf-cli@0.21.0
RELEASE := $(UV) run --no-sync python -m infra.release
# $(call need,TOOL,HOW TO GET IT): stop with what is missing before anything runs.
need = @command -v $(1) >/dev/null 2>&1 || { echo "make $@ needs $(1): $(2)" >&2; exit 2; }
GCLOUD_HOW := install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then gcloud auth login and gcloud auth application-default login
TERRAFORM_HOW := install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)
NPX_HOW := install Node.js >= 20, which brings npx (the cdktf CLI runs through it)
# $(need_env): stop when environments/$(ENV).toml does not exist, naming the ones that do (before any tool check).
ENV_FILES := $(sort $(basename $(notdir $(wildcard environments/*.toml))))
need_env = @test -f environments/$(ENV).toml || { echo "there is no environment file environments/$(ENV).toml (ENV=$(ENV)). Existing environments: $(ENV_FILES). Fix: make $@ ENV=<one of them>, or add environments/$(ENV).toml (docs/infrastructure.md)" >&2; exit 2; }

synth: venv ## synthesize every environment into cdktf.out/ (no cdktf CLI or Terraform needed)
	$(UV) run --no-sync python -m infra.main

snapshot: venv ## refresh the committed snapshots in tests/infra/snapshots/
	$(UV) run --no-sync python -m infra.snapshot

diff: ## show what a deploy would change: make diff ENV=staging (or ENV=staging-foundation)
	$(call need,terraform,$(TERRAFORM_HOW))
	$(call need,npx,$(NPX_HOW))
	$(CDKTF) diff $(ENV) $(CDKTF_ARGS)

bootstrap: ## prepare a fresh project once (APIs, state bucket, registry, build account): make bootstrap ENV=staging
	$(call need,gcloud,$(GCLOUD_HOW))
	$(call need,terraform,$(TERRAFORM_HOW))
	$(call need,npx,$(NPX_HOW))
	$(UV) sync --locked --all-groups --quiet
	$(RELEASE) bootstrap $(ENV)
	$(CDKTF) deploy $(ENV)-foundation $(CDKTF_ARGS)

image: ## build HEAD's queue image once (clean tree only), push it, record its digest: make image ENV=staging
	$(call need,git,install git)
	$(call need,gcloud,$(GCLOUD_HOW))
	$(UV) sync --locked --all-groups --quiet
	$(RELEASE) image $(ENV)

deploy: ## deploy one environment at the digest releases/<env>.json records: make deploy ENV=staging
	$(call need,gcloud,$(GCLOUD_HOW))
	$(call need,terraform,$(TERRAFORM_HOW))
	$(call need,npx,$(NPX_HOW))
	$(UV) sync --locked --all-groups --quiet
	$(RELEASE) preflight $(ENV)
	$(CDKTF) deploy $(ENV) $(CDKTF_ARGS)

promote: ## deploy to TO the digest FROM runs, and record it: make promote FROM=staging TO=production
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make promote FROM=<environment> TO=<environment>" >&2; exit 2; }
	$(call need,gcloud,$(GCLOUD_HOW))
	$(call need,terraform,$(TERRAFORM_HOW))
	$(call need,npx,$(NPX_HOW))
	$(UV) sync --locked --all-groups --quiet
	$(RELEASE) promote $(FROM) $(TO)
	@$(MAKE) --no-print-directory deploy ENV=$(TO)

rollback: ## deploy an earlier digest and record it: make rollback ENV=production DIGEST=sha256:…
	@test -n "$(DIGEST)" || { echo "usage: make rollback ENV=<environment> DIGEST=sha256:<digest> (earlier digests: git log -p releases/)" >&2; exit 2; }
	$(call need,gcloud,$(GCLOUD_HOW))
	$(call need,terraform,$(TERRAFORM_HOW))
	$(call need,npx,$(NPX_HOW))
	$(UV) sync --locked --all-groups --quiet
	$(RELEASE) rollback $(ENV) $(DIGEST)
	@$(MAKE) --no-print-directory deploy ENV=$(ENV)

# Operations (docs/runbook.md). diagnose and logs read a deployed environment: its URLs from the stack's outputs
# (terraform, after `make deploy` from this checkout), its project and queue service name from environments/$(ENV).toml.
# Memorystore is private: from a laptop the Redis checks are skipped unless REDIS_URL reaches it (e.g. a tunnel).
OPS_STACK := cdktf.out/stacks/$(ENV)
DIAGNOSE_SKIP ?= $(if $(REDIS_URL),profile,profile,redis,redis-eviction,queue)
SINCE ?= 1h
LIMIT ?= 200

diagnose: ## check a deployed environment (config, peers, auth, regions, Plivo): make diagnose ENV=staging
	$(need_env)
	@command -v terraform >/dev/null 2>&1 || { echo "make diagnose needs terraform to read the $(ENV) stack's outputs (install it, or run callqueue-diagnose with AGENT_SERVER_URL/BACKEND_URL/QUEUE_URL set)" >&2; exit 2; }
	@test -f $(OPS_STACK)/cdk.tf.json || { echo "no synthesized stack at $(OPS_STACK): run make synth (and make deploy ENV=$(ENV)) first" >&2; exit 2; }
	@terraform -chdir=$(OPS_STACK) init -input=false >/dev/null || { echo "terraform init failed in $(OPS_STACK): are your gcloud application-default credentials set?" >&2; exit 2; }
	@outputs=$$(mktemp) && trap 'rm -f $$outputs' EXIT && \
	  terraform -chdir=$(OPS_STACK) output -json >$$outputs || { echo "terraform output failed for $(ENV): is the stack deployed?" >&2; exit 2; }; \
	  token=$$(command -v gcloud >/dev/null 2>&1 && gcloud auth print-identity-token 2>/dev/null || true); \
	  [ -n "$$token" ] || echo "note: no gcloud identity token: private services will answer 401/403" >&2; \
	  $(UV) sync --locked --all-groups --quiet && \
	  CALLQUEUE_ID_TOKEN=$$token $(UV) run --no-sync python -m callqueue.ops.diagnose --stack-outputs $$outputs --skip $(DIAGNOSE_SKIP) $(ARGS)

connectivity: venv ## DNS, TCP, TLS, HTTP status and latency to every peer, with this shell's settings: make connectivity [ARGS="-n 20"]
	$(UV) run --no-sync python -m callqueue.ops.connectivity $(ARGS)

logs: ## the queue's recent logs from Cloud Logging; with CALL_ID, that call across services (its call id and trace): make logs ENV=staging [CALL_ID=…] [SINCE=1h] [LIMIT=200]
	$(need_env)
	@command -v gcloud >/dev/null 2>&1 || { echo "make logs needs the gcloud CLI (https://cloud.google.com/sdk/docs/install), logged in with gcloud auth login" >&2; exit 2; }
	@[ -n "$$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null)" ] || { echo "make logs needs gcloud credentials: run gcloud auth login (roles/logging.viewer on the project)" >&2; exit 2; }
	@$(UV) sync --locked --all-groups --quiet
	@described=$$($(UV) run --no-sync python -m infra.describe $(ENV)) || exit 2; read -r project service <<<"$$described"; \
	  filter="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$$service\""; \
	  if [ -n "$(CALL_ID)" ]; then \
	    call="jsonPayload.call_id=\"$(CALL_ID)\" OR textPayload:\"$(CALL_ID)\" OR jsonPayload.message:\"$(CALL_ID)\""; \
	    trace=$$(gcloud logging read "resource.type=\"cloud_run_revision\" AND jsonPayload.call_id=\"$(CALL_ID)\" AND trace:*" --project="$$project" --freshness=$(SINCE) --limit=1 --format='value(trace)' 2>/dev/null); \
	    filter="resource.type=\"cloud_run_revision\" AND ($$call$${trace:+ OR trace=\"$$trace\"})"; \
	  fi; \
	  echo "# $$project: $$filter (last $(SINCE), at most $(LIMIT) entries)" >&2; \
	  gcloud logging read "$$filter" --project="$$project" --freshness=$(SINCE) --limit=$(LIMIT) --order=asc \
	    --format='value(timestamp,resource.labels.service_name,severity,textPayload,jsonPayload.message)'
