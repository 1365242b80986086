"""Translate template.yaml in process with aws-sam-translator, as `sam deploy` would (offline).

Used by the contract tests (through conftest) and by `make checkov`, which scans the translated
template too: checkov reads the SAM template's functions and buckets, but not the roles SAM
generates (policy templates, state machine and schedule roles).

    python tests/contract/sam_translate.py [template.yaml] [out.json]
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
# CONTRACT_TEMPLATE lets the suite check a candidate template before it replaces template.yaml
# (paths inside it stay relative to the repository root).
TEMPLATE_PATH = Path(os.environ.get("CONTRACT_TEMPLATE") or ROOT / "template.yaml")


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only for policy names it must resolve;
    offline there are none to ask (the template names managed policies by ARN, if at all)."""

    def load(self) -> dict[str, str]:
        return {}


def load_sam_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return dict(yaml_parse(path.read_text()))


def prepare(document: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """A copy whose local artifact paths the translator accepts: code and layer paths become
    s3:// URIs (as `sam package` would make them) and the definition file is inlined."""
    prepared = copy.deepcopy(document)
    for logical_id, resource in prepared.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = f"s3://contract-artifacts/{logical_id}.zip"
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(properties.get("ContentUri"), str):
            properties["ContentUri"] = f"s3://contract-artifacts/{logical_id}.zip"
        elif kind == "AWS::Serverless::StateMachine" and isinstance(properties.get("DefinitionUri"), str):
            definition_path = root / properties.pop("DefinitionUri")
            properties["Definition"] = json.loads(definition_path.read_text())
    return prepared


def translate(document: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy. Needs AWS_DEFAULT_REGION in the environment."""
    if not os.environ.get("AWS_DEFAULT_REGION"):
        raise RuntimeError("aws-sam-translator needs AWS_DEFAULT_REGION (any region; us-east-1 here)")
    return dict(transform(prepare(document, root), {}, _NoManagedPolicies()))


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else TEMPLATE_PATH
    target = Path(argv[2]) if len(argv) > 2 else None
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translated = translate(load_sam_template(source), ROOT)
    text = json.dumps(translated, indent=2, sort_keys=False)
    if target is None:
        print(text)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
