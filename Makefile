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

test: $(STAMP)
	$(BIN)/ruff check gateway adapters sandbox tests
	$(BIN)/python -m pytest -q

serve: $(STAMP)
	$(BIN)/gateway serve

sandbox: $(STAMP)
	$(BIN)/gateway sandbox

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
