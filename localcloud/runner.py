"""One whole turn of the loop in the local cloud, on a folder of images, with everything a user (or a
test, or a benchmark) wants to look at afterwards."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.jsonl import list_keys, read_json, read_jsonl
from labeling_loop.kernel.s3_uri import S3Uri

from localcloud.data.truth import load_truth, manifest_lines
from localcloud.engine import executions, interpreter
from localcloud.engine import faults as faults_module
from localcloud.engine.cloud import LocalCloud, LocalCloudConfig, RunOutcome
from localcloud.engine.deployment import Stack
from localcloud.services.custom_labels import CustomLabelsConfig, TaskType
from localcloud.services.groundtruth import GroundTruthConfig
from localcloud.services.reviewer_model import DEMO

if TYPE_CHECKING:
    from types_boto3_stepfunctions.type_defs import HistoryEventTypeDef

LOG = logging.getLogger(__name__)
IMAGES_PREFIX = "incoming/"


def default_config(time_scale: float = 0.002) -> LocalCloudConfig:
    """Latencies and capacities scaled so that a 200-image demo takes seconds, not hours."""
    return LocalCloudConfig(
        time_scale=time_scale,
        rekognition=CustomLabelsConfig(
            start_latency_s=1.0,
            stop_latency_s=0.5,
            tps_per_inference_unit=60.0,
            detect_latency_s=0.02,
        ),
        # The emulated reviewers of both backends: one model (services/reviewer_model.py).
        groundtruth=GroundTruthConfig(
            job_latency_s=1.0, annotator_accuracy=DEMO.accuracy, annotator_jitter_px=DEMO.jitter_px
        ),
    )


@dataclass
class LocalRunResult:
    summary: dict[str, Any]  # run.json
    output: dict[str, Any] | None
    history: list[HistoryEventTypeDef]
    manifest: list[dict[str, Any]]
    report: dict[str, Any]
    skipped: list[dict[str, Any]]
    deferred: list[dict[str, Any]]
    inventory: list[dict[str, Any]]
    labeling_jobs: dict[str, Any]
    model_meter: dict[str, Any]
    lambda_invocations: dict[str, int]
    model_arn: str
    stack: Stack
    run_prefix: str
    extra: dict[str, Any] = field(default_factory=dict)


def prepare(
    cloud: LocalCloud,
    images_dir: Path,
    truth_manifest: Path | None,
    *,
    task_type: TaskType = "detection",
    model_status: str = "STOPPED",
    parameters: dict[str, str] | None = None,
) -> tuple[Stack, str, list[str]]:
    """Deploy the stack, upload the images, load the truth, register the model.

    Returns (stack, model ARN, source-refs)."""
    stack = cloud.deploy(parameters)
    refs = cloud.upload_folder(images_dir, IMAGES_PREFIX)
    if truth_manifest is not None:
        cloud.add_truth(
            load_truth(manifest_lines(truth_manifest), f"s3://{stack.images_bucket}/{IMAGES_PREFIX}")
        )
    arn = cloud.add_model(task_type, status=model_status)
    return stack, arn, refs


def _read_jsonl(cloud: LocalCloud, uri: str) -> list[dict[str, Any]]:
    """A run's JSON Lines file, read with the layer's own reader ([] when absent)."""
    return list(read_jsonl(cloud.s3, S3Uri.parse(uri), missing_ok=True))


def _read_json(cloud: LocalCloud, uri: str) -> Any:
    try:
        return read_json(cloud.s3, S3Uri.parse(uri))
    except cloud.s3.exceptions.NoSuchKey:
        return {}


def _read_text(cloud: LocalCloud, uri: str) -> str:
    location = S3Uri.parse(uri)
    try:
        return str(
            cloud.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read().decode("utf-8")
        )
    except cloud.s3.exceptions.NoSuchKey:
        return ""


def run_prefix_of(stack: Stack, run_id: str) -> str:
    return f"s3://{stack.output_bucket}/{stack.parameters['OutputPrefix']}/{run_id}/"


def collect(
    cloud: LocalCloud,
    outcome: RunOutcome,
    stack: Stack,
    model_arn: str,
    run_id: str,
    transitions_before: int,
    wall_seconds: float,
) -> LocalRunResult:
    """Everything about a finished run, read back from the cloud before it closes."""
    prefix = run_prefix_of(stack, run_id)
    result = LocalRunResult(
        summary={},
        output=outcome.output,
        history=cloud.history(outcome.execution_arn),
        manifest=_read_jsonl(cloud, prefix + "output.manifest"),
        report=_read_json(cloud, prefix + "report.json"),
        skipped=_read_jsonl(cloud, prefix + "skipped.jsonl"),
        deferred=_read_jsonl(cloud, prefix + "deferred.jsonl"),
        inventory=_read_jsonl(cloud, prefix + "inventory.jsonl"),
        labeling_jobs=cloud.groundtruth.jobs,
        model_meter=cloud.rekognition.meter(model_arn),
        lambda_invocations=dict(cloud.runtime.invocations),
        model_arn=model_arn,
        stack=stack,
        run_prefix=prefix,
        extra={
            "review_jobs": _read_json(cloud, prefix + "review/jobs.json") or [],
            "reviewed": _read_jsonl(cloud, prefix + "review/reviewed.jsonl"),
            "run_state": run_state_table(cloud, stack),
            "deliveries": [d for d in cloud.events.deliveries if _about(d.event, outcome.execution_arn)],
            "auto_accepted": _read_jsonl(cloud, prefix + "review/auto_accepted.jsonl"),
            "audit": _read_jsonl(cloud, prefix + "review/audit.jsonl"),
            "predictions": [
                record
                for key in list_keys(cloud.s3, S3Uri.parse(prefix + "predictions/"))
                for record in _read_jsonl(cloud, f"s3://{S3Uri.parse(prefix).bucket}/{key}")
            ],
            "prediction_parts": sorted(list_keys(cloud.s3, S3Uri.parse(prefix + "predictions/"))),
            "report_html": _read_text(cloud, prefix + "report.html"),
            "coco": _read_json(cloud, prefix + "coco.json") or None,
            "training_state": _read_json(cloud, prefix + "training/state.json") or None,
        },
    )
    counts = result.report.get("counts", {})
    meter = result.model_meter
    result.summary = {
        "status": outcome.status,
        "error": outcome.error,
        "cause": outcome.cause,
        "execution_arn": outcome.execution_arn,
        "run_prefix": prefix,
        "images_listed": counts.get("imagesListed", len(result.inventory)),
        "images_in_manifest": counts.get("imagesInManifest", len(result.manifest)),
        "images_auto_accepted": counts.get("imagesAutoAccepted", 0),
        "images_skipped": counts.get("imagesSkipped", len(result.skipped)),
        "images_deferred": counts.get("imagesDeferred", len(result.deferred)),
        "labeling_jobs": sorted(result.labeling_jobs),
        "model_started_by_run": meter.get("start_calls", 0) > 0,
        "model_status_at_end": cloud.rekognition.status(model_arn),
        "model_running_seconds": round(meter.get("billed_seconds", 0.0), 3),
        "state_transitions": interpreter.counters.state_transitions - transitions_before,
        "lambda_invocations": sum(cloud.runtime.invocations.values()),
        "detect_calls": meter.get("detect_calls", 0),
        "throttled_calls": meter.get("throttled_calls", 0),
        "wall_seconds": round(wall_seconds, 3),
        "model_quality": result.report.get("modelQuality", {}),
        "boxes_changed_by_people": counts.get("boxesAdjusted", 0)
        + counts.get("boxesAdded", 0)
        + counts.get("boxesRemoved", 0),
        "reviewed_quality": ((result.report.get("quality") or {}).get("reviewedImages") or {}).get("overall"),
        "whole_run_quality": ((result.report.get("quality") or {}).get("wholeRun") or {}).get("overall"),
        "audit": result.report.get("audit"),
        "gate": result.report.get("gate"),
        "thresholds": (result.report.get("thresholds") or {}).get("nextRunInput"),
        "threshold_reasons": {
            label: row.get("reason")
            for label, row in ((result.report.get("thresholds") or {}).get("byLabel") or {}).items()
            if row.get("recommended") is None
        },
        "work": result.report.get("work"),
        "cost_usd": (result.report.get("cost") or {}).get("totalUsd"),
        "cost_per_labeled_image_usd": (result.report.get("cost") or {}).get("perLabeledImageUsd"),
        "cost_per_correct_image_usd": (result.report.get("cost") or {}).get("perCorrectImageUsd95"),
        "training": result.report.get("training"),
    }
    return result


def settle(cloud: LocalCloud, timeout: float = 120.0) -> None:
    """Let what an ended execution set off finish: Tasks still in flight after a stop, and the event
    rules' deliveries (the cleanup of a run that ended outside its Catch)."""
    if not executions.ends.wait_until_none_running(timeout):
        raise TimeoutError(f"executions still running after {timeout} s: {executions.ends.running_arns()}")
    cloud.events.wait_idle(timeout)


