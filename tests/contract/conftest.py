"""Fixtures of the contract tests: the SAM template (as written and as translated by
aws-sam-translator), the state machine definition, and fake AWS credentials.

Everything here is offline: no credentials are read from the machine, and none are needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_aws import use_fake_aws
from sam_translate import ROOT, TEMPLATE_PATH, load_sam_template, translate


@pytest.fixture(autouse=True)
def aws_credentials(fake_aws_env: pytest.MonkeyPatch) -> None:
    """Fake credentials and us-east-1 for every test, whatever the machine has (tests/conftest.py)."""


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    """template.yaml as written (SAM resources, Globals, local CodeUri/DefinitionUri)."""
    return load_sam_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def translated_template(
    sam_template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The CloudFormation template SAM deploys, computed once per session."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_fake_aws(monkeypatch, tmp_path_factory.mktemp("aws"))
        yield translate(sam_template, ROOT)


@pytest.fixture(scope="session")
def state_machine_logical_id(sam_template: dict[str, Any]) -> str:
    machines = [
        logical_id
        for logical_id, resource in sam_template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    ]
    assert len(machines) == 1, f"expected one state machine in template.yaml, found {machines}"
    return machines[0]


@pytest.fixture(scope="session")
def state_machine(sam_template: dict[str, Any], state_machine_logical_id: str) -> dict[str, Any]:
    return dict(sam_template["Resources"][state_machine_logical_id]["Properties"])


@pytest.fixture(scope="session")
def definition_path(state_machine: dict[str, Any]) -> Path:
    return ROOT / state_machine["DefinitionUri"]


@pytest.fixture(scope="session")
def definition_text(definition_path: Path) -> str:
    return definition_path.read_text()


@pytest.fixture(scope="session")
def definition(definition_text: str) -> dict[str, Any]:
    return dict(json.loads(definition_text))


@pytest.fixture(scope="session")
def serverless_functions(sam_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> properties of every AWS::Serverless::Function in template.yaml."""
    return {
        logical_id: dict(resource.get("Properties", {}))
        for logical_id, resource in sam_template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
