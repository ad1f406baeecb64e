# Two commands on a fresh machine (each creates the virtual environment it needs):
#   make demo   a short class-incremental stream (digits 0..9 one after another, no labels) for
#               SpikeDyn, ASP and Diehl & Cook with the shipped tuned networks, side by side
#   make test   run the default test suite (without the tests marked slow)
# On request:
#   make test-fast   the quick lane: no compilation, no Dask cluster, no GeNN environment
#   make test-slow   the long end-to-end tests (marker slow)
#   make genn-venv   the Python 3.11 environment of the GeNN device (about 800 MB)
VENV ?= .venv
GENN_VENV ?= .venv-genn
PYTHON ?=
PYTHON311 ?= $(shell command -v python3.11 || ls $$HOME/.pyenv/versions/3.11*/bin/python 2>/dev/null | tail -1)
PYTHON312 := $(shell PYTHON="$(PYTHON)" scripts/find_python312.sh)
DEMO_OUT ?= results/demo

.PHONY: demo test test-fast test-slow venv genn-venv clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py
	@test -n "$(PYTHON312)" || (scripts/find_python312.sh; exit 1)
	"$(PYTHON312)" -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test,cuda]"
	@touch $@

# The GeNN device: brian2genn 1.7 needs brian2 < 2.6 (Python 3.11, numpy < 2).
genn-venv: $(GENN_VENV)/.installed

$(GENN_VENV)/.installed: setup.py
	@test -n "$(PYTHON311)" || (echo "make genn-venv needs Python 3.11 (python3.11 or pyenv)"; exit 1)
	"$(PYTHON311)" -m venv $(GENN_VENV)
	$(GENN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(GENN_VENV)/bin/python -m pip install --quiet -e ".[test,genn]"
	@touch $@

demo: venv
	$(VENV)/bin/spikedyn run continual-comparison --variants spikedyn asp diehl-cook \
		--neurons 400 --samples-per-task 400 --test-per-class 50 --seeds 0 --workers 2 \
		--overwrite --out $(DEMO_OUT)/comparison.nc
	$(VENV)/bin/python -m spikedyn_brian.protocols.continual_figures \
		$(DEMO_OUT)/comparison.nc --out $(DEMO_OUT)/figures

# The genn tests run where `make genn-venv` built .venv-genn (and GENN_PATH
# names a GeNN build); otherwise they are skipped with the reason.
test: venv genn-venv
	$(VENV)/bin/python -m pytest

# The quick lane (under 2 minutes on an idle 2-core machine, one pytest worker
# per core): what needs no C++ compiler, no Dask workers and no .venv-genn
# (markers: setup.cfg).
test-fast: venv
	$(VENV)/bin/python -m pytest -n auto -m "not slow and not standalone and not cluster and not genn_env"

test-slow: venv
	$(VENV)/bin/python -m pytest -m slow

clean-venv:
	rm -rf $(VENV) $(GENN_VENV)

# Wheels for the prepared GPU run (benchmarks/gpu_check.sh, docs/performance.md):
# into wheels/ (git-ignored), with the size that travels to the GPU machine.
.PHONY: gpu-wheels
gpu-wheels: venv
	$(VENV)/bin/python scripts/gather_gpu_wheels.py
