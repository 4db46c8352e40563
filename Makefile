# The two set-up commands of the README:
#   make demo   install the lab, fetch MNIST, train a standard model, start the dashboard; an
#               attention, an adversarially trained and a denoised model train and are
#               evaluated under attack in the background and appear on it as they finish
#   make test   install everything (the lab and its test tools) and run the tests
# TORCH picks the PyTorch build to install first (default: the CPU build 2.13.0 that pip
# finds on the lab's machines); use e.g. TORCH=torch for the newest release from PyPI.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.installed-run
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# when this make started (before any installation): the demo's clock
DEMO_T0 := $(shell date +%s)

.PHONY: setup system-data demo dashboard test bench clean

# The lab and what it runs on (what the demo and the dashboard need)
$(RUNTIME): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

# ... and the test tools (pytest, Playwright, import-linter, ...) and Ray for the sweeps
$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
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
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium (the dashboard's browser test drives it with Playwright)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium; the dashboard's browser test will be skipped"; \
	fi

# The dashboard as soon as the standard model is trained (a few minutes); the other three
# models train and are evaluated in the background and appear on it as they finish; a line
# says when each is ready. Again after an interruption: it continues (lab/dashboard/demo.py).
demo: $(RUNTIME)
	LAB_DEMO_T0=$(DEMO_T0) $(BIN)/python -m lab.dashboard.demo

# The dashboard on the models under runs/, on this machine only (http://localhost:8501).
dashboard: $(RUNTIME)
	$(BIN)/python -m lab.dashboard.server --server.address localhost

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The peers compared against: foolbox (a dependency) and torchattacks (benchmark only,
# installed without its dependencies: it pins requests and pulls in torchvision).
bench: setup
	$(BIN)/python -m pip install --quiet --no-deps torchattacks
	$(BIN)/python benchmarks/train_throughput.py
	test -f runs/mnist_smallcnn/model.safetensors || $(BIN)/lab train --config configs/mnist_smallcnn.toml --out runs/mnist_smallcnn
	$(BIN)/python benchmarks/attack_speed.py --model runs/mnist_smallcnn

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
