"""Train the next model version from the run's manifest (`train: true`), one step per call, so the
state machine can wait between steps (training takes 30 minutes to 24 hours, docs/aws-facts.md §1.6).

Steps (docs/aws-facts.md §1.7, §1.8, §1.9):
1. find the project and its TRAIN dataset (DescribeProjects). Without one, CreateDataset(TRAIN)
   from the manifest; with one, UpdateDatasetEntries in chunks under the 5 MB limit, one chunk per
   call, each after the dataset has left UPDATE_IN_PROGRESS (ResourceInUseException while busy).
   A line whose source-ref is already in the dataset replaces it, so a repeated chunk is harmless.
   Whether the project has a TEST dataset is noted, and where the current version's testing
   snapshot is. The run never creates a TEST dataset: without one, the comparison says it is not
   possible and how to get one.
2. CreateProjectVersion once the dataset is CREATE_COMPLETE or UPDATE_COMPLETE.
3. DescribeProjectVersions until TRAINING_COMPLETED or TRAINING_FAILED; then the two versions are
   compared image by image on the same frozen test set (evaluation/promotion.py) and, with
   promoteIfBetter, the new one is promoted only when the 95 % interval of the F1 difference lies
   above 0. The new version is left as training leaves it (not started): the next run uses it when
   its input or the stack names it.

Progress lives in `training/state.json` of the run folder; the state machine carries only `done`,
the status, the two F1 values, the decision and the difference with its interval. Nothing here
fails the run: a training that cannot start or fails is reported with its error, and the manifest
stays.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from labeling_loop.evaluation.promotion import compare_versions, decide, snapshot_uris
from labeling_loop.finishing.report.cost import RunUsage, run_cost
from labeling_loop.finishing.report.publish import publish
from labeling_loop.inference.model_control import ModelRef, describe, find_project_arn
from labeling_loop.kernel.aws_clients import error_code
from labeling_loop.kernel.jsonl import read_json, write_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.kernel.s3_uri import S3Uri

# UpdateDatasetEntries takes < 5 MB of JSON Lines per call (docs/aws-facts.md §1.7).
CHUNK_BYTES = 5_000_000
DATASET_BUSY = {"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"}
DATASET_READY = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
DATASET_FAILED = {"CREATE_FAILED", "UPDATE_FAILED"}
TRAINING = "TRAINING_IN_PROGRESS"
TRAINED, TRAINING_FAILED = "TRAINING_COMPLETED", "TRAINING_FAILED"


def version_name(config: RunConfig) -> str:
    """The new version's name: `<jobNamePrefix>-<runId>` ([a-zA-Z0-9_.-], 1-255, §1.8)."""
    return f"{config.jobNamePrefix}-{config.runId}"[:255]


def _load(s3: Any, layout: RunLayout) -> dict[str, Any]:
    try:
        return dict(read_json(s3, layout.training_state))
    except s3.exceptions.NoSuchKey:
        return {}


def summary(state: Mapping[str, Any]) -> dict[str, Any]:
    """What the state machine carries: small and fixed in size (the comparison's figures, not its images)."""
    comparison = state.get("comparison") or {}
    return {
        "done": bool(state.get("done")),
        "status": str(state.get("status", "")),
        "previousF1": state.get("previousF1"),
        "newF1": state.get("newF1"),
        "newProjectVersionArn": state.get("newProjectVersionArn"),
        "decision": state.get("decision"),
        "comparison": {k: comparison.get(k) for k in ("possible", "testImages", "difference")}
        if comparison
        else None,
        "error": state.get("error"),
    }


