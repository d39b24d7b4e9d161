# Front door of the toolkit. `make demo` and `make test` are all a newcomer needs (see README.md).
# Everything runs inside .venv; torch 2.13.0 is installed first (a CPU build that lies on this disk;
# a bare `torch` requirement would pull a multi-GB CUDA build).

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= quick
DATASET ?= fashion-mnist
RUNS    ?= runs
TORCH   ?= torch==2.13.0
# Trainings side by side: auto = 2 on a CPU (each on half the threads: a seed's four quick trainings finish
# 1.14-1.19x sooner on 2 cores, with one-thread weights), one per GPU; JOBS=1 trains one at a time.
JOBS    ?= auto

PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PRSR   := $(VENV)/bin/prsr
STAMP  := $(VENV)/.installed
STUDY_FILE ?= $(RUNS)/$(DATASET)/study.db
SIM_DB  ?= $(RUNS)/$(DATASET)/study/SIMULATED_study.db
DATA_ROOT ?=
DATA_ARG := $(if $(DATA_ROOT),--data-root $(DATA_ROOT),)

.PHONY: help demo test lint setup data train-all eval corners study analysis bench clean-venv

help:
	@echo "make demo       set up, fetch the default data, train every method ($(PROFILE) profile), write Table 1"
	@echo "make test       set up, install the test servers (PostgreSQL, Chromium), run the whole test suite"
	@echo "make lint       ruff check + ruff format --check (the CI runs it before the tests)"
	@echo "make setup | data | train-all | eval | corners | study | analysis | bench"
	@echo "variables: PROFILE=smoke|quick|paper  DATASET=fashion-mnist|celeba|lsun-bedroom  RUNS=runs  DATA_ROOT=dir  STUDY_DB=url"
	@echo "           SEEDS=N (training seeds)  JOBS=N|auto (trainings side by side, each on 1/N of the threads; default auto: 2 on a CPU, 1 per GPU)"

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
	$(PRSR) train --method all --resume --dataset $(DATASET) --profile $(PROFILE) --runs-dir $(RUNS) $(DATA_ARG) $(if $(SEEDS),--seeds $(SEEDS),) $(if $(JOBS),--jobs $(JOBS),)

eval: data
	$(PRSR) eval --dataset $(DATASET) --profile $(PROFILE) --runs-dir $(RUNS) $(DATA_ARG) $(if $(STUDY_DB),--study-db $(STUDY_DB),) $(if $(SEEDS),--seeds $(SEEDS),)

demo: setup data train-all eval

corners: data
	$(PRSR) corners --profile $(PROFILE) --runs-dir $(RUNS)

# The human study: built once from the saved predictions (never overwritten), then served.
study: setup
	test -f $(STUDY_FILE) || $(PRSR) study init --predictions $(RUNS)/$(DATASET)/predictions --db sqlite:///$(STUDY_FILE) --dataset $(DATASET)
	$(PRSR) study serve --db sqlite:///$(STUDY_FILE)

# Fool-rate analysis of STUDY_DB (a SQLAlchemy URL or a SQLite file). Without it: a study built from the
# predictions and filled once with SIMULATED raters (40 per method, 5 % inattentive, 5 % drop-outs);
# everything derived from it says SIMULATED. Built under a temporary name so an interrupted run leaves nothing.
analysis: setup
	@if [ -z "$(STUDY_DB)" ] && [ ! -f "$(SIM_DB)" ]; then \
	  set -e; mkdir -p "$(dir $(SIM_DB))"; rm -f "$(SIM_DB).tmp"; \
	  $(PRSR) study init --predictions "$(RUNS)/$(DATASET)/predictions" --db "$(SIM_DB).tmp" --raters-per-method 44 --seed 0 --dataset $(DATASET); \
	  n=$$($(PY) -c "from study_app.export import study_info; print(40 * len(study_info('$(SIM_DB).tmp')['methods']))"); \
	  $(PRSR) study simulate --db "$(SIM_DB).tmp" --raters $$n --golden-fail-rate 0.05 --abandon-rate 0.05 --seed 0; \
	  mv "$(SIM_DB).tmp" "$(SIM_DB)"; \
	fi
	$(PRSR) analyze --db "$(or $(STUDY_DB),$(SIM_DB))" --out $(RUNS)/$(DATASET)/analysis --notebook

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup
	bash scripts/install-test-deps.sh
	bash scripts/install-data.sh fashion-mnist
	$(VENV)/bin/pytest

# Every benchmark once, each in its short default; the sampler's full paper-size run only with FULL=1
# (the quality search's full run takes hours: `python bench/quality_search.py --full`, docs/quality-search.md).
bench: setup
	for b in bench/*.py; do echo "== $$b"; extra=""; \
	  if [ "$$b" = bench/sampling.py ] || [ "$$b" = bench/sampling_error.py ]; then [ -n "$(FULL)" ] || extra=--quick; fi; \
	  $(PY) $$b $$extra || exit 1; done

clean-venv:
	rm -rf $(VENV)
