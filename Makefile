# Entry points for people and CI. Every target installs the tool set it needs
# first (`scripts/bootstrap --for SET`; the sets are [tool.llmops.toolsets] in
# pyproject.toml, `llmops tools sets` lists them). Bootstrap is idempotent and
# takes seconds when the cache is warm.
SHELL := /bin/bash
.DEFAULT_GOAL := help

LLMOPS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/llmops
export LLMOPS_CACHE
export PATH := $(LLMOPS_CACHE)/bin:$(PATH)
export CT_CONFIG_DIR ?= $(LLMOPS_CACHE)/etc/ct
export PYTHONPATH := $(CURDIR)/src

PY := .venv/bin/python
PYTEST := $(PY) -m pytest
LLMOPS := $(PY) -m llmops
# pytest-xdist: two workers on this two-core machine; override with JOBS=1.
JOBS ?= auto

.PHONY: help bootstrap demo test test-unit test-cluster test-e2e test-engine docs loadtest-files release clean-cache

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

bootstrap: ## install the virtualenv and every tool of every set into $(LLMOPS_CACHE)
	@scripts/bootstrap --for all

demo: ## the main job: local cluster, install values/local.yaml, load test, report
	@scripts/bootstrap --for demo
	@$(LLMOPS) demo

test: ## every test tier (unit, cluster, e2e, engine)
	@scripts/bootstrap --for all
	@$(PYTEST) -n $(JOBS) --dist loadgroup --durations=40 tests

test-unit: ## fast tier: render, schema, policy; no cluster
	@scripts/bootstrap --for unit
	@$(PYTEST) -n $(JOBS) -m unit tests

test-cluster: ## charts on a real API server
	@scripts/bootstrap --for cluster
	@$(PYTEST) -m cluster tests

test-e2e: ## load tests and autoscaling
	@scripts/bootstrap --for e2e
	@$(PYTEST) -m e2e tests

test-engine: ## the real vLLM engine on the CPU
	@scripts/bootstrap --for engine
	@$(PYTEST) -m engine tests

docs: ## regenerate charts/*/README.md from the `# --` comments in values.yaml (helm-docs)
	@scripts/bootstrap --for docs
	@$(LLMOPS) docs

loadtest-files: ## generate charts/loadtest/files/ (the locustfile and harness modules) for a plain `helm template`/`helm package`
	@$(LLMOPS) chart-files

# make release REGISTRY=oci://host/path [VERSION=0.1.0]: package every chart (a
# recorded VERSION from its commit, else the working tree), sign (key from
# LLMOPS_SIGNING_KEY/LLMOPS_SIGNING_KEYRING/LLMOPS_VERIFY_KEYRING), push, and
# pull back with --verify on Helm 3 and 4. Without REGISTRY a local registry
# is started under build/registry for the run.
release: ## package, sign, push and verify the charts (REGISTRY=oci://..., VERSION=...; docs/releasing.md)
	@scripts/bootstrap --for cluster
	@$(LLMOPS) release publish $(if $(VERSION),--version $(VERSION)) $(if $(REGISTRY),--registry $(REGISTRY),--local-registry build/registry)

clean-cache: ## remove the tool cache (next bootstrap is cold)
	rm -rf "$(LLMOPS_CACHE)"
