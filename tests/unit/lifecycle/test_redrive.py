"""A redriven execution takes back what its cleanup gave back (labeling_loop.lifecycle.redrive): moto S3 and
DynamoDB, the fake Custom Labels and Step Functions behind real clients."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from fixtures_aws import (
    IMAGES_BUCKET,
    MODEL_ARN,
    REGION,
    FakeCustomLabels,
    FakeExecutions,
    make_config,
    write_jsonl,
)
from labeling_loop.inference import claims, model_control, model_lease
from labeling_loop.kernel.errors import ModelStartFailedError, ModelStartingError, ModelStartTimeoutError
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.kernel.run_input import start_run
from labeling_loop.lifecycle import cleanup, redrive, run_records
from labeling_loop.lifecycle.services import Services

NOW = 1_760_000_000.0
IMAGES = [f"s3://{IMAGES_BUCKET}/photos/{n}.jpg" for n in ("a", "b", "c")]


@pytest.fixture
def model(aws: SimpleNamespace) -> FakeCustomLabels:
    return FakeCustomLabels().attach(boto3.client("rekognition", region_name=REGION))


@pytest.fixture
def executions(aws: SimpleNamespace) -> FakeExecutions:
    return FakeExecutions().attach(boto3.client("stepfunctions", region_name=REGION))


@pytest.fixture
def services(aws: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions) -> Services:
    return Services(model.client, aws.dynamodb, aws.table, executions.client)


def aborted_and_cleaned_up(
    aws: SimpleNamespace,
    services: Services,
    model: FakeCustomLabels,
    executions: FakeExecutions,
) -> RunConfig:
    """An incremental run that claimed its images, started the model and was stopped during
    inference; the execution-ended cleanup gave everything back (model stopped)."""
    config = make_config("run-1", incremental=True)
    start_run(aws.s3, aws.dynamodb, aws.table, config)
    write_jsonl(aws.s3, config.layout().inventory, [{"source-ref": ref} for ref in IMAGES])
    for ref in IMAGES:
        assert claims.claim(aws.dynamodb, aws.table, ref, config.runId, int(NOW), int(NOW) + 3600)
    model_control.acquire(services, config, NOW, len(IMAGES))
    model.status = "RUNNING"
    executions.end(config.executionArn, "ABORTED")
    sagemaker = boto3.client("sagemaker", region_name=REGION)  # the run had no labeling job yet
    result = cleanup.clean_up_ended_execution(services, aws.s3, sagemaker, config.executionArn, "ABORTED")
    assert result["cleanedUp"] and result["modelStopped"] and result["claimsReleased"] == 3
    model.status = "STOPPED"
    return config


def claim_owner(aws: SimpleNamespace, ref: str) -> Any:
    item = aws.dynamodb.get_item(TableName=aws.table, Key={"pk": {"S": f"image#{ref}"}}).get("Item")
    return item and item["runId"]["S"]


def test_a_run_never_cleaned_up_has_nothing_to_take_back(aws: SimpleNamespace, services: Services) -> None:
    config = make_config("run-1")
    start_run(aws.s3, aws.dynamodb, aws.table, config)
    assert redrive.take_back(services, aws.s3, config, NOW) == {"resumed": False}
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN).users == frozenset()


def test_a_redriven_run_takes_back_its_record_lease_and_claims(
    aws: SimpleNamespace,
    services: Services,
    model: FakeCustomLabels,
    executions: FakeExecutions,
) -> None:
    # GIVEN a run cleaned up after an abort, and another run that claimed one of its images since
    config = aborted_and_cleaned_up(aws, services, model, executions)
    assert claims.claim(aws.dynamodb, aws.table, IMAGES[0], "other-run", int(NOW), int(NOW) + 3600)
    # WHEN the execution is redriven and its first state needing the model takes the run back
    executions.ended.pop(config.executionArn)
    taken = redrive.take_back(services, aws.s3, config, NOW + 600)
    # THEN it is a registered, active run again, holding its lease and the claims still free
    assert taken == {"resumed": True, "claimsLost": 1}
    record = run_records.get(aws.dynamodb, aws.table, config.executionArn)
    assert record is not None and (record.status, record.resumed_at) == ("active", int(NOW + 600))
    assert run_records.active(aws.dynamodb, aws.table) == [config.executionArn]
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN).users == frozenset({config.executionArn})
    assert [claim_owner(aws, ref) for ref in IMAGES] == ["other-run", config.runId, config.runId]
    # AND a second caller (another batch, a retry) finds it done
    assert redrive.take_back(services, aws.s3, config, NOW + 601) == {"resumed": False}
    # AND the sweep does not stop the model it will start under it
    model_control.start(services, config)
    model.status = "RUNNING"
    assert cleanup.sweep(services, aws.s3, None)["modelsStopped"] == []


def test_a_batch_of_a_redriven_run_restarts_the_model_its_cleanup_stopped(
    aws: SimpleNamespace,
    services: Services,
    model: FakeCustomLabels,
    executions: FakeExecutions,
) -> None:
    config = aborted_and_cleaned_up(aws, services, model, executions)
    executions.ended.pop(config.executionArn)
    # WHEN a redriven batch finds the model not running
    with pytest.raises(ModelStartingError, match="STARTING"):
        redrive.model_for_resumed_batch(services, aws.s3, config, NOW + 600)
    # THEN it started it with the run's units, the stop duty recorded for the run, which holds it
    assert model.operations("StartProjectVersion")[-1] == {
        "ProjectVersionArn": MODEL_ARN,
        "MinInferenceUnits": 1,
    }
    lease = model_lease.read(aws.dynamodb, aws.table, MODEL_ARN)
    assert (lease.users, lease.started_by) == (frozenset({config.executionArn}), config.executionArn)
    # AND the other batches (and the retries) wait without starting it again
    with pytest.raises(ModelStartingError):
        redrive.model_for_resumed_batch(services, aws.s3, config, NOW + 660)
    assert len(model.operations("StartProjectVersion")) == 2  # the first run's start, and this one
    # AND past the run's start deadline, counted from the resume, it gives up clearly
    late = NOW + 600 + config.modelStartTimeoutMinutes * 60 + 1
    with pytest.raises(ModelStartTimeoutError, match="after the run was redriven"):
        redrive.model_for_resumed_batch(services, aws.s3, config, late)
    model.status = "FAILED"
    with pytest.raises(ModelStartFailedError):
        redrive.model_for_resumed_batch(services, aws.s3, config, NOW + 700)


def test_a_model_stopped_under_a_run_never_redriven_is_not_restarted(
    aws: SimpleNamespace, services: Services, model: FakeCustomLabels
) -> None:
    # GIVEN a live run whose model someone stopped by hand during inference
    config = make_config("run-1")
    start_run(aws.s3, aws.dynamodb, aws.table, config)
    model_control.acquire(services, config, NOW, 3)
    model.status = "STOPPED"
    # WHEN a batch finds it not running: nothing is started, the batch fails as before
    assert redrive.model_for_resumed_batch(services, aws.s3, config, NOW + 60) is None
    assert len(model.operations("StartProjectVersion")) == 1


def test_a_lambda_still_in_flight_for_the_ended_execution_takes_nothing_back(
    aws: SimpleNamespace,
    services: Services,
    model: FakeCustomLabels,
    executions: FakeExecutions,
) -> None:
    # GIVEN a cleaned-up run whose execution has ended (not redriven), and one of its batches that
    # was still running when it was stopped and now finds the model stopped
    config = aborted_and_cleaned_up(aws, services, model, executions)
    # WHEN that batch asks for the model
    assert redrive.model_for_resumed_batch(services, aws.s3, config, NOW + 30) is None
    # THEN nothing is taken back and nothing started: the run stays cleaned up
    assert redrive.take_back(services, aws.s3, config, NOW + 30) == {"resumed": False}
    assert run_records.active(aws.dynamodb, aws.table) == []
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN).users == frozenset()
    assert len(model.operations("StartProjectVersion")) == 1
