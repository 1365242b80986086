"""`--local` verbs: the background cloud starts Label Studio when the run to start is reviewed on a
self-hosted server (the backend says so; no backend name is compared here)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from rich.console import Console

from labeling_ops import local, local_verbs


@pytest.mark.parametrize(
    ("verb", "backend", "starts_label_studio"),
    [
        ("start", "labelstudio", True),
        ("start", "groundtruth", False),
        ("start", None, False),  # the stack's default: its server is not needed
        ("list", "labelstudio", False),  # only a run being started needs it
    ],
)
def test_the_local_cloud_starts_label_studio_for_a_self_hosted_backends_run(
    monkeypatch: pytest.MonkeyPatch, verb: str, backend: str | None, starts_label_studio: bool
) -> None:
    # GIVEN a background cloud already up
    cloud, started = object(), []
    monkeypatch.setattr(local, "up", lambda errors, count: (cloud, False))
    monkeypatch.setattr(local, "labelstudio", lambda at, errors: started.append(at) or {})
    args = argparse.Namespace(verb=verb, input=None, count=3, in_reviewBackend=backend)
    # WHEN a verb acts on it
    found: Any = local_verbs.cloud_for(args, Console(quiet=True))
    # THEN Label Studio is started there only for a run reviewed on a self-hosted server
    assert found is cloud
    assert started == ([cloud] if starts_label_studio else [])
