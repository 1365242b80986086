"""The state machine definition agrees with the template, the code and the house rules, and parses
in the interpreter the local cloud runs it with."""

from __future__ import annotations

import inspect
import json
import re
from collections import deque
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.model import ListShape, Shape, StructureShape
from labeling_loop.kernel import errors
from moto import mock_aws
from sam_translate import ROOT

REGION = "us-east-1"
ACCOUNT = "123456789012"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
AWS_SDK = re.compile(
    r"^arn:aws:states:::aws-sdk:(?P<service>[a-z0-9-]+):(?P<action>[a-zA-Z0-9]+)(\.waitForTaskToken)?$"
)
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# Step Functions' own error names (docs/aws-facts.md §4.4); a custom error may not start with `States.`.
RESERVED_STATES_ERRORS = {
    "States.ALL",
    "States.BranchFailed",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.QueryEvaluationError",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
}
# Errors AWS names: service integrations (`<Service>.<Error>`) and the Lambda runtime's own.
AWS_ERROR_PREFIXES = ("Lambda.", "Rekognition.", "SageMaker.", "S3.", "DynamoDB.")
LAMBDA_RUNTIME_ERRORS = {"Runtime.ExitError", "Runtime.Unknown", "Sandbox.Timedout"}
TRANSITION_KEYS = ("Next", "Default")


# Walking the definition ---------------------------------------------------------------------------


