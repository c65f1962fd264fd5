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

.PHONY: help install run test lint format unit integration e2e infra synth deploy destroy bench train chaos clean

help:
	@echo "make run     serve the router locally on http://127.0.0.1:$(PORT) (emulated AWS, simulated models)"
	@echo "make test    lint, type-check and run every test"
	@echo "make synth   synthesize the CDK stack into cdk.out/ offline"
	@echo "make deploy  deploy the stack into the current AWS account"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.8

$(VENV)/.installed: pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(PY) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
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

unit integration e2e infra: install
	$(PY) -m pytest tests/$@

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .coverage
