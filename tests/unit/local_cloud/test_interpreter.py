"""Each compensation in localcloud/engine/interpreter.py, and the before-send hook, on small state machines.

Every test here fails without the compensation it names (checked by switching each one off): the
interpreter is moto's, the definitions are tiny, and what is asserted is what AWS does.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from PIL import Image

from localcloud.engine import hooks, interpreter
from localcloud.engine.cloud import LocalCloud, LocalCloudConfig
from localcloud.services.custom_labels import CustomLabelsConfig

ROLE = "arn:aws:iam::123456789012:role/test-states"
TIME_SCALE = 0.001


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config = LocalCloudConfig(time_scale=TIME_SCALE, rekognition=CustomLabelsConfig(start_latency_s=0.0))
    with LocalCloud(config) as local:
        yield local


def _run(
    cloud: LocalCloud, definition: dict[str, Any], run_input: Any = None, timeout: float = 30
) -> dict[str, Any]:
    """Create the state machine, run it to its end, return describe_execution plus the history."""
    name = f"sm-{time.monotonic_ns()}"
    arn = cloud.sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    execution = cloud.sfn.start_execution(stateMachineArn=arn, name="run", input=json.dumps(run_input or {}))
    deadline = time.monotonic() + timeout
    while True:
        described = cloud.sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            break
        assert time.monotonic() < deadline, "the execution did not end in time"
        time.sleep(0.02)
    history = cloud.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)[
        "events"
    ]
    return {**described, "history": history}


def _entered(result: dict[str, Any]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in result["history"] if "stateEnteredEventDetails" in e
    ]


def _stop_model_task(model_arn: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:rekognition:stopProjectVersion",
        "Parameters": {"ProjectVersionArn": model_arn},
        **extra,
    }


# 1. aws-sdk error names ---------------------------------------------------------------------------


def test_a_rekognition_error_is_caught_by_its_aws_name(cloud: LocalCloud) -> None:
    # GIVEN a stopped model: StopProjectVersion answers ResourceInUseException
    model = cloud.add_model(status="STOPPED")
    definition = {
        "StartAt": "Stop Model",
        "States": {
            "Stop Model": _stop_model_task(
                model,
                Catch=[
                    {
                        "ErrorEquals": ["Rekognition.ResourceInUseException"],
                        "ResultPath": "$.error",
                        "Next": "Caught",
                    }
                ],
                End=True,
            ),
            "Caught": {"Type": "Succeed"},
        },
    }
    # WHEN a Catch names the error as AWS spells it (moto says rekognition.ResourceInUseException)
    result = _run(cloud, definition)
    # THEN the Catch matches
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert _entered(result) == ["Stop Model", "Caught"]
    assert json.loads(result["output"])["error"]["Error"] == "Rekognition.ResourceInUseException"


def test_a_sagemaker_error_is_caught_by_its_aws_name(cloud: LocalCloud) -> None:
    # GIVEN SageMaker answering ResourceInUse (as CreateLabelingJob does for a name already taken)
    hooks.serve(
        "sagemaker", lambda operation, params: hooks.json_error("ResourceInUse", "already exists", 400)
    )
    definition = {
        "StartAt": "Create Labeling Job",
        "States": {
            "Create Labeling Job": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:stopLabelingJob",
                "Parameters": {"LabelingJobName": "lab-run-det-000"},
                "Catch": [
                    {
                        "ErrorEquals": ["SageMaker.ResourceInUseException"],
                        "ResultPath": "$.error",
                        "Next": "Caught",
                    }
                ],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    result = _run(cloud, definition)
    # THEN the definition's Catch (the one Run Labeling Jobs uses) matches
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert _entered(result) == ["Create Labeling Job", "Caught"]


# 2. the scaled clock -------------------------------------------------------------------------------


def test_a_wait_runs_on_the_scaled_clock_and_is_recorded(cloud: LocalCloud) -> None:
    waits_before = len(interpreter.clock.waits)
    slept_before = len(interpreter.clock.real_seconds)
    definition = {
        "StartAt": "Wait A While",
        "States": {"Wait A While": {"Type": "Wait", "Seconds": 100, "End": True}},
    }
    result = _run(cloud, definition)
    assert result["status"] == "SUCCEEDED"
    # The definition's 100 s are recorded, and slept as 100 s x time_scale 0.001 = 0.1 s
    assert interpreter.clock.waits[waits_before:] == [100.0]
    assert interpreter.clock.real_seconds[slept_before:] == [pytest.approx(0.1)]


def test_retry_intervals_run_on_the_scaled_clock_and_are_recorded(cloud: LocalCloud) -> None:
    # GIVEN a task that always fails, retried twice: 3 s then 6 s (no jitter)
    model = cloud.add_model(status="STOPPED")
    intervals_before = len(interpreter.clock.retry_intervals)
    definition = {
        "StartAt": "Stop Model",
        "States": {
            "Stop Model": _stop_model_task(
                model,
                Retry=[
                    {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 2}
                ],
                End=True,
            ),
        },
    }
    slept_before = len(interpreter.clock.real_seconds)
    result = _run(cloud, definition)
    # THEN it fails after three attempts, having asked for 3 s and 6 s, slept as 3 ms and 6 ms
    assert result["status"] == "FAILED"
    assert interpreter.clock.retry_intervals[intervals_before:] == [3.0, 6.0]
    assert interpreter.clock.real_seconds[slept_before:] == [pytest.approx(0.003), pytest.approx(0.006)]
    assert cloud.rekognition.meter(model)["stop_calls"] == 3


# 3. deep item lists per Map worker --------------------------------------------------------------------


def test_map_workers_get_the_recursion_limit_and_stack_they_need(cloud: LocalCloud) -> None:
    # moto's Map worker recurses once per item: one worker over more than ~1,000 items hits Python's
    # default limit and the execution stays RUNNING forever (measured: a Map of 1,100 items with
    # MaxConcurrency 1 never ends without this compensation and succeeds with it, in about 10 s,
    # too slow to run here). The local cloud raises the limit and the stack of the threads that
    # moto starts after it.
    assert sys.getrecursionlimit() >= interpreter.RECURSION_LIMIT
    assert threading.stack_size() >= interpreter.THREAD_STACK_BYTES
    # AND a Map whose one worker runs a few hundred items still ends, with every item
    definition = {
        "StartAt": "Each Item",
        "States": {
            "Each Item": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "Keep", "States": {"Keep": {"Type": "Pass", "End": True}}},
                "ResultSelector": {"count.$": "States.ArrayLength($)"},
                "End": True,
            }
        },
    }
    result = _run(cloud, definition, {"items": list(range(300))}, timeout=60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert json.loads(result["output"]) == {"count": 300}


# 4. state transitions --------------------------------------------------------------------------------


def test_state_transitions_are_counted_including_distributed_map_children(cloud: LocalCloud) -> None:
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Next": "Each Item"},
            "Each Item": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Child",
                    "States": {"Child": {"Type": "Pass", "End": True}},
                },
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    before = interpreter.counters.state_transitions
    result = _run(cloud, definition, {"items": [1, 2, 3]})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    # First, Each Item, three children's Child, Done
    assert interpreter.counters.state_transitions - before == 6
    # the children are not in the parent's history: that is why the interpreter counts them
    assert _entered(result) == ["First", "Each Item", "Done"]


# 5. tolerated failures of a Distributed Map ----------------------------------------------------------


def _map_with_failing_children(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "StartAt": "Each Item",
        "States": {
            "Each Item": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Bad Item?",
                    "States": {
                        "Bad Item?": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.bad", "BooleanEquals": True, "Next": "Item Failed"}],
                            "Default": "Item Done",
                        },
                        "Item Failed": {"Type": "Fail", "Error": "BadItemError", "Cause": "bad item"},
                        "Item Done": {"Type": "Succeed"},
                    },
                },
                "ResultPath": None,
                "Catch": [
                    {
                        "ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
                        "ResultPath": "$.error",
                        "Next": "Map Failed",
                    }
                ],
                "Next": "Map Succeeded",
                **(extra or {}),
            },
            "Map Failed": {"Type": "Succeed"},
            "Map Succeeded": {"Type": "Succeed"},
        },
    }


def test_a_failed_distributed_map_child_fails_the_map(cloud: LocalCloud) -> None:
    # GIVEN a Distributed Map without ToleratedFailure settings (AWS: both default to 0)
    # WHEN one of three children fails
    result = _run(
        cloud, _map_with_failing_children(), {"items": [{"bad": False}, {"bad": True}, {"bad": False}]}
    )
    # THEN the Map fails with States.ExceedToleratedFailureThreshold, which a Catch can handle
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert _entered(result) == ["Each Item", "Map Failed"]
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "States.ExceedToleratedFailureThreshold"
    assert "1 of 3" in error["Cause"]
    assert "MapRunFailed" in [e["type"] for e in result["history"]]


def test_a_distributed_map_whose_children_all_succeed_still_succeeds(cloud: LocalCloud) -> None:
    result = _run(cloud, _map_with_failing_children(), {"items": [{"bad": False}, {"bad": False}]})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert _entered(result) == ["Each Item", "Map Succeeded"]


def test_failures_within_the_tolerated_count_do_not_fail_the_map(cloud: LocalCloud) -> None:
    result = _run(
        cloud,
        _map_with_failing_children({"ToleratedFailureCount": 1}),
        {"items": [{"bad": True}, {"bad": False}, {"bad": False}]},
    )
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert _entered(result) == ["Each Item", "Map Succeeded"]


def test_a_failing_child_stops_its_running_siblings(cloud: LocalCloud) -> None:
    # GIVEN a Distributed Map whose good children wait a long time (100 s scaled; 1 day as defined)
    definition = _map_with_failing_children()
    processor = definition["States"]["Each Item"]["ItemProcessor"]["States"]
    processor["Bad Item?"]["Default"] = "Slow Item"
    processor["Slow Item"] = {"Type": "Wait", "Seconds": 100_000, "Next": "Item Done"}
    # WHEN one child fails
    result = _run(cloud, definition, {"items": [{"bad": False}, {"bad": True}, {"bad": False}]})
    # THEN the Map Run fails at once, as on AWS: the waiting siblings are aborted (or never start),
    # none of them finishes, and the Catch runs (without the compensation the Map waits 100 s and
    # `_run` gives up after 30)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert _entered(result) == ["Each Item", "Map Failed"]
    map_run = cloud.sfn.list_map_runs(executionArn=result["executionArn"])["mapRuns"][0]
    counts = cloud.sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])["itemCounts"]
    assert (counts["failed"], counts["succeeded"]) == (1, 0)


# The before-send hook --------------------------------------------------------------------------------


def _png(size: tuple[int, int] = (128, 96)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_throttled_emulated_call_is_retried_by_the_client(cloud: LocalCloud) -> None:
    # GIVEN a running model whose first DetectCustomLabels call is throttled
    cloud.rekognition.config.throttling_storm = (0, 1)
    model = cloud.add_model(status="RUNNING")
    cloud.s3.create_bucket(Bucket="images")
    cloud.s3.put_object(Bucket="images", Key="a.png", Body=_png())
    client = boto3.client("rekognition", config=Config(retries={"mode": "standard", "max_attempts": 3}))
    # WHEN a client with retries calls it
    response = client.detect_custom_labels(
        ProjectVersionArn=model, Image={"S3Object": {"Bucket": "images", "Name": "a.png"}}, MinConfidence=50
    )
    # THEN botocore's own retry loop ran: the second attempt answered
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    meter = cloud.rekognition.meter(model)
    assert (meter["detect_calls"], meter["throttled_calls"], meter["detect_answered"]) == (2, 1, 1)


def test_a_client_without_retries_sees_the_throttling_error(cloud: LocalCloud) -> None:
    # The same call with retries off fails with the error AWS names: the hook answers with a real
    # HTTP error that botocore parses, not a Python exception.
    cloud.rekognition.config.throttling_storm = (0, 1)
    model = cloud.add_model(status="RUNNING")
    cloud.s3.create_bucket(Bucket="images")
    cloud.s3.put_object(Bucket="images", Key="a.png", Body=_png())
    client = boto3.client("rekognition", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    with pytest.raises(client.exceptions.ThrottlingException):
        client.detect_custom_labels(
            ProjectVersionArn=model, Image={"S3Object": {"Bucket": "images", "Name": "a.png"}}
        )


# DynamoDB writes are atomic, as on AWS (leases and image claims rely on it) ----------------------


def test_concurrent_updates_of_one_item_are_not_lost(cloud: LocalCloud) -> None:
    # moto's backend applies concurrent UpdateItem calls without a lock: an ADD to a set could be
    # lost (measured: 8 of 200 trials of 8 concurrent ADDs). A lost ADD is a lost model lease, and
    # the model would be stopped under a run that still infers.
    cloud.dynamodb.create_table(
        TableName="leases",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    lost = 0
    for trial in range(60):
        key = {"pk": {"S": f"model#{trial}"}}
        barrier = threading.Barrier(8)

        def add(user: int, key: dict[str, Any] = key, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            cloud.dynamodb.update_item(
                TableName="leases",
                Key=key,
                UpdateExpression="ADD #users :me",
                ExpressionAttributeNames={"#users": "users"},
                ExpressionAttributeValues={":me": {"SS": [f"run-{user}"]}},
            )

        threads = [threading.Thread(target=add, args=(user,)) for user in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        users = cloud.dynamodb.get_item(TableName="leases", Key=key)["Item"]["users"]["SS"]
        lost += len(users) != 8
    assert lost == 0, f"{lost} of 60 trials lost an update"


# 9. Payload size in UTF-8 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("characters", "status"), [(100_000, "SUCCEEDED"), (140_000, "FAILED")])
def test_a_payload_is_measured_in_utf8_as_aws_does(cloud: LocalCloud, characters: int, status: str) -> None:
    # GIVEN a state whose output holds non-ASCII text: 100,000 "é" are 200,000 bytes of UTF-8 (AWS's
    # measure, docs/aws-facts.md §4.2), but 600,000 as moto measured them (each one escaped "\u00e9")
    definition = {
        "StartAt": "Labels",
        "States": {
            "Labels": {"Type": "Pass", "Parameters": {"labels.$": "States.StringToJson($.text)"}, "End": True}
        },
    }
    text = json.dumps("é" * characters, ensure_ascii=False)
    result = _run(cloud, definition, {"text": text})
    # THEN it passes under 256 KiB and fails over it, as on AWS
    assert result["status"] == status, result.get("cause")
    if status == "FAILED":
        assert result["error"] == "States.DataLimitExceeded"