def start(
    s3: Any, rekognition: Any, config: RunConfig, images_in_manifest: int, now: float
) -> dict[str, Any]:
    """Find the project and its training dataset, record the current version's F1, then step once."""
    layout = config.layout()
    state = _load(s3, layout)
    if state:  # a retried start: carry on from where it is
        return advance(s3, rekognition, config, now)
    state = {"phase": "dataset", "offset": 0, "startedAt": now, "versionName": version_name(config)}
    if images_in_manifest == 0:
        return _finish(
            s3, config, {**state, "status": "SKIPPED", "error": "the manifest is empty: nothing to train on"}
        )
    model = ModelRef.of(config.projectVersionArn)
    project_arn = find_project_arn(rekognition, model.project)
    current = describe(rekognition, project_arn, model)
    state["projectArn"] = project_arn
    state["previousF1"] = _f1(current)
    state["previousTesting"] = [str(uri) for uri in snapshot_uris(current, "TestingDataResult")]
    project = rekognition.describe_projects(ProjectNames=[model.project])["ProjectDescriptions"][0]
    datasets = project.get("Datasets") or []
    state["hasTestDataset"] = any(d.get("DatasetType") == "TEST" for d in datasets)
    train = [d for d in datasets if d.get("DatasetType") == "TRAIN"]
    if train:
        state["datasetArn"] = train[0]["DatasetArn"]
    else:
        manifest = layout.manifest
        created = rekognition.create_dataset(
            ProjectArn=project_arn,
            DatasetType="TRAIN",
            DatasetSource={
                "GroundTruthManifest": {"S3Object": {"Bucket": manifest.bucket, "Name": manifest.key}}
            },
        )
        state["datasetArn"] = created["DatasetArn"]
        state["offset"] = -1  # the whole manifest went in with CreateDataset
    state["status"] = "UPDATING_DATASET"
    write_json(s3, layout.training_state, state)
    return advance(s3, rekognition, config, now)


def advance(s3: Any, rekognition: Any, config: RunConfig, now: float) -> dict[str, Any]:
    layout = config.layout()
    state = _load(s3, layout)
    if not state or state.get("done"):
        return summary(state)
    if state["phase"] == "dataset":
        state = _dataset_step(s3, rekognition, config, state)
    if state["phase"] == "training" and not state.get("done"):
        state = _training_step(s3, rekognition, config, state, now)
    if state.get("done"):
        return _finish(s3, config, state)
    write_json(s3, layout.training_state, state)
    return summary(state)


def fail(s3: Any, config: RunConfig, error: Mapping[str, Any] | None) -> dict[str, Any]:
    """The training steps raised (the definition's Catch): record why; the manifest stays."""
    state = _load(s3, config.layout())
    error = error or {}
    message = f"{error.get('Error', 'TrainingError')}: {str(error.get('Cause', ''))[:1000]}"
    return _finish(s3, config, {**state, "status": "FAILED", "error": message})


def _dataset_step(s3: Any, rekognition: Any, config: RunConfig, state: dict[str, Any]) -> dict[str, Any]:
    described = rekognition.describe_dataset(DatasetArn=state["datasetArn"])["DatasetDescription"]
    status = described.get("Status")
    if status in DATASET_FAILED:
        return {
            **state,
            "done": True,
            "status": "DATASET_FAILED",
            "error": f"{status}: {described.get('StatusMessage', '')}",
        }
    if status in DATASET_BUSY or status not in DATASET_READY:
        return state
    manifest = config.layout().manifest
    if state["offset"] >= 0:
        size = int(s3.head_object(Bucket=manifest.bucket, Key=manifest.key)["ContentLength"])
        if state["offset"] < size:
            end = min(size, state["offset"] + CHUNK_BYTES) - 1
            body = s3.get_object(
                Bucket=manifest.bucket, Key=manifest.key, Range=f"bytes={state['offset']}-{end}"
            )
            chunk = body["Body"].read()
            if end + 1 < size:  # whole lines only
                chunk = chunk[: chunk.rfind(b"\n") + 1]
            try:
                rekognition.update_dataset_entries(
                    DatasetArn=state["datasetArn"], Changes={"GroundTruth": chunk}
                )
            except ClientError as error:
                if error_code(error) == "ResourceInUseException":
                    return state  # still busy with the previous chunk: next poll
                raise
            return {
                **state,
                "offset": state["offset"] + len(chunk),
                "chunks": int(state.get("chunks", 0)) + 1,
            }
    return _create_version(rekognition, config, state)