def run_state_table(cloud: LocalCloud, stack: Stack) -> dict[str, Any]:
    """What the run-state table holds about models and runs: `leases` (model ARN -> the executions
    holding it, whether the workflow started it, a stop in flight) and `activeRuns` (executions
    registered and not cleaned up or finished)."""
    leases: dict[str, dict[str, Any]] = {}
    active: list[str] = []
    for page in cloud.dynamodb.get_paginator("scan").paginate(TableName=stack.table):
        for item in page["Items"]:
            key = item["pk"]["S"]
            if key.startswith("model#"):
                leases[key.removeprefix("model#")] = {
                    "users": sorted(item.get("users", {}).get("SS", [])),
                    "startedByWorkflow": item.get("startedByWorkflow", {}).get("BOOL", False),
                    "stopping": item.get("stopping", {}).get("S"),
                }
            elif key.startswith("run#") and item.get("status", {}).get("S") == "active":
                active.append(key.removeprefix("run#"))
    return {"leases": leases, "activeRuns": sorted(active)}


def _about(event: dict[str, Any], execution_arn: str) -> bool:
    return bool(event.get("detail", {}).get("executionArn") == execution_arn)


def wait_for_model_stopped(cloud: LocalCloud, arn: str, timeout: float = 30.0) -> str:
    """The run ends when StopProjectVersion is accepted; STOPPING -> STOPPED takes a moment more."""
    deadline = time.monotonic() + timeout
    while cloud.rekognition.status(arn) == "STOPPING" and time.monotonic() < deadline:
        time.sleep(0.05)
    return cloud.rekognition.status(arn)


