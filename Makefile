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

# worksteal: a worker that runs out of tests takes some of the other's, so neither idles at the end
test: $(VENV)/.dev
	$(BIN)/python -m pytest -n auto --dist worksteal

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

# Everything the pipeline wrote, for both configs (hidden files too: the run lock, a killed run's temporary
# files), and the walk-through's copy of dataset5.csv in sourcedata/ when unchanged; never the shipped data
# or the .gitkeep files. Afterwards the walk-through starts as on a fresh clone.
GENERATED := ingesteddata practiceingested models practicemodels production_deployment

clean:
	for folder in $(GENERATED); do find $$folder -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +; done
	rm -rf logs
	if cmp -s walkthroughdata/dataset5.csv sourcedata/dataset5.csv; then rm sourcedata/dataset5.csv; fi
