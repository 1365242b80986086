# Label Studio for the local cloud and the labelstudio/browser tests. Included by the Makefile.
# Label Studio lives in its own virtual environment: its Django/boto3 pins would downgrade .venv.

LABEL_STUDIO_VENV ?= .venv-labelstudio

.PHONY: labelstudio-venv chromium

# Idempotent: the script returns at once when the pinned version is already installed.
labelstudio-venv:
	bash localcloud/install_labelstudio.sh $(LABEL_STUDIO_VENV)

# Headless Chromium (Debian's package) for tests/e2e/test_labelstudio_browser.py.
chromium:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: /usr/bin/chromium present"; \
	else apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi
