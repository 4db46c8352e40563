# The two set-up commands of the README:
#   make demo   install everything, fetch data, train a standard, a hardened and a denoised model,
#               evaluate them under attack, start the dashboard
#   make test   install everything and run the tests
# TORCH picks the PyTorch build to install first (default: the CPU build 2.13.0 that pip
# finds on the lab's machines); use e.g. TORCH=torch for the newest release from PyPI.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup system-data demo dashboard test bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
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

# Train (or resume, or keep) a run: $(call run,RECIPE)
run = $(BIN)/lab train --config configs/$(1).toml --out runs/$(1) $(if $(wildcard runs/$(1)/train_state.safetensors),--resume,)
DEMO_EVAL = --suite quick --eps 0,0.05,0.1,0.2,0.3 --n 1000

# A standard model, a hardened one and a denoiser on MNIST, each evaluated, then the dashboard.
demo: setup
	$(BIN)/lab data fetch mnist
	$(call run,mnist_smallcnn)
	$(call run,mnist_fastnet_pgd_at)
	$(call run,mnist_dae)
	$(BIN)/lab models runs
	$(BIN)/lab eval --model runs/mnist_smallcnn $(DEMO_EVAL)
	$(BIN)/lab eval --model runs/mnist_fastnet_pgd_at $(DEMO_EVAL)
	$(BIN)/lab eval --model runs/mnist_dae $(DEMO_EVAL)
	$(BIN)/streamlit run app.py --server.address localhost

# The dashboard on the models under runs/, on this machine only (http://localhost:8501).
dashboard: setup
	$(BIN)/streamlit run app.py --server.address localhost

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
