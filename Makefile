# Two commands do all the set-up on a fresh machine:
#   make demo   install, fetch the sample data (dvc pull from the bundled remote) and run the pipeline
#   make test   install and run the test suite
# Telemetry stays off in everything these run.
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Offline tokenizer encodings bundled for tests/CI; on a user's machine tiktoken downloads and caches as usual.
TIKTOKEN_DIR := $(CURDIR)/tests/data/tiktoken

.PHONY: setup demo test lint clean

$(BIN)/ftlib: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/ftlib

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" TIKTOKEN_CACHE_DIR="$${TIKTOKEN_CACHE_DIR:-$(TIKTOKEN_DIR)}" \
		$(BIN)/dvc pull data.dvc && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc metrics show

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" TIKTOKEN_CACHE_DIR="$(TIKTOKEN_DIR)" $(BIN)/ruff check ftlib flows tests benchmarks scripts
	PATH="$(CURDIR)/$(BIN):$$PATH" TIKTOKEN_CACHE_DIR="$(TIKTOKEN_DIR)" $(BIN)/pytest -q -p no:cacheprovider

clean:
	rm -rf build reports/*.tmp .pytest_cache
