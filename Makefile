# Two commands matter: `make demo` and `make test`. Both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TRADELAB_HOME ?= $(CURDIR)
# numba's compiled kernels are cached next to the venv so repeat runs start warm.
export NUMBA_CACHE_DIR ?= $(CURDIR)/var/numba-cache

.PHONY: venv demo test lint lab bench golden clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/tradelab demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m mypy

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP)
	$(BIN)/python bench/research.py

golden: $(STAMP)
	$(BIN)/python -m pytest tests/integration/test_golden.py --update-golden

clean:
	rm -rf $(VENV) var .pytest_cache
