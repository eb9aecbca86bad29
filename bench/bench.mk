# Benchmark targets (issue 7). The top Makefile includes this file (`include bench/bench.mk`);
# every target runs from the repository root. Method and figures: docs/benchmarks.md.
#
#   make bench         full run (~35 min on 2 cores): writes bench/results/*.json and docs/benchmarks.{md,png}
#   make bench-quick   the same scenarios, short (~1-2 min): results and tables only
#   make bench-smoke   seconds: direct + sluicegate + the granian/pyreqwest minimal hop, no peers (tests/bench)
#
# Peers, the minimal hops' venv (bench/floor/requirements.txt) and the bench's own venv are cached under
# bench/.cache/ (git-ignored); wrk and nginx come
# from Debian (bench/ensure_tools.sh installs them when missing).

BENCH_DIR    := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BENCH_VENV   := $(BENCH_DIR)/.cache/venv
BENCH_PY     := $(BENCH_VENV)/bin/python
BENCH_STAMP  := $(BENCH_VENV)/.installed-stamp
BENCH_PYTHON ?= $(or $(PYTHON),python3)
# What must exist before sluicegate can be started: the project's own `install` target by default.
BENCH_NEEDS  ?= install
# Extra flags for `python -m bench`, e.g. BENCH_ARGS='--sluicegate-cmd "sluicegate"'.
BENCH_ARGS   ?=

.PHONY: bench bench-quick bench-smoke bench-tools bench-venv

$(BENCH_STAMP): $(BENCH_DIR)/requirements.txt
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet -r $(BENCH_DIR)/requirements.txt
	touch $@

bench-venv: $(BENCH_STAMP)

bench-tools:
	bash $(BENCH_DIR)/ensure_tools.sh

bench: bench-tools $(BENCH_STAMP) $(BENCH_NEEDS)
	BENCH_COMMAND="make bench" $(BENCH_PY) -m bench --write-docs $(BENCH_ARGS)

bench-quick: bench-tools $(BENCH_STAMP) $(BENCH_NEEDS)
	BENCH_COMMAND="make bench-quick" $(BENCH_PY) -m bench --quick $(BENCH_ARGS)

bench-smoke: bench-tools $(BENCH_STAMP) $(BENCH_NEEDS)
	BENCH_COMMAND="make bench-smoke" $(BENCH_PY) -m bench --smoke $(BENCH_ARGS)
