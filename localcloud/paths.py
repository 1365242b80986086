"""Where the repository is: the local cloud reads template.yaml, functions/ and statemachine/ from
it and keeps Label Studio's virtual environment next to it."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
