# Two commands do all the set-up on a fresh machine:
#   make demo   install, fetch the sample data (dvc pull from the bundled remote), bring up a local Prefect stack and
#               run the `finetune-pipeline/local` deployment on it (dvc repro inside), then stop the stack
#   make test   install and run the test suite
# Also: `make repro` (the same pipeline through plain `dvc repro`), `make lint`.
# Telemetry stays off in everything these run.
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Offline tokenizer encodings bundled for tests/CI; on a user's machine tiktoken downloads and caches as usual.
TIKTOKEN_DIR := $(CURDIR)/tests/data/tiktoken

.PHONY: setup demo repro test lint clean

$(BIN)/ftlib: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,train]"
	touch $@

setup: $(BIN)/ftlib

demo: setup
	$(BIN)/dvc pull -q data.dvc
	scripts/stack-up
	. .prefect-local/env && $(BIN)/prefect deployment run 'finetune-pipeline/local' --watch; \
		rc=$$?; scripts/stack-down; exit $$rc
	$(BIN)/dvc metrics show

repro: setup
	$(BIN)/dvc pull -q data.dvc
	PATH="$(CURDIR)/$(BIN):$$PATH" TIKTOKEN_CACHE_DIR="$${TIKTOKEN_CACHE_DIR:-$(TIKTOKEN_DIR)}" $(BIN)/dvc repro
	$(BIN)/dvc metrics show

lint: setup
	$(BIN)/ruff check ftlib flows tests benchmarks scripts

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" TIKTOKEN_CACHE_DIR="$(TIKTOKEN_DIR)" $(BIN)/ruff check ftlib flows tests benchmarks scripts
	PATH="$(CURDIR)/$(BIN):$$PATH" TIKTOKEN_CACHE_DIR="$(TIKTOKEN_DIR)" $(BIN)/pytest -q -p no:cacheprovider

clean:
	rm -rf build reports/*.tmp .pytest_cache
