"""The fault matrix: whole executions with one fault switched on, asserting the ending a user wants.

Whatever the fault, three things always hold: the model is not left running by a run that started
it, no labeling job is created twice, and when the run succeeds every listed image is in the
manifest or in skipped.jsonl (the counts add up). docs/reliability.md lists the outcomes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from run_checks import (
    assert_every_image_accounted_for,
    assert_failed_clearly,
    assert_model_not_left_running,
    assert_no_job_created_twice,
)

from localcloud.data.dataset import generate
from localcloud.engine.faults import Faults
from localcloud.engine.lambda_runtime import FunctionSpec
from localcloud.runner import (
    IMAGES_PREFIX,
    LocalRunResult,
    default_config,
    execute,
    local_cloud,
    prepare,
    run_local,
    wait_for_model_stopped,
)

pytestmark = pytest.mark.e2e

IMAGES = 12
# The stack's defaults: the run plans its fan-out (one batch at 1 inference unit).
RUN_INPUT: dict[str, Any] = {}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fault-images")
    manifest = generate(folder, IMAGES, task="detection", seed=23, exif_fraction=0.1)
    return folder, manifest


def predictions(cloud: Any, result: LocalRunResult) -> list[str]:
    """Every prediction record written by the fan-out, across all batch parts."""
    bucket, _, prefix = result.run_prefix.removeprefix("s3://").partition("/")
    refs: list[str] = []
    for page in cloud.s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix + "predictions/"
    ):
        for item in page.get("Contents", []):
            body = cloud.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            refs.extend(json.loads(line)["source-ref"] for line in body.splitlines() if line.strip())
    return refs


def _run(images: tuple[Path, Path], faults: dict[str, Any], name: str, **kwargs: Any) -> LocalRunResult:
    folder, truth = images
    return run_local(
        folder,
        truth,
        faults=Faults.from_dict(faults),
        run_input={**RUN_INPUT, **kwargs.pop("run_input", {})},
        name=name,
        timeout=120,
        **kwargs,
    )


# 1. Throttling storm -------------------------------------------------------------------------------


def test_a_throttling_storm_during_inference_is_absorbed(images: tuple[Path, Path]) -> None:
    # GIVEN the model's first DetectCustomLabels calls answer ThrottlingException. A short storm:
    # botocore's adaptive mode slows the whole client down after a throttle (measured: a storm of
    # 60 calls over 12 images took 2 minutes of running model, docs/reliability.md).
    result = _run(images, {"model": {"throttlingStorm": [0, 3]}}, "throttled")
    # THEN the run succeeds and no image is lost: each was inferred after retries, or skipped as a
    # service error, never missing
    assert result.summary["status"] == "SUCCEEDED", result.summary
    assert result.summary["throttled_calls"] >= 3
    assert_every_image_accounted_for(result, IMAGES)
    service_errors = [r for r in result.skipped if r["reason"] == "service-error"]
    assert (
        len(result.manifest)
        + len(service_errors)
        + sum(1 for r in result.skipped if r["reason"] != "service-error")
        == IMAGES
    )
    assert result.model_meter["detect_answered"] + len(service_errors) == IMAGES
    assert_model_not_left_running(result)
    assert result.summary["model_status_at_end"] == "STOPPED"
    assert_no_job_created_twice(result.summary["labeling_jobs"])


# 2. Lambda crashes and Lambda throttling -----------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        {
            "lambda": {
                "crashOnFirstCall": [
                    "DetectLabelsFunction",
                    "ModelControlFunction",
                    "PlanReviewFunction",
                    "BuildManifestFunction",
                ]
            }
        },
        {"lambda": {"throttleFirstCalls": {"DetectLabelsFunction": 2, "ListImagesFunction": 1}}},
    ],
    ids=["crash-on-first-call", "throttled-by-lambda"],
)
def test_a_lambda_that_fails_at_first_is_retried_by_the_state_machine(
    images: tuple[Path, Path], faults: dict[str, Any]
) -> None:
    folder, truth = images
    with local_cloud(default_config(), Faults.from_dict(faults)) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            **RUN_INPUT,
        }
        result = execute(cloud, stack, arn, run_input, "lambda-faults", timeout=120)
        result.summary["model_status_at_end"] = wait_for_model_stopped(cloud, arn)
        written = predictions(cloud, result)
        job_names = list(cloud.groundtruth.created_job_names)
    # THEN the run succeeds
    assert result.summary["status"] == "SUCCEEDED", result.summary
    # AND the failed attempts were retried (more invocations than calls the workflow needed)
    faulty = set(faults["lambda"].get("crashOnFirstCall", [])) | set(
        faults["lambda"].get("throttleFirstCalls", {})
    )
    # (the parent's history shows the failed attempts of its own states; the Map children's are in
    # their own histories)
    errors = {e["taskFailedEventDetails"]["error"] for e in result.history if e["type"] == "TaskFailed"}
    crashed = "crashOnFirstCall" in faults["lambda"]
    expected = "Runtime.ExitError" if crashed else "Lambda.TooManyRequestsException"
    assert errors == {expected}, errors
    for logical_id in faulty:
        assert result.lambda_invocations[logical_id] >= 2, (logical_id, result.lambda_invocations)
    # AND each image was predicted exactly once and is in the manifest or skipped, once
    assert sorted(written) == sorted(r["source-ref"] for r in result.inventory), (
        "each image predicted exactly once"
    )
    assert_every_image_accounted_for(result, IMAGES)
    assert_model_not_left_running(result)
    assert result.summary["model_status_at_end"] == "STOPPED"
    assert_no_job_created_twice(job_names)


# 3. Transient S3 errors ----------------------------------------------------------------------------


def test_transient_s3_errors_in_the_functions_are_absorbed(images: tuple[Path, Path]) -> None:
    """SlowDown on the functions' and Rekognition's reads of the images: their clients retry.

    The first GetObject of a run is the inference function's read of inventory.jsonl; this test lets
    it through and fails the next three reads, which are the inference function's header reads."""
    from localcloud.engine import hooks
    from localcloud.engine.faults import S3FaultInjector

    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        injector = S3FaultInjector({"GetObject": 3})
        seen = {"GetObject": 0}

        def after_the_inventory_read(operation: str, params: dict[str, Any]) -> Any:
            if operation == "GetObject":
                seen["GetObject"] += 1
                if seen["GetObject"] == 1:
                    return None
            return injector(operation, params)

        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            **RUN_INPUT,
        }
        # Only now: the uploads and the truth reads above must not use up the faults.
        hooks.intercept("s3", after_the_inventory_read)
        result = execute(cloud, stack, arn, run_input, "s3-transient", timeout=120)
        result.summary["model_status_at_end"] = wait_for_model_stopped(cloud, arn)
        job_names = list(cloud.groundtruth.created_job_names)
    assert injector.injected == {"GetObject": 3}
    assert result.summary["status"] == "SUCCEEDED", result.summary
    assert_every_image_accounted_for(result, IMAGES)
    assert not [r for r in result.skipped if r["reason"] == "service-error"]
    assert result.summary["model_status_at_end"] == "STOPPED"
    assert_no_job_created_twice(job_names)