@contextmanager
def local_cloud(
    config: LocalCloudConfig | None = None, faults: faults_module.Faults | None = None
) -> Iterator[LocalCloud]:
    with LocalCloud(config or default_config()) as cloud:
        if faults is not None:
            faults_module.apply(cloud, faults)
        yield cloud


def execute(
    cloud: LocalCloud,
    stack: Stack,
    model_arn: str,
    run_input: dict[str, Any],
    name: str,
    timeout: float = 600,
    before_wait: Callable[[str], None] | None = None,
    on_started: Callable[[str], None] | None = None,
) -> LocalRunResult:
    """Start one execution and wait for its end. `before_wait` gets the run's folder, `on_started`
    its execution ARN (e.g. to show progress)."""
    transitions_before = interpreter.counters.state_transitions
    invocations_before = dict(cloud.runtime.invocations)
    started = time.monotonic()
    execution_arn = cloud.start(run_input, name)
    run_id = run_id_of(name, execution_arn)
    if on_started:
        on_started(execution_arn)
    if before_wait:
        before_wait(run_prefix_of(stack, run_id))
    outcome = cloud.wait(execution_arn, timeout)
    wall = time.monotonic() - started
    settle(cloud)
    result = collect(cloud, outcome, stack, model_arn, run_id, transitions_before, wall)
    # This execution's invocations (and those it set off, such as the ended-event cleanup).
    result.lambda_invocations = {
        name: count - invocations_before.get(name, 0)
        for name, count in cloud.runtime.invocations.items()
        if count > invocations_before.get(name, 0)
    }
    result.summary["lambda_invocations"] = sum(result.lambda_invocations.values())
    return result


def run_id_of(name: str, execution_arn: str) -> str:
    """The run id the workflow derives from its execution (the product's own rule)."""
    from labeling_loop.kernel.run_input import run_id_for

    return run_id_for(name, execution_arn)


