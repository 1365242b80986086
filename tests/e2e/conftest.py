"""Whole executions in the local cloud. Each test deploys a fresh in-process cloud (moto state is
reset), so tests never see each other's runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localcloud.data.dataset import generate


@pytest.fixture(autouse=True)
def _no_machine_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # The local cloud sets fake credentials itself; make sure nothing from the machine leaks in.
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def detection_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("detection")
    manifest = generate(folder, 30, task="detection", seed=11, exif_fraction=0.1)
    return folder, manifest


@pytest.fixture(scope="session")
def classification_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("classification")
    manifest = generate(folder, 20, task="classification", seed=5)
    return folder, manifest


def truth_by_name(manifest: Path) -> dict[str, dict[str, Any]]:
    """Truth lines keyed by the image's path relative to the dataset folder."""
    lines = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return {line["source-ref"]: line for line in lines}
