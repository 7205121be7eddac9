# removalx: the two set-up commands of the README.
#   make demo  -- create .venv, install removalx, explain the bundled demo clip (writes a GIF)
#   make test  -- create .venv, install removalx with dev extras, run the test suite
#   make docs  -- build the documentation site strictly into site/ (docs/docs-site.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]' ./docs/examples/removalx-example-plugin
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/removalx explain removalx/zoo/demo/demo.gif --recipe lime3d --out removalx-out

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	.ci/lint.sh $(VENV)

docs: $(VENV)/.installed-dev
	.ci/docs.sh $(VENV) site

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) removalx-out build dist site *.egg-info
