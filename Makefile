# The two commands of a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Test processes in parallel: each is its own pytest session with its own database and MQTT
# topic prefix (and, with nothing configured, its own embedded PostgreSQL and broker).
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

## run: set up and start the hub with its embedded database and broker, and the demo room
run: $(VENV)/.installed
	$(BIN)/posko up --demo

## test: set up and run the whole test suite
test: $(VENV)/.installed-test
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## lint: ruff and mypy --strict on the packages
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m ops.lint_routes

## bench: every bench in its quick form
bench: $(VENV)/.installed
	$(BIN)/python -m bench.startup --quick
	$(BIN)/python -m bench.bus --quick
	$(BIN)/python -m bench.cases --quick
	$(BIN)/python -m bench.live --quick
	$(BIN)/python -m bench.devices --quick
	$(BIN)/python -m bench.dispatch --quick
	$(BIN)/python -m bench.radio --quick

clean:
	rm -rf $(VENV) build *.egg-info
