# llmapp-operator — every target installs what it needs into .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# A CLI config that exists (an environment may name a missing one, and terraform then warns on every call).
export TF_CLI_CONFIG_FILE := $(if $(wildcard $(TF_CLI_CONFIG_FILE)),$(TF_CLI_CONFIG_FILE),$(CURDIR)/.venv/terraformrc)

.PHONY: help install demo sandbox test unit integration lint crd chart run install-crd bench soak e2e-aws lock e2e-kind clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@# Checkov in a venv of its own ([tool.llmapp] in pyproject.toml says why).
	@test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --disable-pip-version-check \
	  "$$($(PY) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["llmapp"]["checkov"])')"
	@rm -f $(VENV)/.installed-* && touch $@ $(VENV)/terraformrc

install: $(STAMP)  ## create .venv and install the operator with its test tools

demo: $(STAMP)  ## the whole lifecycle on the embedded sandbox (no cluster, no cloud)
	$(PY) -m llmapp_sandbox demo

sandbox: $(STAMP)  ## keep the sandbox running for the real kubectl; writes .sandbox/kubeconfig (Ctrl-C stops it)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m llmapp_sandbox sandbox --dir .sandbox

test: lint  ## lint, then every test (what CI runs)
	$(PY) -m pytest

unit: $(STAMP)  ## unit tests only
	$(PY) -m pytest tests/unit

integration: $(STAMP)  ## integration tests only (kmock + moto + terraform)
	$(PY) -m pytest tests/integration

lint: $(STAMP)  ## ruff, mypy, import contracts, terraform fmt, the CRD generated from the models
	$(VENV)/bin/ruff check operator tests benchmarks scripts
	$(PY) scripts/gen_crd.py --check
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform tests/fixtures; \
	  else echo "terraform not on PATH: skipping terraform fmt -check"; fi

crd: $(STAMP)  ## write api/regions.py (botocore's regions), then crds/llmapp.yaml and the chart's copy from the models
	$(PY) scripts/gen_regions.py
	$(PY) scripts/gen_crd.py

chart: $(STAMP)  ## lint the Helm chart and render it to build/chart/ (Helm's engine via helm-python-sdk)
	$(PY) scripts/chart.py

run: $(STAMP)  ## serve the current kube-context (installs/updates the CRD first)
	$(PY) -m llmapp_operator run

install-crd: $(STAMP)  ## create or update the LLMApp CRD in the current kube-context
	$(PY) -m llmapp_operator install-crd

bench: $(STAMP)  ## benchmarks as side-by-side ratios; appends to docs/benchmarks.md
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

soak: $(STAMP)  ## fault soak: LLMAPP_FAULT_KILLS (20) SIGKILL/restart points, plus every other fault test
	LLMAPP_FAULT_KILLS=$${LLMAPP_FAULT_KILLS:-20} $(PY) -m pytest tests/integration -q -rA \
	  -k "kill or outage or faults or while or lock or timeout or destroy or github or one_reconcile or graceful"

e2e-aws:  ## opt-in: the real terraform/stack in your AWS account; prints and checks a checklist first (docs/e2e-aws.md)
	@$(PYTHON) scripts/e2e_aws_checklist.py --list
	@$(MAKE) --no-print-directory install
	@$(PY) scripts/e2e_aws_checklist.py --check
	$(PY) -m pytest tests/e2e/test_aws_stack.py -m e2e -rs

lock:  ## write terraform/stack/.terraform.lock.hcl (linux_amd64, darwin_arm64, linux_arm64); needs the registry
	@$(PYTHON) scripts/e2e_aws_checklist.py --check --only terraform,git,registry,github \
	  || { echo "make lock: needs terraform, git and the Terraform registry and GitHub (see above); nothing written"; exit 1; }
	terraform -chdir=terraform/stack get -no-color
	terraform -chdir=terraform/stack providers lock -platform=linux_amd64 -platform=darwin_arm64 -platform=linux_arm64
	@echo "make lock: wrote terraform/stack/.terraform.lock.hcl; commit it (the image build and init then use it read-only)"

e2e-kind: $(STAMP)  ## opt-in, needs Docker + kind: image, chart and an LLMApp lifecycle in a kind cluster
	$(PY) -m pytest tests/e2e/test_kind.py -m e2e -rs

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