@pytest.fixture(scope="module")
def s3_errors_as_configured(images: tuple[Path, Path]) -> LocalRunResult:
    # The fault as the fault file says it: the first three GetObject calls of the run answer 503.
    return _run(images, {"s3": {"transientErrors": {"GetObject": 3}}}, "s3-first-reads")


def test_transient_s3_errors_are_retried_and_absorbed(s3_errors_as_configured: LocalRunResult) -> None:
    result = s3_errors_as_configured
    # THEN the first of the 503s hits the inference function's read of inventory.jsonl and the rest
    # its header reads: the functions' S3 clients retry them, and the run succeeds with every image
    # accounted for and the model stopped
    assert result.summary["status"] == "SUCCEEDED", result.summary
    assert_every_image_accounted_for(result, IMAGES)
    assert result.summary["model_status_at_end"] == "STOPPED"
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e
    ]
    assert entered.count("Detect Labels") == 1, (
        "the functions' clients retried their reads, not the state machine the whole fan-out"
    )


# 4. The model fails to start ------------------------------------------------------------------------


def test_a_model_that_fails_to_start_fails_the_run_clearly(images: tuple[Path, Path]) -> None:
    result = _run(images, {"model": {"failStart": True}}, "model-fails")
    # THEN the run fails with the error that says so, naming the model
    assert_failed_clearly(result, "ModelStartFailedError", result.model_arn, "FAILED")
    # AND the model is not running (FAILED is not billed), no stop was attempted on it, no job made
    assert result.summary["model_status_at_end"] == "FAILED"
    assert result.model_meter["running_seconds"] == 0
    assert result.model_meter["stop_calls"] == 0
    assert result.summary["labeling_jobs"] == []
    assert result.lambda_invocations.get("RunCleanupFunction") == 1, "the cleanup ran once, without retries"


