"""What the stack sends each function is what its handler's event model reads (kernel/handler_events.py).

Every Lambda Task of the definition: its Payload's keys are the model's fields (for a handler with
actions, the model of the action the Task names), every required field is sent, and the Payload,
its paths resolved against a sample state, parses. And the stack's other senders: the EventBridge
rule of clean_up_ended_run and the schedule of sweep_models.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from labeling_loop.kernel import handler_events
from labeling_loop.kernel.handler_events import BY_HANDLER, HandlerEvent, parse
from lambda_harness import load_event
from pydantic import BaseModel
from sam_translate import ROOT
from test_definition import _lambda_tasks_and_handlers

# The Ground Truth task Lambdas: Ground Truth sends their events (its contract, task_lambdas.py).
NOT_SENT_BY_THE_STACK = {"verification_pre_annotation", "verification_consolidation"}


def _lambda_tasks(
    definition: dict[str, Any], state_machine: dict[str, Any], serverless_functions: dict[str, dict[str, Any]]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(state name, handler folder under functions/, Payload) of every Lambda Task of the definition."""
    return [
        (
            name,
            Path(str(serverless_functions[logical_id]["CodeUri"])).name,
            dict(state["Parameters"]["Payload"]),
        )
        for name, logical_id, state, _ in _lambda_tasks_and_handlers(
            definition, state_machine, serverless_functions
        )
    ]


def _model_for(event_model: HandlerEvent[Any], payload: dict[str, Any]) -> type[BaseModel]:
    if event_model.tag is None:
        return event_model.variants[0]
    sent = payload.get(event_model.tag, event_model.default)
    tags = event_model.tags()
    assert sent in tags, f"{event_model.tag} {sent!r} is not one of {sorted(tags)}"
    return tags[sent]


