# Two commands from a fresh machine: `make demo` and `make test`. Both create or reuse .venv and install what
# they need; anvil (the JSON-RPC dev node used by integration tests) goes to the git-ignored .tools/ folder.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ANVIL_VERSION := 1.7.1
ANVIL_STAMP := .tools/.anvil-$(ANVIL_VERSION)

.PHONY: install demo test lint typecheck contracts bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $@

$(ANVIL_STAMP):
	mkdir -p .tools
	npm install --prefix .tools --no-audit --no-fund --loglevel=error @foundry-rs/anvil@$(ANVIL_VERSION)
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/deworker demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test: make treats that as a failure, as it should.
test: $(STAMP) $(ANVIL_STAMP) lint typecheck
	$(BIN)/python -m pytest

contracts: $(STAMP)
	$(BIN)/python -m contracts.compile

bench: $(STAMP) $(ANVIL_STAMP)
	$(BIN)/python benchmarks/chain_throughput.py

clean:
	rm -rf $(VENV) .tools .deworker .pytest_cache .mypy_cache .ruff_cache
