# Two commands for a fresh machine: `make demo` and `make test`. Each builds .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench serve sandbox clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gateway --log-level WARNING demo

# Throughput, latency and memory with sandbox, gateway and load in separate processes;
# about 4 minutes; `.venv/bin/gateway bench --quick` is a 30-second smoke run (docs/benchmarks.md).
bench: $(STAMP)
	$(BIN)/gateway --log-level WARNING bench

test: $(STAMP)
	$(BIN)/ruff check gateway adapters sandbox tests
	$(BIN)/python -m pytest -q

serve: $(STAMP)
	$(BIN)/gateway serve

sandbox: $(STAMP)
	$(BIN)/gateway sandbox

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