# 5. The model stops under inference ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_stopped_under_inference(images: tuple[Path, Path]) -> LocalRunResult:
    # Someone stops the model after 5 of the 12 DetectCustomLabels calls. The cleanup retries its
    # stop 20 times (30 s x 1.2^n, about 1.5 h on AWS): a small time scale keeps that to a second.
    config = default_config(time_scale=0.0002)
    return _run(images, {"model": {"stopAfterDetectCalls": 5}}, "model-stopped", config=config)


def test_a_model_stopped_during_inference_fails_the_run_with_the_model_stopped(
    model_stopped_under_inference: LocalRunResult,
) -> None:
    result = model_stopped_under_inference
    summary = result.summary
    # THEN the run fails (it cannot recover: nobody restarts a model that someone stopped) ...
    assert summary["status"] == "FAILED", summary
    # ... after the batches retried ModelNotRunningError and the Map gave up
    assert result.model_meter["not_ready_calls"] > 0
    cleanup_inputs = [
        json.loads(e["stateEnteredEventDetails"]["input"])
        for e in result.history
        if e.get("stateEnteredEventDetails", {}).get("name") == "Clean Up After Failure"
    ]
    assert len(cleanup_inputs) == 1
    assert cleanup_inputs[0]["error"]["Error"] == "States.ExceedToleratedFailureThreshold"
    # AND the model is not running, and no review was started for a half-inferred run
    assert summary["model_status_at_end"] == "STOPPED"
    assert_model_not_left_running(result)
    assert summary["labeling_jobs"] == []


def test_a_model_stopped_during_inference_reports_the_inference_failure(
    model_stopped_under_inference: LocalRunResult,
) -> None:
    result = model_stopped_under_inference
    assert result.summary["error"] == "StatesExceedToleratedFailureThresholdError", result.summary["cause"]


# 6. Labeling jobs that fail, stop, or leave objects unlabeled -----------------------------------------


@pytest.mark.parametrize(
    ("faults", "reason", "warning"),
    [
        ({"groundTruth": {"failJob": True}}, "review-failed", "review-failed"),
        ({"groundTruth": {"stopAfterFraction": 0.5}}, "not-reviewed", "not-reviewed"),
        ({"groundTruth": {"unlabeledFraction": 0.3}}, "not-reviewed", "not-reviewed"),
    ],
    ids=["job-fails", "job-stopped-half-way", "30pct-unlabeled"],
)
def test_a_review_that_ends_badly_still_ends_the_run_with_everything_accounted_for(
    images: tuple[Path, Path], faults: dict[str, Any], reason: str, warning: str
) -> None:
    result = _run(images, faults, "review-fault")
    summary = result.summary
    # THEN the run succeeds: the reviewed images are in the manifest, the others skipped with a reason
    assert summary["status"] == "SUCCEEDED", summary
    assert_every_image_accounted_for(result, IMAGES)
    unreviewed = [r for r in result.skipped if r["reason"] == reason]
    assert unreviewed and all(r["stage"] == "review" for r in unreviewed), result.skipped
    assert result.report["skippedByReason"][reason] == len(unreviewed)
    if reason == "review-failed":
        assert result.manifest == [] and len(unreviewed) == IMAGES
    else:
        assert result.manifest, "the images people did review are in the manifest"
    # AND the report tells the user (a warning that names the reason)
    assert any(warning in w or reason in w for w in result.report.get("warnings", [])), result.report.get(
        "warnings"
    )
    # AND the model stopped right after inference, before the labeling job was created
    intervals = result.model_meter["intervals"]
    assert len(intervals) == 1 and intervals[0][1] is not None
    assert intervals[0][1] <= min(job["created_at"] for job in result.labeling_jobs.values())
    assert summary["model_status_at_end"] == "STOPPED"
    assert_no_job_created_twice(summary["labeling_jobs"])


# 7. A failure after the model started ---------------------------------------------------------------


