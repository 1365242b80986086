"""Compensation 6 of localcloud/engine/interpreter.py: an unreadable Distributed Map item list fails the
Map with the retryable `States.ItemReaderFailed`, as on AWS (moto lets the S3 error escape as
`States.Runtime`, which no Retry matches). Fails without the compensation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from localcloud.engine import faults, hooks
from localcloud.engine.cloud import LocalCloud, LocalCloudConfig

ROLE = "arn:aws:iam::123456789012:role/test-states"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with LocalCloud(LocalCloudConfig(time_scale=0.001)) as local:
        yield local


def _map_reading_items(retry: bool) -> dict:
    state = {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "items", "Key": "items.json"},
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Echo",
            "States": {"Echo": {"Type": "Pass", "End": True}},
        },
        "End": True,
    }
    if retry:
        state["Retry"] = [
            {"ErrorEquals": ["States.ItemReaderFailed"], "IntervalSeconds": 1, "MaxAttempts": 2}
        ]
    return {"StartAt": "Read Items", "States": {"Read Items": state}}


def _run(cloud: LocalCloud, definition: dict) -> dict:
    arn = cloud.sfn.create_state_machine(
        name=f"sm-{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    execution = cloud.sfn.start_execution(stateMachineArn=arn, name="run", input="{}")
    deadline = time.monotonic() + 30
    while (described := cloud.sfn.describe_execution(executionArn=execution["executionArn"]))[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return described


def test_an_unreadable_item_list_fails_with_states_item_reader_failed(cloud: LocalCloud) -> None:
    # GIVEN an item list whose first read answers 503 SlowDown
    cloud.s3.create_bucket(Bucket="items")
    cloud.s3.put_object(Bucket="items", Key="items.json", Body=b"[1, 2, 3]")
    hooks.intercept("s3", faults.S3FaultInjector({"GetObject": 1}))
    # WHEN a Map without a Retry reads it, THEN it fails with the name AWS gives
    failed = _run(cloud, _map_reading_items(retry=False))
    assert failed["status"] == "FAILED"
    assert failed["error"] == "States.ItemReaderFailed"
    assert "SlowDown" in failed["cause"]


def test_a_retry_on_item_reader_failed_reads_the_list_again(cloud: LocalCloud) -> None:
    cloud.s3.create_bucket(Bucket="items")
    cloud.s3.put_object(Bucket="items", Key="items.json", Body=b"[1, 2, 3]")
    hooks.intercept("s3", faults.S3FaultInjector({"GetObject": 1}))
    succeeded = _run(cloud, _map_reading_items(retry=True))
    assert succeeded["status"] == "SUCCEEDED", succeeded.get("cause")
    assert json.loads(succeeded["output"]) == [1, 2, 3]
