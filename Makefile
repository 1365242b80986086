# The README's two commands: `make demo` and `make test`. Each installs what it needs from scratch.
SHELL := /bin/bash
PYTHON ?= $(shell PYENV_VERSION=3.13.0 pyenv which python 2>/dev/null || command -v python3.13)
PYTHON_BIN := $(dir $(PYTHON))
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
NOTEBOOK_VENV := .venv-notebook-check
BACKEND ?= groundtruth
COUNT ?= 200
REGION := us-east-1
# pip's output, condensed to a moving count of packages (PIP_VERBOSE=1: pip's own lines).
PIP_PROGRESS = $(if $(PIP_VERBOSE),cat,$(PYTHON) mk/pip_progress.py)
# setuptools explains editable installs in ten lines each time; nothing to act on.
EDITABLE_QUIET := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: venv sam test unit contract e2e lint validate build demo tour review notebook-fresh screenshots diagram bench clean

$(VENV)/.installed: requirements-dev.txt layer/requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || (echo "Python 3.13 not found: install it (pyenv install 3.13.0) or pass PYTHON=..." && exit 1)
	@echo "==> $(VENV): the project and its test tools (the first time: about 2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	set -o pipefail; $(VENV)/bin/pip install -r requirements-dev.txt 2>&1 | $(PIP_PROGRESS) "$(VENV)"
	# The project itself, editable: labeling_loop (layer/), localcloud, labeling_ops and bench import by name.
	$(EDITABLE_QUIET) $(VENV)/bin/pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# SAM CLI pins its own boto3/botocore/pydantic: it lives in its own environment.
$(SAM_VENV)/.installed:
	@echo "==> $(SAM_VENV): the AWS SAM CLI (the first time: about a minute)"
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --upgrade pip
	set -o pipefail; $(SAM_VENV)/bin/pip install aws-sam-cli==1.170.0 2>&1 | $(PIP_PROGRESS) "$(SAM_VENV)"
	touch $@

sam: $(SAM_VENV)/.installed

include mk/labelstudio.mk
include mk/checks.mk

validate: venv sam  ## sam validate --lint and cfn-lint over template.yaml (offline)
	$(SAM_VENV)/bin/sam validate --lint --region $(REGION) --template template.yaml
	$(VENV)/bin/cfn-lint template.yaml

build: sam  ## sam build, offline (python3.13 on PATH, no container)
	PATH="$(PYTHON_BIN):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --template template.yaml --build-dir .aws-sam/build

lint: venv  ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check layer functions localcloud labeling_ops tests bench
	$(VENV)/bin/ruff format --check layer functions localcloud labeling_ops tests bench
	$(VENV)/bin/mypy

test: venv labelstudio-venv chromium lint validate build checkov notebook-fresh  ## everything CI runs
	$(VENV)/bin/pytest

unit: venv  ## pure code, single functions and the local cloud's parts (seconds)
	$(VENV)/bin/pytest tests/unit

contract: venv  ## template, definition, code and IAM agree
	$(VENV)/bin/pytest tests/contract

e2e: venv labelstudio-venv chromium  ## whole executions in the local cloud
	$(VENV)/bin/pytest tests/e2e

demo: venv  ## one whole turn of the loop in the local cloud over $(COUNT) synthetic images
	$(if $(filter labelstudio,$(BACKEND)),$(MAKE) labelstudio-venv,)
	$(PY) -m localcloud demo --count $(COUNT) --backend $(BACKEND) --out demo-out/$(BACKEND)

tour: venv  ## every labeling-loop verb once, against the local cloud (no AWS)
	$(VENV)/bin/labeling-loop local tour

review: venv labelstudio-venv  ## a local run you review yourself in Label Studio, in your browser
	$(VENV)/bin/labeling-loop local review

# The README's notebook path, from scratch: a new virtual environment with nothing but
# `pip install -e '.[notebook]'` executes the example notebook (mk/run_notebook.py checks its outputs).
notebook-fresh:  ## the notebook extra alone, in a fresh venv, runs notebooks/labeling_loop.ipynb
	@test -n "$(PYTHON)" || (echo "Python 3.13 not found: install it (pyenv install 3.13.0) or pass PYTHON=..." && exit 1)
	@echo "==> $(NOTEBOOK_VENV): a fresh venv with only the notebook extra (about a minute)"
	rm -rf $(NOTEBOOK_VENV) .localcloud/notebook-fresh
	$(PYTHON) -m venv $(NOTEBOOK_VENV)
	$(NOTEBOOK_VENV)/bin/pip install -q --upgrade pip
	set -o pipefail; $(EDITABLE_QUIET) $(NOTEBOOK_VENV)/bin/pip install -e '.[notebook]' 2>&1 | $(PIP_PROGRESS) "$(NOTEBOOK_VENV)"
	$(NOTEBOOK_VENV)/bin/python mk/run_notebook.py notebooks/labeling_loop.ipynb .localcloud/notebook-fresh

screenshots: venv chromium  ## retake the README's pictures of the command and of a report chart (docs/images/*.png)
	SCREENSHOTS_DIR=docs/images $(VENV)/bin/pytest -q tests/e2e/test_screenshots.py \
		"tests/e2e/test_decisions.py::test_the_reports_chart_the_thresholds_they_recommend_and_the_audit_that_let_them_ship"

diagram: venv  ## regenerate docs/workflow.md from the state machine definition
	$(PY) -m labeling_ops.diagram

bench: venv  ## benchmarks (not tests); results land in bench/results/
	$(PY) -m bench

clean:
	-test -x $(VENV)/bin/labeling-loop && $(VENV)/bin/labeling-loop local down
	rm -rf .aws-sam demo-data demo-out .localcloud local-report review-out $(NOTEBOOK_VENV)
