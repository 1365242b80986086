#!/usr/bin/env bash
# Create .venv-labelstudio with a pinned Label Studio. It lives in its own virtual environment
# because label-studio pins Django, boto3 and friends to versions that would downgrade the test
# environment (.venv). Idempotent: does nothing when the pinned version is already installed.
#
# Usage: localcloud/install_labelstudio.sh [VENV_DIR]   (default: .venv-labelstudio in the repo root)
set -euo pipefail

LABEL_STUDIO_VERSION="1.23.2"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${repo_root}/.venv-labelstudio}"

# Python 3.13 as the product's Lambdas; pyenv machines may not put python3.13 on PATH.
python="${PYTHON:-}"
if [[ -z "${python}" ]]; then
  for candidate in python3.13 "${HOME}/.pyenv/versions/3.13.0/bin/python3.13" python3; do
    if command -v "${candidate}" >/dev/null 2>&1 && "${candidate}" -c 'import sys' >/dev/null 2>&1; then
      python="${candidate}"
      break
    fi
  done
fi
if [[ -z "${python}" ]]; then
  echo "install_labelstudio: no python3.13 found (set PYTHON=...)" >&2
  exit 1
fi

if [[ -x "${venv}/bin/label-studio" ]] \
  && "${venv}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('label-studio') != '${LABEL_STUDIO_VERSION}')" 2>/dev/null; then
  echo "install_labelstudio: label-studio ${LABEL_STUDIO_VERSION} already in ${venv}"
  exit 0
fi

echo "install_labelstudio: installing label-studio ${LABEL_STUDIO_VERSION} into ${venv} (about a minute)"
"${python}" -m venv "${venv}"
"${venv}/bin/pip" install --quiet --upgrade pip
"${venv}/bin/pip" install --quiet "label-studio==${LABEL_STUDIO_VERSION}"
echo "install_labelstudio: installed label-studio ${LABEL_STUDIO_VERSION} in ${venv}"
