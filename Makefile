# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Each creates .venv, installs the CPU build of torch first when torch is absent, then the package.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DATA ?= $(abspath ../shared/data)

.PHONY: setup demo demo-quick test test-slow bench clean

$(BIN)/unlearn-bench: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/unlearn-bench

demo: setup
	$(BIN)/unlearn-bench demo --out results/demo

demo-quick: setup
	$(BIN)/unlearn-bench demo --quick --out results/demo-quick

test: setup
	UNLEARN_DATA_DIR=$${UNLEARN_DATA_DIR:-$(DATA)} $(BIN)/pytest -q

test-slow: setup
	UNLEARN_DATA_DIR=$${UNLEARN_DATA_DIR:-$(DATA)} $(BIN)/pytest -q -m slow

bench: setup
	$(BIN)/python benchmarks/eval_speed.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