def _create_version(rekognition: Any, config: RunConfig, state: dict[str, Any]) -> dict[str, Any]:
    output = config.layout().training_output
    try:
        created = rekognition.create_project_version(
            ProjectArn=state["projectArn"],
            VersionName=state["versionName"],
            OutputConfig={"S3Bucket": output.bucket, "S3KeyPrefix": output.key},
        )
        arn = created["ProjectVersionArn"]
    except ClientError as error:
        if error_code(error) != "ResourceInUseException":
            raise
        arn = _find_version(rekognition, state)  # a retried step: the version exists
    return {**state, "phase": "training", "status": TRAINING, "newProjectVersionArn": arn}


def _find_version(rekognition: Any, state: Mapping[str, Any]) -> str:
    response = rekognition.describe_project_versions(
        ProjectArn=state["projectArn"], VersionNames=[state["versionName"]]
    )
    versions = response.get("ProjectVersionDescriptions") or []
    if not versions:
        raise RuntimeError(f"version {state['versionName']} refused as in use but not found")
    return str(versions[0]["ProjectVersionArn"])


def _training_step(
    s3: Any, rekognition: Any, config: RunConfig, state: dict[str, Any], now: float
) -> dict[str, Any]:
    response = rekognition.describe_project_versions(
        ProjectArn=state["projectArn"], VersionNames=[state["versionName"]]
    )
    version = (response.get("ProjectVersionDescriptions") or [{}])[0]
    status = str(version.get("Status", TRAINING))
    state = {**state, "status": status, "trainingSeconds": version.get("BillableTrainingTimeInSeconds")}
    if status == TRAINED:
        state["newF1"] = _f1(version)
        comparison = compare_versions(
            s3,
            [S3Uri.parse(uri) for uri in state.get("previousTesting") or []],
            version,
            has_test_dataset=bool(state.get("hasTestDataset")),
        )
        state["comparison"] = comparison
        state["decision"] = decide(
            comparison, config.promoteIfBetter, config.projectVersionArn, state["newProjectVersionArn"]
        )
        return {**state, "done": True}
    if status == TRAINING_FAILED:
        return {**state, "done": True, "error": str(version.get("StatusMessage", "training failed"))}
    if now - float(state["startedAt"]) > config.trainingTimeoutHours * 3600:
        return {
            **state,
            "done": True,
            "error": f"still {status} after trainingTimeoutHours {config.trainingTimeoutHours:g}: "
            f"training goes on; DescribeProjectVersions on {state['newProjectVersionArn']} "
            "tells when it ends",
        }
    return state


def _f1(version: Mapping[str, Any]) -> float | None:
    score = (version.get("EvaluationResult") or {}).get("F1Score")
    return round(float(score), 4) if score is not None else None


def _finish(s3: Any, config: RunConfig, state: dict[str, Any]) -> dict[str, Any]:
    """Record the outcome in training/state.json and in the report (json and html)."""
    layout = config.layout()
    state = {**state, "done": True}
    write_json(s3, layout.training_state, state)
    try:
        report = dict(read_json(s3, layout.report))
    except s3.exceptions.NoSuchKey:
        return summary(state)
    seconds = state.get("trainingSeconds")
    report["training"] = {
        **summary(state),
        "versionName": state.get("versionName"),
        "datasetArn": state.get("datasetArn"),
        "chunksSent": state.get("chunks", 0),
        "trainingHours": round(float(seconds) / 3600, 3) if seconds else None,
        "comparison": state.get("comparison"),
    }
    if seconds:
        cost = report.get("cost") or {}
        usage = RunUsage(
            images_reviewed_by_people=0, batches=0, images_labeled=0, training_seconds=float(seconds)
        )
        extra = run_cost(usage, config.reviewBackend)["training"]
        total = round(float(cost.get("totalUsd") or 0) + extra["usd"], 4)
        labeled = (report.get("counts") or {}).get("imagesInManifest") or 0
        report["cost"] = {**cost, "training": extra, "totalUsd": total,
                          "perLabeledImageUsd": round(total / labeled, 5) if labeled else None}  # fmt: skip
    if state.get("error"):
        report["warnings"] = [*report.get("warnings", []), f"training: {state['error']}"]
    publish(s3, layout, report)
    return summary(state)


def now() -> float:
    return time.time()
