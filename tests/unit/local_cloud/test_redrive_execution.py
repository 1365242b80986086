"""RedriveExecution in the local cloud (localcloud/engine/redrive.py) on tiny state machines, against
what AWS documents (docs/aws-facts.md §4.15): which executions can be redriven, from which state, and
what a Distributed Map reruns."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.engine import executions
from localcloud.engine.cloud import LocalCloud, LocalCloudConfig
from localcloud.engine.lambda_runtime import FunctionSpec

ROLE = "arn:aws:iam::123456789012:role/test-states"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with LocalCloud(LocalCloudConfig(time_scale=0.001)) as local:
        yield local


@pytest.fixture
def announced(cloud: LocalCloud) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    executions.ends.listeners.append(seen.append)
    yield seen
    executions.ends.listeners.remove(seen.append)


@pytest.fixture
def item_function(cloud: LocalCloud, tmp_path: Path) -> Iterator[FunctionSpec]:
    """A function that records each call's `item` and, while `hold` exists, holds the calls whose
    item is `slow` (the test can stop the execution while it is in flight)."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(
        textwrap.dedent(
            f"""
            import json, time
            from pathlib import Path

            FOLDER = Path({str(tmp_path)!r})

            def lambda_handler(event, context):
                with (FOLDER / "calls").open("a") as calls:
                    calls.write(json.dumps(event["item"]) + "\\n")
                while event.get("slow") and (FOLDER / "hold").exists():
                    (FOLDER / "held").touch()
                    time.sleep(0.01)
                return {{"done": event["item"]}}
            """
        )
    )
    spec = FunctionSpec("Item", "item", "arn:aws:lambda:us-east-1:123456789012:function:item",
                        code, "app.lambda_handler", {}, 60, 128)  # fmt: skip
    cloud.runtime.register(spec)
    (tmp_path / "hold").touch()
    yield spec
    (tmp_path / "hold").unlink(missing_ok=True)  # no call is left held after the test


def _task(spec: FunctionSpec, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": spec.arn, "Payload.$": "$"},
        "ResultSelector": {"done.$": "$.Payload.done"},
        **extra,
    }


def _start(cloud: LocalCloud, definition: dict[str, Any], run_input: Any) -> str:
    arn = cloud.sfn.create_state_machine(
        name=f"sm-{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return str(
        cloud.sfn.start_execution(stateMachineArn=arn, name="run", input=json.dumps(run_input))[
            "executionArn"
        ]
    )


def _until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _ended(cloud: LocalCloud, arn: str) -> dict[str, Any]:
    _until(lambda: cloud.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING")
    assert executions.ends.wait_until_none_running(10)
    return dict(cloud.sfn.describe_execution(executionArn=arn))


def _calls(tmp_path: Path) -> list[Any]:
    path = tmp_path / "calls"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_stopped_execution_continues_at_the_state_that_did_not_finish(
    cloud: LocalCloud, item_function: FunctionSpec, tmp_path: Path, announced: list[dict[str, Any]]
) -> None:
    definition = {
        "StartAt": "First",
        "States": {
            "First": {
                **_task(
                    item_function,
                    Parameters={"FunctionName": item_function.arn, "Payload": {"item": "first"}},
                ),
                "ResultPath": "$.first",
                "Next": "Slow",
            },
            "Slow": {**_task(item_function), "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    # GIVEN an execution a person stopped while its second state was in flight
    arn = _start(cloud, definition, {"item": "second", "slow": True})
    _until(lambda: (tmp_path / "held").exists())
    cloud.stop(arn)
    (tmp_path / "hold").unlink()
    assert _ended(cloud, arn)["status"] == "ABORTED"
    # WHEN it is redriven
    cloud.redrive(arn)
    described = _ended(cloud, arn)
    # THEN it ran again from the unsuccessful state only, with that state's input, and succeeded
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"]) == {"done": "second"}
    assert _calls(tmp_path) == ["first", "second", "second"]
    history = cloud.history(arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["First", "Slow", "Slow", "Done"]
    types = [e["type"] for e in history]
    assert types.count("ExecutionRedriven") == 1 and types.index("ExecutionRedriven") > types.index(
        "ExecutionAborted"
    )
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    assert described["redriveCount"] == 1
    # AND each end was announced (the execution-ended rule sees the second one too)
    assert [(d["executionArn"], d["status"]) for d in announced] == [(arn, "ABORTED"), (arn, "SUCCEEDED")]


def test_only_unsuccessful_executions_can_be_redriven(
    cloud: LocalCloud, item_function: FunctionSpec, tmp_path: Path
) -> None:
    passing = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    succeeded = _start(cloud, passing, {})
    _ended(cloud, succeeded)
    with pytest.raises(ClientError) as refused:
        cloud.redrive(succeeded)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    running = _start(cloud, {"StartAt": "Slow", "States": {"Slow": {**_task(item_function), "End": True}}},
                     {"item": 1, "slow": True})  # fmt: skip
    with pytest.raises(ClientError) as refused:
        cloud.redrive(running)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    cloud.stop(running)
    (tmp_path / "hold").unlink()
    with pytest.raises(ClientError) as missing:
        cloud.redrive(running.replace(":run", ":nobody"))
    assert missing.value.response["Error"]["Code"] == "ExecutionDoesNotExist"


def test_a_redriven_distributed_map_reruns_only_the_children_that_did_not_succeed(
    cloud: LocalCloud, item_function: FunctionSpec, tmp_path: Path
) -> None:
    definition = {
        "StartAt": "Each Item",
        "States": {
            "Each Item": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": {**_task(item_function), "End": True}},
                },
                "End": True,
            }
        },
    }
    items = [{"item": n, "slow": n == 3} for n in range(4)]
    # GIVEN a Map Run stopped with three children done and the fourth in flight
    arn = _start(cloud, definition, {"items": items})
    _until(lambda: (tmp_path / "held").exists() and sorted(_calls(tmp_path)) == [0, 1, 2, 3])
    cloud.stop(arn)
    (tmp_path / "hold").unlink()
    assert _ended(cloud, arn)["status"] == "ABORTED"
    # WHEN the execution is redriven
    cloud.redrive(arn)
    described = _ended(cloud, arn)
    # THEN only the unfinished child ran again, and the Map's output has every child's result in order
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert sorted(_calls(tmp_path)) == [0, 1, 2, 3, 3]
    assert json.loads(described["output"]) == [{"done": n} for n in range(4)]
