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
BENCHES := translate quality validation training ray fidelity langid

.PHONY: venv demo test bench lint constraints clean $(addprefix bench-,$(BENCHES))

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	dvc repro
	@echo "demo done: dataset in data/export, adapters in models/adapters, metrics in metrics/, Data Docs in reports/data_docs/index.html"

test: venv
	pytest -q

bench: venv
	$(BIN)/python -m benchmarks.run $(BENCHES)

$(addprefix bench-,$(BENCHES)): bench-%: venv
	$(BIN)/python -m benchmarks.run $*

lint: venv
	ruff check .

# Re-pin after changing dependencies in pyproject.toml.
constraints: venv
	{ head -2 constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu/torch==2.13.0/'; } > constraints.new && mv constraints.new constraints.txt

clean:
	rm -rf data models/smoke-* models/cache metrics reports
