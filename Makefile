# Two commands on a fresh machine (each creates the virtual environment it needs):
#   make demo   train a 400-neuron Diehl & Cook network on the embedded MNIST digits and test it
#   make test   run the test suite
VENV ?= .venv
PYTHON ?=
PYTHON312 := $(shell PYTHON="$(PYTHON)" scripts/find_python312.sh)
DEMO_OUT ?= results/static_mnist_diehl_cook_400.nc

.PHONY: demo test venv clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py
	@test -n "$(PYTHON312)" || (scripts/find_python312.sh; exit 1)
	"$(PYTHON312)" -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	@touch $@

demo: venv
	$(VENV)/bin/spikedyn run static-mnist --network diehl-cook --neurons 400 \
		--train-samples 4000 --test-samples 1000 --device cpp_standalone --seed 0 \
		--out $(DEMO_OUT)

test: venv
	$(VENV)/bin/python -m pytest

clean-venv:
	rm -rf $(VENV)