def machines(definition: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The top-level machine and every nested one (Map ItemProcessor/Iterator, Parallel branches)."""
    yield where or "(top)", definition
    for name, state in definition.get("States", {}).items():
        nested = [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]
        for index, machine in enumerate(m for m in nested if m):
            label = f"{where}/{name}" + (f"[{index}]" if state.get("Branches") else "")
            yield from machines(machine, label)


def all_states(definition: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for where, machine in machines(definition):
        for name, state in machine.get("States", {}).items():
            yield where, name, state


def tasks(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, state) for _, name, state in all_states(definition) if state.get("Type") == "Task"]


def targets(state: dict[str, Any]) -> list[str]:
    found = [state[key] for key in TRANSITION_KEYS if key in state]
    found += [choice["Next"] for choice in state.get("Choices", []) if "Next" in choice]
    found += [catcher["Next"] for catcher in state.get("Catch", [])]
    return found


def error_lists(state: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for key in ("Retry", "Catch"):
        if key in state:
            yield key, state[key]


def domain_error_classes() -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(errors, inspect.isclass)
        if issubclass(value, Exception) and value.__module__ == errors.__name__
    }


# Form ---------------------------------------------------------------------------------------------


def test_definition_is_jsonpath_with_a_comment(definition: dict[str, Any], definition_text: str) -> None:
    assert definition.get("QueryLanguage") == "JSONPath", "moto cannot run JSONata: keep JSONPath"
    assert str(definition.get("Comment", "")).strip(), "top-level Comment missing"
    overriding = [
        name for _, name, s in all_states(definition) if s.get("QueryLanguage", "JSONPath") != "JSONPath"
    ]
    assert not overriding, f"states switching to another query language: {overriding}"
    assert "{%" not in definition_text, "JSONata expression in a JSONPath definition"


def test_placeholders_and_substitutions_agree(definition_text: str, state_machine: dict[str, Any]) -> None:
    placeholders = set(PLACEHOLDER.findall(definition_text))
    substitutions = set(state_machine.get("DefinitionSubstitutions", {}))
    assert placeholders - substitutions == set(), "placeholders the template does not substitute"
    assert substitutions - placeholders == set(), "substitutions the definition never uses"


def test_state_names(definition: dict[str, Any]) -> None:
    bad = []
    for where, name, state in all_states(definition):
        is_choice = state["Type"] == "Choice"
        if is_choice != name.endswith("?"):
            bad.append(f"{where}: {name!r} ({state['Type']})")
    assert not bad, "Choice states are questions ending in '?', and only they are:\n" + "\n".join(bad)


def test_every_state_is_reachable_and_every_target_exists(definition: dict[str, Any]) -> None:
    problems = []
    for where, machine in machines(definition):
        states = machine.get("States", {})
        if machine.get("StartAt") not in states:
            problems.append(f"{where}: StartAt {machine.get('StartAt')!r} is not a state")
            continue
        for name, state in states.items():
            problems += [f"{where}: {name!r} -> missing {t!r}" for t in targets(state) if t not in states]
            ends = state.get("End") is True or state["Type"] in {"Choice", "Succeed", "Fail"}
            if not ends and "Next" not in state:
                problems.append(f"{where}: {name!r} has neither Next nor End")
        seen, queue = {machine["StartAt"]}, deque([machine["StartAt"]])
        while queue:
            for target in targets(states[queue.popleft()]):
                if target in states and target not in seen:
                    seen.add(target)
                    queue.append(target)
        problems += [f"{where}: {name!r} is unreachable" for name in states if name not in seen]
    assert not problems, "\n".join(problems)


# Tasks --------------------------------------------------------------------------------------------


def test_every_task_has_a_timeout(definition: dict[str, Any]) -> None:
    missing = [
        name for name, s in tasks(definition) if "TimeoutSeconds" not in s and "TimeoutSecondsPath" not in s
    ]
    assert not missing, f"Tasks without TimeoutSeconds: {missing}"


def test_lambda_tasks_use_one_form(definition: dict[str, Any]) -> None:
    other = [
        f"{name}: {s['Resource']}"
        for name, s in tasks(definition)
        if isinstance(s["Resource"], str) and (s["Resource"].startswith(("${", "arn:aws:lambda:")))
    ]
    assert not other, f"Lambda tasks must use {LAMBDA_INVOKE}: {other}"


def test_lambda_tasks_retry_lambda_service_errors(definition: dict[str, Any]) -> None:
    missing = {}
    for name, state in tasks(definition):
        if state["Resource"] != LAMBDA_INVOKE:
            continue
        retried = {
            error
            for retrier in state.get("Retry", [])
            if retrier.get("MaxAttempts", 3) > 0
            for error in retrier["ErrorEquals"]
        }
        if not LAMBDA_SERVICE_ERRORS <= retried:
            missing[name] = sorted(LAMBDA_SERVICE_ERRORS - retried)
    assert not missing, f"Lambda tasks not retrying the Lambda service errors: {missing}"


def _lambda_tasks_and_handlers(
    definition: dict[str, Any], state_machine: dict[str, Any], serverless_functions: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(state name, function logical id, state, handler source) of every Lambda Task."""
    substitutions = state_machine.get("DefinitionSubstitutions", {})
    for name, state in tasks(definition):
        if state["Resource"] != LAMBDA_INVOKE:
            continue
        placeholder = PLACEHOLDER.fullmatch(str(state["Parameters"]["FunctionName"]))
        assert placeholder, f"{name}: FunctionName is not a definition substitution"
        logical_id = substitutions[placeholder.group(1)]["Fn::GetAtt"][0]
        handler = ROOT / serverless_functions[logical_id]["CodeUri"] / "app.py"
        yield name, logical_id, state, handler.read_text()


def test_transient_error_retries_and_the_functions_that_raise_them_agree(
    definition: dict[str, Any], state_machine: dict[str, Any], serverless_functions: dict[str, dict[str, Any]]
) -> None:
    """Both directions. A handler wrapped in `retryable_transient_errors` raises TransientServiceError
    when botocore gave up on a transient AWS error: the Task calling it must retry that name, or one
    throttled call fails the run (issue: five Retry blocks named it, four Tasks whose functions raise
    it did not). And a Task that retries TransientServiceError must call a function that raises it,
    or its Retry is a promise nobody keeps (issue 19: Label Studio's Tasks retried it, its function
    let an S3 or Secrets Manager throttle fail the run)."""
    not_retried, never_raised = [], []
    for name, logical_id, state, source in _lambda_tasks_and_handlers(
        definition, state_machine, serverless_functions
    ):
        raises = "@retryable_transient_errors" in source
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        if raises and "TransientServiceError" not in retried:
            not_retried.append(f"{name} ({logical_id})")
        if "TransientServiceError" in retried and not raises:
            never_raised.append(f"{name} ({logical_id})")
    assert not not_retried, (
        f"Tasks whose function raises TransientServiceError but never retry it: {not_retried}"
    )
    assert not never_raised, (
        f"Tasks retrying TransientServiceError of a function that never raises it: {never_raised}"
    )


# Errors -------------------------------------------------------------------------------------------


def test_no_custom_error_pretends_to_be_a_states_error(definition: dict[str, Any]) -> None:
    bad = []
    for _, name, state in all_states(definition):
        for key, entries in error_lists(state):
            bad += [
                f"{name}.{key}: {error}"
                for entry in entries
                for error in entry["ErrorEquals"]
                if error.startswith("States.") and error not in RESERVED_STATES_ERRORS
            ]
        if state["Type"] == "Fail" and str(state.get("Error", "")).startswith("States."):
            bad.append(f"{name}: Fail Error {state['Error']}")
    assert not bad, f"custom error names starting with States.: {bad}"


def test_custom_error_names_are_domain_exception_classes(definition: dict[str, Any]) -> None:
    classes = domain_error_classes()
    unknown = []
    for _, name, state in all_states(definition):
        for key, entries in error_lists(state):
            for entry in entries:
                for error in entry["ErrorEquals"]:
                    aws_named = (
                        error.startswith(("States.", *AWS_ERROR_PREFIXES)) or error in LAMBDA_RUNTIME_ERRORS
                    )
                    if not aws_named and error not in classes:
                        unknown.append(f"{name}.{key}: {error}")
    assert not unknown, f"ErrorEquals names with no class in labeling_loop.kernel.errors: {unknown}"


def test_states_all_is_alone_and_last(definition: dict[str, Any]) -> None:
    bad = []
    for _, name, state in all_states(definition):
        for key, entries in error_lists(state):
            for index, entry in enumerate(entries):
                if "States.ALL" in entry["ErrorEquals"]:
                    if len(entry["ErrorEquals"]) != 1 or index != len(entries) - 1:
                        bad.append(f"{name}.{key}[{index}]")
    assert not bad, f"States.ALL must be alone in the last retrier/catcher: {bad}"


def test_every_catch_keeps_the_input(definition: dict[str, Any]) -> None:
    bad = [
        f"{name}: Catch {entry['ErrorEquals']} ResultPath={entry.get('ResultPath', '<missing>')!r}"
        for _, name, state in all_states(definition)
        for entry in state.get("Catch", [])
        if "ResultPath" not in entry or entry["ResultPath"] == "$"
    ]
    assert not bad, "Catch needs a ResultPath that keeps the input (e.g. $.error, or null):\n" + "\n".join(
        bad
    )


# aws-sdk tasks against botocore ---------------------------------------------------------------------------


def _check_parameters(shape: Shape, value: Any, where: str) -> list[str]:
    """Static parameter names are members of the shape; required members are present."""
    problems: list[str] = []
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{where}: expected an object for {shape.name}"]
        given = {key.removesuffix(".$"): (key, item) for key, item in value.items()}
        problems += [f"{where}: missing required {m}" for m in shape.required_members if m not in given]
        for member, (key, item) in given.items():
            if member not in shape.members:
                problems.append(f"{where}: {member} is not a member of {shape.name}")
            elif not key.endswith(".$"):
                problems += _check_parameters(shape.members[member], item, f"{where}.{member}")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for index, item in enumerate(value):
            problems += _check_parameters(shape.member, item, f"{where}[{index}]")
    return problems


def aws_sdk_tasks(definition: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for name, state in tasks(definition):
        match = AWS_SDK.match(str(state["Resource"]))
        if match:
            found.append((name, match["service"], match["action"], state.get("Parameters", {})))
    return found


def test_aws_sdk_task_parameters_match_botocore(definition: dict[str, Any]) -> None:
    session = botocore.session.get_session()
    sdk_tasks = aws_sdk_tasks(definition)
    assert sdk_tasks, "expected aws-sdk tasks (Ground Truth labeling jobs)"
    problems = []
    for name, service, action, parameters in sdk_tasks:
        assert action[0].islower(), f"{name}: aws-sdk actions are camelCase ({action})"
        operation = session.get_service_model(service).operation_model(action[0].upper() + action[1:])
        problems += _check_parameters(operation.input_shape, parameters, f"{name} ({service}:{action})")
    assert not problems, "\n".join(problems)


# The interpreter ----------------------------------------------------------------------------------


def _dummy_substitution(key: str) -> str:
    if key.endswith("FunctionArn"):
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:contract-{key.removesuffix('Arn')}"
    if key.endswith("RoleArn"):
        return f"arn:aws:iam::{ACCOUNT}:role/contract-{key.removesuffix('Arn')}"
    if key.endswith("BucketName"):
        return "contract-bucket"
    return f"contract-{key.lower()}"


def test_definition_parses_in_the_interpreter(definition_text: str, state_machine: dict[str, Any]) -> None:
    substituted = PLACEHOLDER.sub(lambda m: _dummy_substitution(m.group(1)), definition_text)
    json.loads(substituted)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name="contract-labeling-loop",
            definition=substituted,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/contract-state-machine",
            type=str(state_machine.get("Type", "STANDARD")),
        )["stateMachineArn"]
        assert sfn.describe_state_machine(stateMachineArn=arn)["definition"] == substituted


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"States": {"Only": {"Type": "Nonsense"}}}, id="bad-type"),
        pytest.param({"States": {"Only": {"Type": "Task", "End": True}}}, id="task-without-resource"),
    ],
)
def test_the_interpreter_check_has_teeth(broken: dict[str, Any]) -> None:
    """The parse check above rejects broken definitions, so its passing means something. (It does
    not check StartAt or Next targets: the reachability test does.)"""
    document = {"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}, **broken}
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        with pytest.raises(ClientError, match=r"ASLParserException|No Resource"):
            sfn.create_state_machine(
                name="contract-broken",
                definition=json.dumps(document),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/x",
            )
