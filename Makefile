# The README's two commands: `make demo` and `make test`. Each installs what it needs from scratch.
PYTHON ?= $(shell PYENV_VERSION=3.13.0 pyenv which python 2>/dev/null || command -v python3.13)
PYTHON_BIN := $(dir $(PYTHON))
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
BACKEND ?= groundtruth
COUNT ?= 200
REGION := us-east-1

.PHONY: venv sam test unit contract e2e lint validate build demo tour diagram bench clean

$(VENV)/.installed: requirements-dev.txt layer/requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || (echo "Python 3.13 not found: install it (pyenv install 3.13.0) or pass PYTHON=..." && exit 1)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	# The project itself, editable: labeling_loop (layer/), localcloud, labeling_ops and bench import by name.
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# SAM CLI pins its own boto3/botocore/pydantic: it lives in its own environment.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --upgrade pip
	$(SAM_VENV)/bin/pip install -q aws-sam-cli==1.170.0
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

test: venv labelstudio-venv chromium lint validate build checkov  ## everything CI runs
	$(VENV)/bin/pytest

unit: venv  ## pure code, single functions and the local cloud's parts (seconds)
	$(VENV)/bin/pytest tests/unit

contract: venv  ## template, definition, code and IAM agree
	$(VENV)/bin/pytest tests/contract

e2e: venv labelstudio-venv chromium  ## whole executions in the local cloud
	$(VENV)/bin/pytest tests/e2e

demo: venv  ## one whole turn of the loop in the local cloud over $(COUNT) synthetic images
	$(if $(filter labelstudio,$(BACKEND)),$(MAKE) labelstudio-venv,)
	$(PY) -m localcloud demo --count $(COUNT) --backend $(BACKEND) --out demo-out

tour: venv  ## every labeling-loop verb once, against the local cloud (no AWS)
	$(VENV)/bin/labeling-loop local

diagram: venv  ## regenerate docs/workflow.md from the state machine definition
	$(PY) -m labeling_ops.diagram

bench: venv  ## benchmarks (not tests); results land in bench/results/
	$(PY) -m bench

clean:
	rm -rf .aws-sam demo-data demo-out .localcloud local-report
