# The two commands: `make run` (the main job) and `make test` (the tests). Each installs what it needs
# into .venv first; set PYTHON to choose the interpreter (default python3, 3.11 or newer).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.json

.PHONY: run practice test lint bench clean

run: $(VENV)/.runtime
	$(BIN)/python fullprocess.py --config $(CONFIG)

practice: $(VENV)/.runtime
	$(BIN)/python fullprocess.py --config config_practice.json

test: $(VENV)/.dev
	$(BIN)/python -m pytest -n auto

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.dev
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.drift_sim
	$(BIN)/python -m benchmarks.bench_risklist

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

clean:
	rm -rf ingesteddata/* models/* practicemodels/* production_deployment/* logs
