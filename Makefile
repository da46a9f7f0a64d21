# Clientbase: `make run` serves the app with demo data; `make test` runs lint and the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_CLIENTS ?= 300
PYTEST_ARGS ?=

.PHONY: run test test-e2e lint format messages bench clean

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(BIN)/clientbase migrate --noinput
	$(BIN)/clientbase demo --clients $(DEMO_CLIENTS)
	HTTPS_ONLY=false $(BIN)/clientbase up

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

test-e2e: $(VENV)/.dev
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: $(VENV)/.dev
	$(BIN)/clientbase messages

bench: $(VENV)/.runtime
	$(BIN)/clientbase bench demo

clean:
	rm -rf $(VENV) var/static
