# visrec: two commands on a fresh machine with Python 3.11 and the package registries.
#   make demo   generate the demo dataset and run the pipeline on it
#   make test   install the test dependencies, check the package layers and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# torch/torchvision are pinned for the dev/test install only; the package itself asks for ranges.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
DEMO_DIR := demo-out

.PHONY: demo test lint lint-imports venv clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS) -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m visrec.demo_pipeline $(DEMO_DIR)

test: $(VENV)/.installed lint-imports
	$(PY) -m pytest -q

# The package layers of docs/architecture.md (contracts in pyproject.toml [tool.importlinter]).
lint-imports: $(VENV)/.installed
	$(VENV)/bin/lint-imports

lint: $(VENV)/.installed lint-imports
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache
