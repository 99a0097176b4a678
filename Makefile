# Two commands on a fresh machine: `make demo` and `make test`. Installs go through pip (torch 2.13.0 is a
# local CPU wheel here and the CUDA build on GPU machines; uv/poetry do not see that wheel).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
BENCHES := translate quality validation training ray respond fidelity langid translate_many lingua_modes

.PHONY: bench-translate-many venv demo test bench lint constraints clean chromium report-assets $(addprefix bench-,$(BENCHES))

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	dvc repro
	@echo "demo done: dataset in data/export, adapters in models/adapters, metrics in metrics/, Data Docs in reports/data_docs/index.html"
	@echo "report (opens offline): $(CURDIR)/reports/index.html"

# pytest-xdist: the test files in PYTEST_WORKERS processes, each file (or group of files, XDIST_GROUPS in
# tests/conftest.py) in one, the heaviest first (--no-loadscope-reorder keeps that order).
PYTEST_WORKERS ?= 2
test: venv chromium
	pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The browser tests open the reports in Debian's chromium package (never a browser download); without it
# they skip, saying why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq >/dev/null 2>&1; \
	  $(SUDO) apt-get install -y -qq chromium >/dev/null 2>&1; } \
	  || echo "chromium could not be installed (apt-get install -y chromium): the browser tests will skip"

# Refresh the vendored browser assets of the HTML reports from the npm registry after changing a version in
# quality/report_assets/manifest.json.
report-assets: venv
	$(BIN)/python -m quality.vendored_assets

bench: venv
	$(BIN)/python -m benchmarks.run $(BENCHES)

$(addprefix bench-,$(BENCHES)): bench-%: venv
	$(BIN)/python -m benchmarks.run $*

# Per-language translate processes against one translate-many process (issue 14). FULL=1: 10 languages over
# ../shared/data/alpaca_5000.json (RECORDS=N: its first N), and the model load at the NLLB-600M shape.
bench-translate-many: venv
	BENCH_TRANSLATE_MANY_FULL=$(FULL) BENCH_TRANSLATE_MANY_RECORDS=$(RECORDS) $(BIN)/python -m benchmarks.run translate_many

lint: venv
	ruff check .

# Re-pin after changing dependencies in pyproject.toml.
constraints: venv
	{ head -2 constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu/torch==2.13.0/'; } > constraints.new && mv constraints.new constraints.txt

clean:
	rm -rf data models/smoke-* models/cache metrics reports
