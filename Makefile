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

# promtool (from Debian's prometheus package, unpacked here, nothing installed system-wide)
# checks the alert rules; where it cannot be fetched those checks are skipped, said so.
PROMTOOL := $(VENV)/tools/promtool
$(PROMTOOL):
	@mkdir -p $(VENV)/tools/deb && cd $(VENV)/tools/deb \
	  && apt-get download prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb root \
	  && cp root/usr/bin/promtool ../promtool && cd .. && rm -rf deb \
	  || (rm -rf $(VENV)/tools/deb; echo "promtool could not be fetched: its checks will be skipped")

test: $(STAMP) $(PROMTOOL)
	$(BIN)/ruff check gateway adapters sandbox tests examples
	$(BIN)/mypy
	PATH="$(CURDIR)/$(VENV)/tools:$$PATH" $(BIN)/python -m pytest -q

serve: $(STAMP)
	$(BIN)/gateway serve

sandbox: $(STAMP)
	$(BIN)/gateway sandbox

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