def _always_fails(logical_id: str) -> Any:
    def hook(spec: FunctionSpec, payload: dict[str, Any], count: int) -> dict[str, Any] | None:
        if spec.logical_id == logical_id:
            return {"errorType": "EmulatedBugError", "errorMessage": f"{logical_id} failed (emulated fault)"}
        return None

    return hook


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        ("PlanReviewFunction", "EmulatedBugError"),
        ("DetectLabelsFunction", "StatesExceedToleratedFailureThresholdError"),
    ],
    ids=["plan-review-fails", "every-batch-fails"],
)
def test_a_failure_after_the_model_started_cleans_up_and_releases_the_claims(
    images: tuple[Path, Path], failing: str, error: str
) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "incremental": True,
            **RUN_INPUT,
        }
        # GIVEN a function that fails every time (no Retry matches its error)
        hook = _always_fails(failing)
        cloud.runtime.fault_hooks.append(hook)
        failed = execute(cloud, stack, arn, run_input, "fails-after-start", timeout=120)
        failed.summary["model_status_at_end"] = wait_for_model_stopped(cloud, arn)
        # WHEN the fault is gone and the same prefix is run again
        cloud.runtime.fault_hooks.remove(hook)
        again = execute(cloud, stack, arn, run_input, "after-the-failure", timeout=120)
        again.summary["model_status_at_end"] = wait_for_model_stopped(cloud, arn)
        job_names = list(cloud.groundtruth.created_job_names)

    # THEN the first run failed with the original error, through the cleanup path
    assert_failed_clearly(failed, error)
    if failing == "PlanReviewFunction":
        assert "PlanReviewFunction failed (emulated fault)" in failed.summary["cause"]
    # AND the model it started is stopped (by Release Model after inference, or by the cleanup)
    assert failed.model_meter["start_calls"] == 1
    assert failed.summary["model_status_at_end"] == "STOPPED"
    cleanup = [
        json.loads(e["stateExitedEventDetails"]["output"])["cleanup"]
        for e in failed.history
        if e.get("stateExitedEventDetails", {}).get("name") == "Clean Up After Failure"
    ]
    assert len(cleanup) == 1
    assert cleanup[0]["modelStopped"] is (failing == "DetectLabelsFunction"), cleanup
    # AND its image claims were released: the next run lists the same images again, and succeeds
    assert again.summary["status"] == "SUCCEEDED", again.summary
    assert sorted(r["source-ref"] for r in again.inventory) == sorted(
        r["source-ref"] for r in failed.inventory
    )
    assert len(again.inventory) == IMAGES
    assert_every_image_accounted_for(again, IMAGES)
    assert_no_job_created_twice(job_names)
    assert again.summary["model_status_at_end"] == "STOPPED"


# 8. The model does not start before the deadline ----------------------------------------------------


def test_a_model_start_past_the_deadline_fails_and_the_model_is_stopped_once_it_can_be(
    images: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, truth = images
    config = default_config()
    # GIVEN a model that takes 1,500 scaled seconds to start (3 s of real time at time scale 0.002)
    config.rekognition.start_latency_s = 3.0
    with local_cloud(config) as cloud:
        # The deadline is computed in the ModelControl function on the wall clock, while the local
        # cloud compresses only Wait states and Retry intervals. Give the function the same scaled
        # clock, so "1 minute" means what the Waits mean (0.12 s here).
        from labeling_loop.inference import model_control

        origin = time.time()
        monkeypatch.setattr(model_control, "now", lambda: origin + (time.time() - origin) / config.time_scale)
        stack, arn, _ = prepare(cloud, folder, truth)
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "modelStartTimeoutMinutes": 1,
            **RUN_INPUT,
        }
        result = execute(cloud, stack, arn, run_input, "start-timeout", timeout=120)
        status_at_end = wait_for_model_stopped(cloud, arn)
        meter = cloud.rekognition.meter(arn)
    # THEN the run fails with ModelStartTimeoutError, naming the setting to change
    assert_failed_clearly(result, "ModelStartTimeoutError", arn, "modelStartTimeoutMinutes")
    # AND the cleanup, finding the model STARTING (AWS stops running models: docs/aws-facts.md §1.2),
    # waited for it (its Retry on ModelTransitionError) and stopped it once it could, with one call
    waits = [
        e["taskFailedEventDetails"]["error"]
        for e in result.history
        if e.get("type") == "TaskFailed" and "ModelTransitionError" in json.dumps(e, default=str)
    ]
    assert waits, "the cleanup did not have to wait for the starting model"
    assert meter["stop_calls"] == 1
    assert status_at_end == "STOPPED", meter
    assert all(end is not None for _, end in meter["intervals"])
    assert result.summary["labeling_jobs"] == []
