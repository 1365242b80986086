# Security checks. Included by the Makefile (`include mk/checks.mk`); also runs alone:
#   make -f mk/checks.mk checkov
# checkov pins many packages of its own (boto3, networkx, pydantic...): it lives in its own venv.

PYTHON ?= $(shell PYENV_VERSION=3.13.0 pyenv which python 2>/dev/null || command -v python3.13)
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_TRANSLATED := .aws-sam/checkov/template.json

.PHONY: checkov checkov-venv

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	@test -n "$(PYTHON)" || (echo "Python 3.13 not found: install it (pyenv install 3.13.0) or pass PYTHON=..." && exit 1)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q checkov==$(CHECKOV_VERSION)
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

# Two passes in one run: template.yaml as written (checkov reads SAM functions, buckets, tables, log
# groups) and the template aws-sam-translator makes of it (the roles SAM generates from policy
# templates, the state machine's and the schedule's roles, which checkov cannot see in SAM form).
# Suppressions, each with its reason, are in .checkov.yaml.
checkov: checkov-venv  ## checkov over template.yaml and its SAM translation (offline)
	@test -x $(VENV)/bin/python || $(MAKE) venv
	$(VENV)/bin/python tests/contract/sam_translate.py template.yaml $(CHECKOV_TRANSLATED)
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml -f $(CHECKOV_TRANSLATED)
