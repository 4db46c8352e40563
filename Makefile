# The two set-up commands of the README:
#   make demo   install everything, fetch data, train the default model, evaluate it under attack
#   make test   install everything and run the tests
# TORCH picks the PyTorch build to install first (default: the CPU build 2.13.0 that pip
# finds on the lab's machines); use e.g. TORCH=torch for the newest release from PyPI.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup system-data demo test bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) system-data

# Fashion-MNIST ships in Debian's dataset-fashion-mnist; install it where we can (root + apt).
# Elsewhere the lab falls back to its other sources (your --data-dir, the canonical URLs).
system-data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's dataset-fashion-mnist"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "could not install dataset-fashion-mnist; the lab will try its other sources"; \
	fi

demo: setup
	$(BIN)/lab data fetch mnist
	$(BIN)/lab train --config configs/mnist_smallcnn.toml --out runs/mnist_smallcnn $(if $(wildcard runs/mnist_smallcnn/train_state.safetensors),--resume,)
	$(BIN)/lab models runs
	$(BIN)/lab eval --model runs/mnist_smallcnn --suite quick --eps 0,0.05,0.1,0.2,0.3 --n 1000

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The peers compared against: foolbox (a dependency) and torchattacks (benchmark only,
# installed without its dependencies: it pins requests and pulls in torchvision).
bench: setup
	$(BIN)/python -m pip install --quiet --no-deps torchattacks
	$(BIN)/python benchmarks/train_throughput.py
	test -f runs/mnist_smallcnn/model.safetensors || $(MAKE) demo
	$(BIN)/python benchmarks/attack_speed.py --model runs/mnist_smallcnn

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