def run_local(
    images_dir: Path,
    truth: Path | None,
    *,
    run_input: dict[str, Any] | None = None,
    faults: faults_module.Faults | None = None,
    config: LocalCloudConfig | None = None,
    task_type: TaskType = "detection",
    name: str = "local-run",
    timeout: float = 600,
    labelstudio: Any = None,
    reviewer_accuracy: float = DEMO.accuracy,
    unannotated_fraction: float = 0.0,
    skipped_fraction: float = 0.0,
    answers_before_checks: bool = False,
    setup: Callable[[LocalCloud, Stack], None] | None = None,
    on_started: Callable[[LocalCloud, str], None] | None = None,
) -> LocalRunResult:
    """Deploy, upload, run one execution to its end, and read everything back.

    With `reviewBackend: labelstudio` in the input, `labelstudio` is a running LabelStudioServer
    (see localcloud.services.labelstudio.backend.labelstudio_with_local_s3); emulated reviewers
    answer the run's project while the execution polls it; with `answers_before_checks`, each poll
    waits until they have answered all they will (a deadline test then knows exactly which tasks
    were left, whatever the machine's load). `setup` runs after the stack is deployed
    and the model registered (e.g. to give the project datasets); `on_started` gets the cloud and the
    execution's ARN once it started (the demo shows its phases)."""
    from localcloud.services.labelstudio.backend import EmulatedReviewers, deploy_parameters

    backend = (run_input or {}).get("reviewBackend", "groundtruth")
    if backend == "labelstudio" and labelstudio is None:
        raise ValueError("the labelstudio backend needs a running Label Studio server (labelstudio=...)")
    with local_cloud(config, faults) as cloud:
        parameters = deploy_parameters(cloud, labelstudio) if backend == "labelstudio" else None
        stack, arn, refs = prepare(cloud, images_dir, truth, task_type=task_type, parameters=parameters)
        if setup is not None:
            setup(cloud, stack)
        if faults and faults.images.get("corrupt"):
            faults_module.corrupt_images(cloud, stack.images_bucket, refs, int(faults.images["corrupt"]))
        huge_reads = None
        if faults and faults.images.get("huge"):
            huge, huge_reads = faults_module.add_huge_objects(
                cloud, stack.images_bucket, IMAGES_PREFIX, int(faults.images["huge"])
            )
        full_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            **(run_input or {}),
        }
        reviewers = None
        if backend == "labelstudio":
            reviewers = EmulatedReviewers(
                cloud,
                labelstudio,
                accuracy=reviewer_accuracy,
                unannotated_fraction=unannotated_fraction,
                skipped_fraction=skipped_fraction,
                timeout=timeout,
            )
            if answers_before_checks:
                cloud.runtime.fault_hooks.append(reviewers.hold_checks_until_answered)
        result = execute(
            cloud,
            stack,
            arn,
            full_input,
            name,
            timeout,
            before_wait=reviewers.start if reviewers else None,
            on_started=(lambda execution_arn: on_started(cloud, execution_arn)) if on_started else None,
        )
        result.summary["model_status_at_end"] = wait_for_model_stopped(cloud, arn)
        if huge_reads is not None:
            reads = huge_reads.reads
            result.extra["huge_objects"] = {ref: reads.get(S3Uri.parse(ref).key, 0) for ref in huge}
        if reviewers:
            reviewers.join(5)
            result.extra["reviewers"] = reviewers.stats
            if reviewers.error:
                result.extra["reviewers_error"] = repr(reviewers.error)
        return result


def held_out_datasets(
    folder: Path, manifest: Path, prefix: str = "heldout/"
) -> Callable[[LocalCloud, Stack], None]:
    """A `setup` that gives the model's project what an earlier turn left: held-out images with
    their truth as its TEST dataset (what both versions' F1 are measured on)."""

    def setup(cloud: LocalCloud, stack: Stack) -> None:
        cloud.upload_folder(folder, prefix)
        base = f"s3://{stack.images_bucket}/{prefix}"
        cloud.add_truth(load_truth(manifest_lines(manifest), base))
        lines = [{**line, "source-ref": base + line["source-ref"]} for line in manifest_lines(manifest)]
        cloud.rekognition.add_dataset("shapes", "TEST", lines)

    return setup


def write_outputs(result: LocalRunResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "output.manifest").write_text("".join(json.dumps(line) + "\n" for line in result.manifest))
    (out_dir / "skipped.jsonl").write_text("".join(json.dumps(line) + "\n" for line in result.skipped))
    (out_dir / "deferred.jsonl").write_text("".join(json.dumps(line) + "\n" for line in result.deferred))
    (out_dir / "report.json").write_text(json.dumps(result.report, indent=2, default=str))
    (out_dir / "report.html").write_text(str(result.extra.get("report_html") or ""))
    if result.extra.get("coco"):
        (out_dir / "coco.json").write_text(json.dumps(result.extra["coco"]))
    (out_dir / "history.json").write_text(json.dumps(result.history, indent=1, default=str))
    (out_dir / "run.json").write_text(json.dumps(result.summary, indent=2, default=str))
