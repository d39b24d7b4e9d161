# Front door of the toolkit. `make demo` and `make test` are all a newcomer needs (see README.md).
# Everything runs inside .venv; torch 2.13.0 is installed first (a CPU build that lies on this disk;
# a bare `torch` requirement would pull a multi-GB CUDA build).

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= quick
DATASET ?= fashion-mnist
RUNS    ?= runs
TORCH   ?= torch==2.13.0

PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PRSR   := $(VENV)/bin/prsr
STAMP  := $(VENV)/.installed
STUDY_DB ?= sqlite:///$(RUNS)/$(DATASET)/study.db
DATA_ROOT ?=
DATA_ARG := $(if $(DATA_ROOT),--data-root $(DATA_ROOT),)

.PHONY: help demo test setup data train-all eval corners study analysis bench clean-venv

help:
	@echo "make demo       set up, fetch the default data, train every method ($(PROFILE) profile), write Table 1"
	@echo "make test       set up, install the test servers (PostgreSQL, Chromium), run the whole test suite"
	@echo "make setup | data | train-all | eval | corners | study | analysis | bench"
	@echo "variables: PROFILE=smoke|quick|paper  DATASET=fashion-mnist|celeba|lsun-bedroom  RUNS=runs  DATA_ROOT=dir"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

data: setup
	bash scripts/install-data.sh $(DATASET)
	$(PRSR) data --dataset $(DATASET) $(DATA_ARG)

train-all: data
	$(PRSR) train --method all --dataset $(DATASET) --profile $(PROFILE) --runs-dir $(RUNS) $(DATA_ARG)

eval: data
	$(PRSR) eval --dataset $(DATASET) --profile $(PROFILE) --runs-dir $(RUNS) $(DATA_ARG)

demo: setup data train-all eval

corners: data
	$(PRSR) corners --profile $(PROFILE) --runs-dir $(RUNS)

study: setup
	$(PRSR) study serve --db $(STUDY_DB)

analysis: setup
	$(PRSR) analyze --db $(STUDY_DB) --out $(RUNS)/$(DATASET)/analysis --notebook

test: setup
	bash scripts/install-test-deps.sh
	bash scripts/install-data.sh fashion-mnist
	$(VENV)/bin/pytest

bench: setup
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
