"""The stack as `sam deploy` would configure it, read from template.yaml: the environment of the
functions and what ValidateInput makes of it. Tests build their settings here instead of keeping a
copy of the template's defaults that drifts (pytest's `pythonpath` puts tests/ on the import path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labeling_loop.kernel.run_config import state_payload
from labeling_loop.kernel.run_input import validate_input
from labeling_loop.kernel.settings import StackSettings, load

from localcloud.engine.template import Template

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"
STATE_MACHINE = "labeling-loop-labeling-loop"  # ${AWS::StackName}-labeling-loop


def deployed_template(
    parameters: dict[str, str], *, table: str = "labeling-loop-RunStateTable-TEST"
) -> Template:
    """template.yaml with the template's defaults and `parameters` (which must name the buckets),
    resolvable as CloudFormation would resolve it."""
    template = Template.load(
        REPO / "template.yaml",
        parameters,
        {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": "labeling-loop",
            "AWS::Partition": "aws",
        },
    )
    template.physical_ids["RunStateTable"] = table
    return template


def function_environment(
    function: str, parameters: dict[str, str], *, table: str = "labeling-loop-RunStateTable-TEST"
) -> dict[str, str]:
    """A function's environment (Globals plus its own variables) as CloudFormation gives it, for a
    stack deployed with the template's defaults and `parameters` (which must name the buckets)."""
    template = deployed_template(parameters, table=table)
    environments = [
        template.globals_function()["Environment"],
        template.resources[function]["Properties"].get("Environment", {"Variables": {}}),
    ]
    return {
        name: str(value)
        for environment in environments
        for name, value in template.resolve(environment)["Variables"].items()
    }


def stack_settings(parameters: dict[str, str]) -> StackSettings:
    """What ValidateInput reads for such a stack."""
    return load(
        StackSettings, {"AWS_REGION": REGION, **function_environment("ValidateInputFunction", parameters)}
    )


def execution_arn(name: str) -> str:
    """The ARN Step Functions gives an execution of the stack's state machine with this name."""
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE}:{name}"


def run_state(
    raw: dict[str, Any], parameters: dict[str, str], execution_name: str = "run-1"
) -> dict[str, Any]:
    """The state payload (`$.config`) the first state makes of the input `raw` on such a stack."""
    config = validate_input(
        raw,
        execution_name=execution_name,
        execution_arn=execution_arn(execution_name),
        stack=stack_settings(parameters),
    )
    return state_payload(config)
