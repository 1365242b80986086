"""The two ends of a run: the failure path (cleanup) and the last step of a successful run (the
manifest built, the image claims settled).

moto S3 and DynamoDB; the model through the fake Custom Labels service behind a real client."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from fixtures_aws import (
    IMAGES_BUCKET,
    MODEL_ARN,
    OUTPUT_BUCKET,
    REGION,
    FakeCustomLabels,
    FakeExecutions,
    FakeLabelingJobs,
    make_config,
    put_object,
    read_json,
    read_jsonl,
    write_jsonl,
)
from labeling_loop.finishing import finish
from labeling_loop.finishing.report.publish import run_result
from labeling_loop.finishing.settings import FinishSettings, RunTotals
from labeling_loop.inference import claims, model_control, model_lease
from labeling_loop.inference.listing import ListingSettings, list_images
from labeling_loop.kernel.deferral import defer_record
from labeling_loop.kernel.errors import ModelTransitionError
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.lifecycle import cleanup, run_records
from labeling_loop.lifecycle.cleanup import failure_name
from labeling_loop.lifecycle.services import Services
from labeling_loop.review.selection import PlanSummary

NOW = 1_760_000_000
FINISHED_AT = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def ref(name: str) -> str:
    return f"s3://{IMAGES_BUCKET}/photos/{name}"


def claim_of(aws: SimpleNamespace, source_ref: str) -> dict[str, Any] | None:
    found = aws.dynamodb.get_item(TableName=aws.table, Key={"pk": {"S": f"image#{source_ref}"}}).get("Item")
    return None if found is None else {k: next(iter(v.values())) for k, v in found.items()}


def inventory(aws: SimpleNamespace, config: RunConfig, names: list[str]) -> None:
    write_jsonl(
        aws.s3,
        config.layout().inventory,
        [{"source-ref": ref(n), "key": f"photos/{n}", "size": 1, "etag": '"e"'} for n in names],
    )


@pytest.fixture
def model(aws: SimpleNamespace) -> FakeCustomLabels:
    return FakeCustomLabels().attach(boto3.client("rekognition", region_name=REGION))


@pytest.fixture
def executions(aws: SimpleNamespace) -> FakeExecutions:
    return FakeExecutions().attach(boto3.client("stepfunctions", region_name=REGION))


@pytest.fixture
def jobs(aws: SimpleNamespace) -> FakeLabelingJobs:
    return FakeLabelingJobs().attach(boto3.client("sagemaker", region_name=REGION))


@pytest.fixture
def cloud(
    aws: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions, jobs: FakeLabelingJobs
) -> SimpleNamespace:
    """The services the cleanup talks to."""
    services = Services(model.client, aws.dynamodb, aws.table, executions.client)
    return SimpleNamespace(services=services, s3=aws.s3, sagemaker=jobs.client, model=model, jobs=jobs)


def clean_up(cloud: SimpleNamespace, config: RunConfig, error: dict[str, Any] | None) -> dict[str, Any]:
    return cleanup.clean_up(cloud.services, cloud.s3, cloud.sagemaker, config, error)


def acquire(cloud: SimpleNamespace, config: RunConfig) -> None:
    model_control.acquire(cloud.services, config, NOW, images=10)


# failure_name -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"Error": "States.Timeout", "Cause": "Task timed out after 900 seconds"},
            ("StatesTimeoutError", "States.Timeout: Task timed out after 900 seconds"),
        ),
        ({"Error": "States.TaskFailed", "Cause": "x"}, ("StatesTaskFailedError", "States.TaskFailed: x")),
        (
            {"Error": "States.ItemReaderFailed", "Cause": None},
            ("StatesItemReaderFailedError", "States.ItemReaderFailed: "),
        ),
        (
            {"Error": "ModelStartFailedError", "Cause": "model is FAILED"},
            ("ModelStartFailedError", "model is FAILED"),
        ),
        (
            {"Error": "InvalidInput", "Cause": '{"errorMessage": "minConfidence: ..."}'},
            ("InvalidInput", '{"errorMessage": "minConfidence: ..."}'),
        ),
        (
            # one of the workflow's own errors, as a Lambda task reports it: the message alone
            {
                "Error": "InvalidInput",
                "Cause": '{"errorType": "InvalidInput", "errorMessage": "images: s3://b/p/: no JPEG or PNG '
                'image: no object under this prefix", "stackTrace": ["  File \\"app.py\\", line 9"]}',
            },
            ("InvalidInput", "images: s3://b/p/: no JPEG or PNG image: no object under this prefix"),
        ),
        (
            # an unexpected error keeps its stack trace, for whoever debugs it
            {
                "Error": "KeyError",
                "Cause": '{"errorType": "KeyError", "errorMessage": "x", "stackTrace": []}',
            },
            ("KeyError", '{"errorType": "KeyError", "errorMessage": "x", "stackTrace": []}'),
        ),
        ({}, ("RunFailedError", "")),
        (None, ("RunFailedError", "")),
    ],
)
def test_failure_names_never_reuse_the_reserved_states_prefix(
    error: dict[str, Any] | None, expected: tuple[str, str]
) -> None:
    # WHEN a run fails with an error (Step Functions' own, or ours)
    name, cause = failure_name(error)
    # THEN the execution fails with a name a Fail state may raise, and the original stays in the cause
    assert (name, cause) == expected
    assert not name.startswith("States.")


# clean_up -----------------------------------------------------------------------------------------


def test_cleanup_stops_the_model_this_run_started(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run that started the model and then failed during inference
    config = make_config("run-1")
    acquire(cloud, config)
    model.status = "RUNNING"

    # WHEN the failure path runs
    result = clean_up(
        cloud,
        config,
        {"Error": "States.Timeout", "Cause": "Map timed out"},
    )

    # THEN the model stops (no more billing) and the execution's error is reported
    assert result == {
        "modelStopped": True,
        "modelStatus": "STOPPING",
        "modelStopPending": False,
        "claimsReleased": 0,
        "labelingJobsStopped": 0,
        "labelingJobsNotStopped": 0,
        "error": "StatesTimeoutError",
        "cause": "States.Timeout: Map timed out",
    }
    assert model.status == "STOPPING"


def test_cleanup_leaves_a_model_another_run_still_uses(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN run 1 started the model and run 2 is using it too
    first, second = make_config("run-1"), make_config("run-2")
    acquire(cloud, first)
    acquire(cloud, second)
    model.status = "RUNNING"
    # WHEN run 1 fails
    result = clean_up(cloud, first, {"Error": "X", "Cause": ""})
    # THEN run 2 keeps its model
    assert result["modelStopped"] is False
    assert model.status == "RUNNING"


def test_cleanup_before_the_model_was_acquired_touches_nothing(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run that failed while listing (no lease, no inventory yet)
    config = make_config("run-1", incremental=True)
    # WHEN the failure path runs
    result = clean_up(cloud, config, {"Error": "States.Runtime"})
    # THEN it succeeds without stopping anything
    assert result["modelStopped"] is False and result["claimsReleased"] == 0
    assert model.operations("StopProjectVersion") == []


def test_cleanup_releases_only_this_runs_claims(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN an incremental run that claimed a.jpg and b.jpg; c.jpg in its inventory was taken over
    # by run-2 after the claim lapsed; d.jpg is run-2's, e.jpg labeled long ago
    config = make_config("run-1", incremental=True)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        claims.claim(aws.dynamodb, aws.table, ref(name), config.runId, NOW, NOW + 60)
    claims.claim(aws.dynamodb, aws.table, ref("c.jpg"), "run-2", NOW + 61, NOW + 3600)
    claims.claim(aws.dynamodb, aws.table, ref("d.jpg"), "run-2", NOW, NOW + 3600)
    claims.mark_labeled(aws.dynamodb, aws.table, ref("e.jpg"), "run-0")
    inventory(aws, config, ["a.jpg", "b.jpg", "c.jpg"])

    # WHEN run-1 fails and cleans up
    clean_up(cloud, config, {"Error": "ReviewFailedError"})

    # THEN its own claims are gone, so the next run picks those images up
    assert claim_of(aws, ref("a.jpg")) is None and claim_of(aws, ref("b.jpg")) is None
    # AND other runs' claims and labeled images are untouched
    assert claim_of(aws, ref("c.jpg"))["runId"] == "run-2"
    assert claim_of(aws, ref("d.jpg"))["runId"] == "run-2"
    assert claim_of(aws, ref("e.jpg"))["state"] == "labeled"


def test_a_full_run_leaves_the_ledger_alone(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a failed full (non-incremental) run with a claim in the ledger
    # WHEN it cleans up
    # THEN the ledger is not touched
    config = make_config("run-1", incremental=False)
    claims.claim(aws.dynamodb, aws.table, ref("a.jpg"), config.runId, NOW, NOW + 60)
    inventory(aws, config, ["a.jpg"])
    result = clean_up(cloud, config, None)
    assert result["claimsReleased"] == 0
    assert claim_of(aws, ref("a.jpg")) is not None


def test_a_retried_cleanup_finishes_the_job(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run that failed while its model was still starting, holding a claim
    config = make_config("run-1", incremental=True)
    acquire(cloud, config)
    claims.claim(aws.dynamodb, aws.table, ref("a.jpg"), config.runId, NOW, NOW + 60)
    inventory(aws, config, ["a.jpg"])

    # WHEN the cleanup runs while the model cannot be stopped yet
    with pytest.raises(ModelTransitionError):
        clean_up(cloud, config, {"Error": "ModelStartTimeoutError"})

    # THEN the state machine's retry, once the model is up, stops it and releases the claim
    model.status = "RUNNING"
    result = clean_up(cloud, config, {"Error": "ModelStartTimeoutError"})
    assert result["modelStopped"] is True
    assert claim_of(aws, ref("a.jpg")) is None
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN).started_by_workflow is False


# The end of a successful run ----------------------------------------------------------------------


def finish_run(
    aws: SimpleNamespace, config: RunConfig, plan: PlanSummary, images_listed: int
) -> dict[str, Any]:
    """What the Build Manifest state does: the manifest and report, then the claims settled."""
    report = finish.finish_run(
        aws.s3,
        FinishSettings.from_run(aws.s3, config, plan, RunTotals(images_listed=images_listed), FINISHED_AT),
    )
    if config.incremental:
        claims.settle(aws.dynamodb, aws.table, aws.s3, config.layout(), config.runId, int(NOW + 60))
    return run_result(config.layout(), report)


def accepted(name: str, label: str) -> dict[str, Any]:
    return {
        "source-ref": ref(name),
        "taskType": "classification",
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "boxes": [],
        "labels": [{"label": label, "status": "kept"}],
        "removed": [],
        "reviewer": "auto-accept",
        "humanReviewed": False,
    }


def finished_run(aws: SimpleNamespace, *, incremental: bool) -> tuple[RunConfig, dict[str, Any]]:
    """A classification run over a, b, c, d: a and b auto-accepted, c corrupt at inference, d
    deferred (over the review budget)."""
    config = make_config("run-1", incremental=incremental, autoAcceptConfidence=90)
    layout = config.layout()
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        claims.claim(aws.dynamodb, aws.table, ref(name), config.runId, NOW, NOW + 3600)
    inventory(aws, config, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    write_jsonl(
        aws.s3,
        layout.deferred_part("review", 0),
        [defer_record(ref("d.jpg"), "review", "over-review-budget", "budget 2")],
    )
    write_jsonl(aws.s3, layout.auto_accepted, [accepted("a.jpg", "outdoor"), accepted("b.jpg", "indoor")])
    write_jsonl(
        aws.s3,
        layout.skipped_part("inference", 0),
        [
            {
                "source-ref": ref("c.jpg"),
                "stage": "inference",
                "reason": "corrupt-image",
                "detail": "truncated",
            }
        ],
    )
    # the audit gate let the auto-accepted images ship (what Check Audit records)
    write_json(aws.s3, layout.gate, {"decision": "ship", "reason": "the audit vouched for them"})
    plan = PlanSummary("classification", ["indoor", "outdoor"], images_auto_accepted=2)
    result = finish_run(aws, config, plan, images_listed=4)
    return config, result


def test_finish_builds_the_manifest_and_report(aws: SimpleNamespace) -> None:
    # GIVEN a run whose review is done
    # WHEN it finishes
    config, result = finished_run(aws, incremental=False)
    layout = config.layout()

    # THEN the manifest holds the labeled images and the report the counts the user reads
    manifest = read_jsonl(aws.s3, layout.manifest)
    assert sorted(line["source-ref"] for line in manifest) == [ref("a.jpg"), ref("b.jpg")]
    assert [s["source-ref"] for s in read_jsonl(aws.s3, layout.skipped)] == [ref("c.jpg")]
    assert result["manifest"] == str(layout.manifest)
    assert result["report"] == str(layout.report)
    assert result["skipped"] == str(layout.skipped)
    counts = result["counts"]
    assert (counts["imagesListed"], counts["imagesInManifest"], counts["imagesSkipped"]) == (4, 2, 1)
    assert counts["imagesDeferred"] == 1
    assert [s["source-ref"] for s in read_jsonl(aws.s3, layout.deferred)] == [ref("d.jpg")]
    assert counts["imagesAutoAccepted"] == 2
    report = read_json(aws.s3, layout.report)
    assert report["taskType"] == "classification" and report["skippedByReason"] == {"corrupt-image": 1}
    assert report["runId"] == config.runId


def test_finish_records_labeled_images_and_frees_skipped_ones(aws: SimpleNamespace) -> None:
    # GIVEN an incremental run whose review is done
    # WHEN it finishes
    finished_run(aws, incremental=True)

    # THEN manifest images are labeled for good, the skipped image is free for the next run and
    # the deferred one waits for it
    assert claim_of(aws, ref("a.jpg"))["state"] == "labeled"
    assert claim_of(aws, ref("b.jpg"))["state"] == "labeled"
    assert claim_of(aws, ref("c.jpg")) is None
    assert claim_of(aws, ref("d.jpg"))["state"] == "deferred"

    # AND the next incremental run over the prefix lists the skipped and the deferred image, the
    # deferred one marked as such (the plan takes it first)
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        put_object(aws.s3, IMAGES_BUCKET, f"photos/{name}", b"x")
    next_layout = RunLayout.for_run(S3Uri.parse(make_config().output), "run-2")
    settings = ListingSettings(
        images=S3Uri(IMAGES_BUCKET, "photos/"),
        layout=next_layout,
        output_prefix=S3Uri.parse(make_config().output),
        run_id="run-2",
        incremental=True,
        claim_seconds=3600,
        max_images=100,
    )
    listing = list_images(aws.s3, aws.dynamodb, aws.table, settings, now=NOW + 7200)
    assert listing.images_to_infer == 2
    assert listing.deferred_before == 1
    inventoried = {line["source-ref"]: line for line in read_jsonl(aws.s3, next_layout.inventory)}
    assert sorted(inventoried) == [ref("c.jpg"), ref("d.jpg")]
    assert "deferredSince" not in inventoried[ref("c.jpg")]
    assert inventoried[ref("d.jpg")]["deferredSince"] == NOW + 60


def test_finish_of_a_full_run_leaves_the_ledger_alone(aws: SimpleNamespace) -> None:
    # GIVEN a full (non-incremental) run
    # WHEN it finishes
    # THEN it neither labels nor releases anything in the ledger
    finished_run(aws, incremental=False)
    assert claim_of(aws, ref("a.jpg"))["state"] == "claimed"
    assert claim_of(aws, ref("c.jpg"))["state"] == "claimed"


def test_finish_names_the_labeling_jobs_and_the_plans_task_type(aws: SimpleNamespace) -> None:
    # GIVEN a detection run with the Ground Truth job list
    config = make_config("run-1", taskType="auto")
    layout = config.layout()
    aws.s3.put_object(
        Bucket=layout.review_jobs.bucket,
        Key=layout.review_jobs.key,
        Body=b'[{"jobName": "lab-run-1-det-000"}, {"jobName": "lab-run-1-det-001"}]',
    )
    # WHEN it finishes with nothing to put in the manifest
    result = finish_run(aws, config, PlanSummary("detection", []), images_listed=0)
    # THEN the report lists the jobs and the task type the plan decided
    report = read_json(aws.s3, layout.report)
    assert report["labelingJobs"] == ["lab-run-1-det-000", "lab-run-1-det-001"]
    assert report["taskType"] == "detection"
    assert result["counts"]["imagesInManifest"] == 0


# Runs that end outside their Catch ----------------------------------------------------------------


def _job(aws: SimpleNamespace, config: RunConfig, name: str, images: list[str]) -> dict[str, Any]:
    layout = config.layout()
    manifest = layout.groundtruth_job_prefix(name).join("input.manifest")
    write_jsonl(aws.s3, manifest, [{"source-ref": ref(n)} for n in images])
    return {"jobName": name, "inputManifestUri": str(manifest)}


def test_cleanup_stops_the_runs_labeling_jobs_and_keeps_claims_it_could_not_free(
    aws: SimpleNamespace, cloud: SimpleNamespace
) -> None:
    # GIVEN an incremental run aborted while its three labeling jobs were out: one in progress, one
    # that cannot be stopped right now (throttled), one that had already completed
    config = make_config("run-1", incremental=True)
    inventory(aws, config, ["a.jpg", "b.jpg", "c.jpg"])
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        claims.claim(aws.dynamodb, aws.table, ref(name), config.runId, NOW, NOW + 3600)
    job_items = [
        _job(aws, config, "lab-x-det-000", ["a.jpg"]),
        _job(aws, config, "lab-x-det-001", ["b.jpg"]),
        _job(aws, config, "lab-x-det-002", ["c.jpg"]),
    ]
    aws.s3.put_object(
        Bucket=OUTPUT_BUCKET, Key=config.layout().review_jobs.key, Body=json.dumps(job_items).encode()
    )
    cloud.jobs.statuses.update(
        {"lab-x-det-000": "InProgress", "lab-x-det-001": "InProgress", "lab-x-det-002": "Completed"}
    )
    cloud.jobs.refuse_stop.add("lab-x-det-001")

    # WHEN the cleanup runs
    result = clean_up(cloud, config, {"Error": "ExecutionAborted", "Cause": "ABORTED"})

    # THEN the job still handing out tasks is stopped; no job is left in progress but the refused one
    assert cloud.jobs.statuses == {
        "lab-x-det-000": "Stopping",
        "lab-x-det-001": "InProgress",
        "lab-x-det-002": "Completed",
    }
    assert (result["labelingJobsStopped"], result["labelingJobsNotStopped"]) == (1, 1)
    # AND the claims are released but those of the job that people may still answer
    assert claim_of(aws, ref("a.jpg")) is None and claim_of(aws, ref("c.jpg")) is None
    assert claim_of(aws, ref("b.jpg"))["state"] == "claimed"


def registered(aws: SimpleNamespace, config: RunConfig) -> None:
    """What Validate Input does for a run: its config.json and its record."""
    from labeling_loop.kernel.run_input import start_run

    start_run(aws.s3, aws.dynamodb, aws.table, config)


def test_an_aborted_execution_is_cleaned_up_from_its_status_change_event(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN a run that started the model and was stopped by a person during inference
    config = make_config("run-1")
    registered(aws, config)
    acquire(cloud, config)
    model.status = "RUNNING"
    executions.end(config.executionArn, "ABORTED")

    # WHEN the execution-ended event arrives (once, then again: EventBridge may repeat it)
    first = cleanup.clean_up_ended_execution(
        cloud.services, cloud.s3, cloud.sagemaker, config.executionArn, "ABORTED"
    )
    again = cleanup.clean_up_ended_execution(
        cloud.services, cloud.s3, cloud.sagemaker, config.executionArn, "ABORTED"
    )

    # THEN the model is stopped, the lease is empty, and the second event does nothing
    assert first["cleanedUp"] is True and first["modelStopped"] is True
    assert again == {"executionArn": config.executionArn, "cleanedUp": False, "reason": "nothing held"}
    assert model.status == "STOPPING" and len(model.operations("StopProjectVersion")) == 1
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN) == model_lease.Lease(frozenset(), False, None)
    assert run_records.active(aws.dynamodb, aws.table) == []


def test_an_execution_that_never_registered_holds_nothing(
    aws: SimpleNamespace, cloud: SimpleNamespace
) -> None:
    # GIVEN an execution that failed in Validate Input (or a Map's child execution)
    arn = "arn:aws:states:us-east-1:123456789012:execution:labeling-loop-labeling-loop:bad-input"
    # WHEN its event arrives
    result = cleanup.clean_up_ended_execution(cloud.services, cloud.s3, cloud.sagemaker, arn, "FAILED")
    # THEN there is nothing to do
    assert result["cleanedUp"] is False


def test_the_sweep_cleans_up_after_a_run_whose_event_never_came(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN two registered runs on the model: one timed out (its event was lost), one still running
    dead, alive = make_config("run-1"), make_config("run-2")
    for config in (dead, alive):
        registered(aws, config)
        acquire(cloud, config)
    model.status = "RUNNING"
    executions.end(dead.executionArn, "TIMED_OUT")

    # WHEN the sweep runs
    swept = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)

    # THEN the dead run is cleaned up, and the model keeps running for the live one
    assert swept == {
        "runsCleanedUp": 1,
        "modelsStopped": [],
        "modelsLeftRunning": [],
        "labelingJobsNotStopped": 0,
        "errors": {},
    }
    assert run_records.active(aws.dynamodb, aws.table) == [alive.executionArn]
    assert model.status == "RUNNING"

    # WHEN the live one is aborted too, and the next sweep runs
    executions.end(alive.executionArn, "ABORTED")
    swept = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)

    # THEN the model the workflow started is stopped
    assert (swept["runsCleanedUp"], swept["modelsStopped"], swept["modelsLeftRunning"]) == (
        1,
        [MODEL_ARN],
        [],
    )
    assert model.status == "STOPPING"


def test_a_labeling_job_the_cleanup_could_not_stop_is_retried_by_the_sweep_until_it_ends(
    aws: SimpleNamespace, cloud: SimpleNamespace, executions: FakeExecutions
) -> None:
    # GIVEN an aborted run whose labeling job refused the cleanup's stop (throttled)
    config = make_config("run-1", incremental=True)
    registered(aws, config)
    inventory(aws, config, ["a.jpg"])
    claims.claim(aws.dynamodb, aws.table, ref("a.jpg"), config.runId, NOW, NOW + 3600)
    aws.s3.put_object(
        Bucket=OUTPUT_BUCKET,
        Key=config.layout().review_jobs.key,
        Body=json.dumps([_job(aws, config, "lab-x-det-000", ["a.jpg"])]).encode(),
    )
    cloud.jobs.statuses["lab-x-det-000"] = "InProgress"
    cloud.jobs.refuse_stop.add("lab-x-det-000")
    executions.end(config.executionArn, "ABORTED")
    first = cleanup.clean_up_ended_execution(
        cloud.services, cloud.s3, cloud.sagemaker, config.executionArn, "ABORTED"
    )
    assert first["labelingJobsNotStopped"] == 1
    # THEN the run stays registered, so the sweep tries again (and again, while the stop is refused)
    assert run_records.active(aws.dynamodb, aws.table) == [config.executionArn]
    swept = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)
    assert swept["labelingJobsNotStopped"] == 1
    assert cloud.jobs.statuses["lab-x-det-000"] == "InProgress"
    # WHEN the stop goes through at a later sweep
    cloud.jobs.refuse_stop.clear()
    swept = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)
    # THEN the job is stopped, the run is done with, and its image is free for the next run
    assert (swept["runsCleanedUp"], swept["labelingJobsNotStopped"]) == (1, 0)
    assert cloud.jobs.statuses["lab-x-det-000"] == "Stopping"
    assert run_records.active(aws.dynamodb, aws.table) == []
    assert claim_of(aws, ref("a.jpg")) is None


def test_an_ended_event_for_a_redriven_execution_cleans_nothing(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    # GIVEN a run whose ABORTED event arrives after a person redrove the execution (running again)
    config = make_config("run-1")
    registered(aws, config)
    acquire(cloud, config)
    model.status = "RUNNING"
    # WHEN the late event is handled
    result = cleanup.clean_up_ended_execution(
        cloud.services, cloud.s3, cloud.sagemaker, config.executionArn, "ABORTED"
    )
    # THEN the run keeps its lease, its model and its record
    assert result["cleanedUp"] is False and "redriven" in result["reason"]
    assert model.status == "RUNNING"
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN).users == frozenset({config.executionArn})
    assert run_records.active(aws.dynamodb, aws.table) == [config.executionArn]


def test_a_model_the_sweep_cannot_stop_is_reported_after_two_sweeps(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN a model the workflow started, whose run is gone, and which refuses every stop call
    config = make_config("run-1")
    acquire(cloud, config)
    model.status = "RUNNING"
    executions.end(config.executionArn, "ABORTED")
    model.stop_errors.extend(["AccessDeniedException"] * 2)
    # WHEN one sweep fails to stop it
    first = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)
    # THEN the sweep goes on (the error is reported), but one sweep is not yet "left running"
    assert MODEL_ARN in first["errors"] and "AccessDeniedException" in first["errors"][MODEL_ARN]
    assert first["modelsLeftRunning"] == []
    # WHEN the next sweep fails too: it has run unheld longer than one sweep period
    second = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)
    assert second["modelsLeftRunning"] == [MODEL_ARN]
    # AND once a sweep stops it, it is no longer reported
    third = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)
    assert (third["modelsStopped"], third["modelsLeftRunning"]) == ([MODEL_ARN], [])
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN).unheld_sweeps == 0


def test_a_model_held_by_a_live_run_is_never_reported(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels
) -> None:
    config = make_config("run-1")
    acquire(cloud, config)
    model.status = "RUNNING"
    for _ in range(3):
        swept = cleanup.sweep(cloud.services, cloud.s3, cloud.sagemaker)
        assert (swept["modelsStopped"], swept["modelsLeftRunning"]) == ([], [])
    assert model.status == "RUNNING"


def test_the_ended_event_cleanup_waits_for_a_starting_model_while_it_has_time(
    aws: SimpleNamespace, cloud: SimpleNamespace, model: FakeCustomLabels, executions: FakeExecutions
) -> None:
    # GIVEN a run stopped while its model was starting (AWS stops running models only)
    config = make_config("run-1")
    registered(aws, config)
    acquire(cloud, config)
    executions.end(config.executionArn, "ABORTED")
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the model comes up after the second look
        polls.append(seconds)
        if len(polls) == 2:
            model.status = "RUNNING"

    # WHEN its execution-ended cleanup runs with time to spare
    result = cleanup.clean_up(
        cloud.services, cloud.s3, cloud.sagemaker, config, None,
        cleanup.StopWaiting(raise_while_pending=False, seconds_left=lambda: 300.0, sleep=sleep),
    )  # fmt: skip
    # THEN it looked again until the model ran, and stopped it
    assert polls == [cleanup.START_POLL_S] * 2
    assert (result["modelStopped"], result["modelStopPending"]) == (True, False)
    assert model.operations("StopProjectVersion") == [{"ProjectVersionArn": MODEL_ARN}]

    # AND without time left it does not wait: the duty stays for the sweep
    other = make_config("run-2")
    model.status = "STOPPED"
    acquire(cloud, other)
    late = cleanup.clean_up(
        cloud.services, cloud.s3, cloud.sagemaker, other, None,
        cleanup.StopWaiting(raise_while_pending=False, seconds_left=lambda: cleanup.RESERVE_S, sleep=sleep),
    )  # fmt: skip
    assert (late["modelStopped"], late["modelStatus"], late["modelStopPending"]) == (False, "STARTING", True)
    assert model_lease.read(aws.dynamodb, aws.table, MODEL_ARN).started_by_workflow is True
