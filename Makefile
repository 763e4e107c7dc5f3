# DualForce: two commands do all the set-up on a fresh machine.
#   make demo  — bootstrap .venv, then run the whole Dagster pipeline on a synthetic dataset (pipelines/demo.py)
#   make test  — bootstrap .venv, then lint (ruff), type-check (mypy) and run the test suite
#   make test-fast — the same without the tests marked slow (the edit loop; CI runs make test)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dualforce-installed
TORCH_VERSION := 2.13.0
export DUALFORCE_HOME ?= $(CURDIR)/.dualforce

.PHONY: demo test test-fast lint typecheck pytest pytest-fast ui system-deps clean-venv

# The venv is rebuilt when the lock or the project metadata changes (a stale venv).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@# torch first, alone: any looser spec pulls GBs of CUDA wheels on a CPU machine.
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	@$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

# System packages the tests drive for real: headless Chromium (browser tests), espeak-ng (real speech for
# the curation corpus) and opencv-doc (real photographs and video: messi5.jpg, Megamind.avi, ...).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	test -d /usr/share/doc/opencv-doc/examples/data || missing="$$missing opencv-doc"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages:$$missing (run: sudo apt-get install$$missing)"; fi; \
	fi

demo: $(STAMP)
	$(BIN)/python -m pipelines.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy dualforce_core assets pipelines definitions.py bench tests

pytest: $(STAMP) system-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# The edit loop: every test not marked slow (Dagster runs, FSDP ranks, kill/resume, the browser): no Chromium.
pytest-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-fast: lint typecheck pytest-fast

# Dagster UI on 127.0.0.1:3000 and MLflow UI on 127.0.0.1:5000; Ctrl-C stops both process groups.
ui: $(STAMP)
	$(BIN)/python -m pipelines.ui

clean-venv:
	rm -rf $(VENV)