def _keys(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    """(every key the model reads, the keys it requires), as the payload spells them."""
    fields = {name: field.alias or name for name, field in model.model_fields.items()}
    required = {fields[name] for name, field in model.model_fields.items() if field.is_required()}
    return set(fields.values()), required


# A state as the definition carries it, for resolving the Payloads' paths: the fixtures' blobs.
def _sample_state() -> dict[str, Any]:
    return {
        "config": load_event("list_images")["config"],
        "listing": load_event("plan_review")["listing"],
        "plan": load_event("build_manifest")["plan"],
        "model": load_event("model_control_check")["model"],
        "batch": load_event("detect_labels")["batch"],
        "progress": load_event("detect_labels")["progress"],
        "error": load_event("run_cleanup")["error"],
        "trainingError": load_event("run_cleanup")["error"],
        "modelRelease": {"modelSeconds": 60.0},
        "result": {"counts": {"imagesInManifest": 4}},
        "next": {"training": {"status": "TRAINING_COMPLETED"}},
        "cleanup": {"error": "States.TaskFailed"},
    }


def _resolve(path: str, state: dict[str, Any]) -> Any:
    if path.startswith("$$."):  # the context object: the execution's name and ARN
        return f"sample-{path.removeprefix('$$.').replace('.', '-')}"
    if path == "$":
        return {"incremental": True}  # the execution input, as Validate Input receives it
    value: Any = state
    for part in path.removeprefix("$.").split("."):
        assert part in value, f"no sample for {path!r} (add it to _sample_state)"
        value = value[part]
    return value


def test_every_lambda_task_sends_what_its_handlers_model_reads(
    definition: dict[str, Any], state_machine: dict[str, Any], serverless_functions: dict[str, dict[str, Any]]
) -> None:
    problems = []
    for name, folder, payload in _lambda_tasks(definition, state_machine, serverless_functions):
        assert folder in BY_HANDLER, f"{name}: functions/{folder} has no event model in BY_HANDLER"
        event_model = BY_HANDLER[folder]
        model = _model_for(event_model, payload)
        sent = {key.removesuffix(".$") for key in payload}
        fields, required = _keys(model)
        if sent - fields:
            problems.append(f"{name}: sends {sorted(sent - fields)}, which {model.__name__} does not read")
        if required - sent:
            problems.append(
                f"{name}: does not send {sorted(required - sent)}, which {model.__name__} requires"
            )
    assert not problems, "\n".join(problems)


def test_every_lambda_tasks_payload_parses_with_its_handlers_model(
    definition: dict[str, Any], state_machine: dict[str, Any], serverless_functions: dict[str, dict[str, Any]]
) -> None:
    state = _sample_state()
    for name, folder, payload in _lambda_tasks(definition, state_machine, serverless_functions):
        event = {
            key.removesuffix(".$"): _resolve(value, state) if key.endswith(".$") else value
            for key, value in payload.items()
        }
        parsed = parse(BY_HANDLER[folder], event)
        assert type(parsed) is _model_for(BY_HANDLER[folder], payload), name


def test_every_action_of_a_handler_is_one_the_definition_sends(
    definition: dict[str, Any], state_machine: dict[str, Any], serverless_functions: dict[str, dict[str, Any]]
) -> None:
    # The other direction: a model for an action no Task sends is a step nothing runs.
    sent: dict[str, set[str]] = {}
    for _, folder, payload in _lambda_tasks(definition, state_machine, serverless_functions):
        tag = BY_HANDLER[folder].tag
        if tag is not None:
            sent.setdefault(folder, set()).add(str(payload.get(tag, BY_HANDLER[folder].default)))
    tagged = {handler: set(model.tags()) for handler, model in BY_HANDLER.items() if model.tag is not None}
    assert sent == tagged


def test_every_function_has_an_event_model_and_its_handler_parses_with_it() -> None:
    folders = {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}
    assert set(BY_HANDLER) == folders - NOT_SENT_BY_THE_STACK
    unwired = []
    for folder, event_model in BY_HANDLER.items():
        source = (ROOT / "functions" / folder / "app.py").read_text()
        constant = next(name for name, value in _event_constants().items() if value is event_model)
        if not re.search(rf"\bparse\({constant}, event\)", source):
            unwired.append(folder)
    assert unwired == [], "handlers that do not parse their event with their model"


def _event_constants() -> dict[str, HandlerEvent[Any]]:
    return {name: value for name, value in vars(handler_events).items() if isinstance(value, HandlerEvent)}


def test_the_execution_status_change_rule_sends_what_clean_up_ended_run_reads(
    sam_template: dict[str, Any],
) -> None:
    rule = sam_template["Resources"]["CleanUpEndedRunFunction"]["Properties"]["Events"]["ExecutionEnded"]
    pattern = rule["Properties"]["Pattern"]
    assert rule["Type"] == "EventBridgeRule" and "InputPath" not in rule["Properties"]
    assert "Input" not in rule["Properties"] and "InputTransformer" not in rule["Properties"]
    # GIVEN the event EventBridge delivers for each status the rule matches (the whole event: the
    # rule has no input transformer), as Step Functions documents it
    for status in pattern["detail"]["status"]:
        event = {
            "version": "0",
            "id": "315c1398-40ff-a850-213b-158f73e60175",
            "detail-type": pattern["detail-type"][0],
            "source": pattern["source"][0],
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:states:us-east-1:123456789012:execution:loop:run-1"],
            "detail": {
                "executionArn": "arn:aws:states:us-east-1:123456789012:execution:loop:run-1",
                "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:loop",
                "name": "run-1",
                "status": status,
                "startDate": 1767225600000,
                "stopDate": 1767225660000,
                "input": "{}",
                "output": None,
            },
        }
        # THEN the handler's model reads its ARN and status
        parsed = parse(BY_HANDLER["clean_up_ended_run"], event)
        assert parsed.detail.status == status


def test_the_sweep_schedule_sends_its_default_notification(sam_template: dict[str, Any]) -> None:
    # The schedule has no Input: EventBridge Scheduler sends its default notification, which the
    # sweep's model accepts whatever it holds (it reads nothing from it).
    schedule = sam_template["Resources"]["SweepModelsFunction"]["Properties"]["Events"]["Sweep"]
    assert schedule["Type"] == "ScheduleV2" and "Input" not in schedule["Properties"]
    parse(BY_HANDLER["sweep_models"], {"any": "notification"})
    parse(BY_HANDLER["sweep_models"], {})
