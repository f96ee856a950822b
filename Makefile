# Entry points for people and CI. Every target installs what it needs first
# (scripts/bootstrap is idempotent and takes seconds when the cache is warm).
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

.PHONY: help bootstrap demo test test-unit test-cluster test-e2e test-engine docs release clean-cache

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

bootstrap: ## install the virtualenv and every pinned tool into $(LLMOPS_CACHE)
	@scripts/bootstrap

demo: bootstrap ## the main job: local cluster, install values/local.yaml, load test, report
	@$(LLMOPS) demo

test: bootstrap ## every test tier (unit, cluster, e2e, engine)
	@$(PYTEST) -n $(JOBS) --dist loadgroup tests

test-unit: bootstrap ## fast tier: render, schema, policy; no cluster
	@$(PYTEST) -n $(JOBS) -m unit tests

test-cluster: bootstrap ## charts on a real API server
	@$(PYTEST) -m cluster tests

test-e2e: bootstrap ## load tests and autoscaling
	@$(PYTEST) -m e2e tests

test-engine: bootstrap ## the real vLLM engine on the CPU
	@$(PYTEST) -m engine tests

docs: bootstrap ## regenerate charts/*/README.md from the `# --` comments in values.yaml (helm-docs)
	@$(LLMOPS) docs

# make release REGISTRY=oci://host/path [VERSION=0.1.0]: package every chart (a
# recorded VERSION from its commit, else the working tree), sign (key from
# LLMOPS_SIGNING_KEY/LLMOPS_SIGNING_KEYRING/LLMOPS_VERIFY_KEYRING), push, and
# pull back with --verify on Helm 3 and 4. Without REGISTRY a local registry
# is started under build/registry for the run.
release: bootstrap ## package, sign, push and verify the charts (REGISTRY=oci://..., VERSION=...; docs/releasing.md)
	@$(LLMOPS) release publish $(if $(VERSION),--version $(VERSION)) $(if $(REGISTRY),--registry $(REGISTRY),--local-registry build/registry)

clean-cache: ## remove the tool cache (next bootstrap is cold)
	rm -rf "$(LLMOPS_CACHE)"
