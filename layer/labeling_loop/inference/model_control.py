"""Start, watch and stop the Custom Labels model for one run.

The model is billed per inference-unit hour from start to stop, idle time included
(docs/aws-facts.md §1.1), so a run starts it only when it is stopped, and the last run holding a
lease stops it right after inference. Status values: docs/aws-facts.md §1.3; errors: §1.1, §1.2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from labeling_loop.aws_clients import error_code
from labeling_loop.errors import (
    ModelNotFoundError,
    ModelStartFailedError,
    ModelStartTimeoutError,
    ModelTransitionError,
)
from labeling_loop.inference import model_lease
from labeling_loop.run_config import RunConfig

STARTABLE = {"STOPPED", "TRAINING_COMPLETED", "COPYING_COMPLETED"}
WAITING = {"STARTING", "STOPPING"}
BROKEN = {"FAILED", "TRAINING_FAILED", "DELETING", "DEPRECATED", "EXPIRED", "COPYING_FAILED"}
# A refused StopProjectVersion on these means the model is not running: nothing left to stop.
NOTHING_TO_STOP = STARTABLE | BROKEN | {"STOPPING"}


@dataclass(frozen=True)
class ModelState:
    status: str
    started_by_run: bool
    deadline: int
    project_arn: str
    inference_units: int
    map_concurrency: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "startedByRun": self.started_by_run,
            "deadline": self.deadline,
            "projectArn": self.project_arn,
            "inferenceUnits": self.inference_units,
            "mapConcurrency": self.map_concurrency,
        }


def find_project_arn(rekognition: Any, project_name: str) -> str:
    """The project ARN carries its own timestamp, so it cannot be derived from the version ARN."""
    paginator = rekognition.get_paginator("describe_projects")
    for page in paginator.paginate(ProjectNames=[project_name]):
        for project in page.get("ProjectDescriptions", []):
            return str(project["ProjectArn"])
    raise ModelNotFoundError(f"projectVersionArn: no Custom Labels project named {project_name!r}")


def describe(rekognition: Any, project_arn: str, config: RunConfig) -> dict[str, Any]:
    response = rekognition.describe_project_versions(
        ProjectArn=project_arn, VersionNames=[config.version_name]
    )
    for version in response.get("ProjectVersionDescriptions", []):
        if version["ProjectVersionArn"] == config.projectVersionArn:
            return dict(version)
    raise ModelNotFoundError(f"projectVersionArn: no model version {config.projectVersionArn}")


def _start(rekognition: Any, dynamodb: Any, table: str, config: RunConfig) -> bool:
    """Start the model; False when another run started it a moment earlier."""
    try:
        rekognition.start_project_version(
            ProjectVersionArn=config.projectVersionArn, MinInferenceUnits=config.minInferenceUnits
        )
    except ClientError as error:
        if error_code(error) == "ResourceInUseException":
            return False
        raise
    model_lease.mark_started(dynamodb, table, config.projectVersionArn, config.runId)
    return True


def _state(
    version: dict[str, Any], config: RunConfig, project_arn: str, started: bool, deadline: int
) -> ModelState:
    units = int(version.get("MinInferenceUnits") or config.minInferenceUnits)
    if version["Status"] == "RUNNING":
        # A model someone else started may run on other units than this run asked for.
        units = max(units, int(version.get("MaxInferenceUnits") or units))
    return ModelState(
        status=str(version["Status"]),
        started_by_run=started,
        deadline=deadline,
        project_arn=project_arn,
        inference_units=units,
        map_concurrency=max(1, units * config.batchesPerInferenceUnit),
    )


def acquire(rekognition: Any, dynamodb: Any, table: str, config: RunConfig, now: float) -> ModelState:
    """Take this run's lease and start the model if it is stopped."""
    run_id = config.runId
    model_lease.acquire(dynamodb, table, config.projectVersionArn, run_id)
    try:
        project_arn = find_project_arn(rekognition, config.project_name)
        version = describe(rekognition, project_arn, config)
    except ModelNotFoundError:
        model_lease.release(dynamodb, table, config.projectVersionArn, run_id)
        raise
    deadline = int(now + config.modelStartTimeoutMinutes * 60)
    status = version["Status"]
    started = False
    if status in BROKEN:
        raise ModelStartFailedError(
            f"model {config.projectVersionArn} is {status}: {version.get('StatusMessage', '')}".strip()
        )
    if status in STARTABLE:
        started = _start(rekognition, dynamodb, table, config)
        version = {**version, "Status": "STARTING"}
    return _state(version, config, project_arn, started, deadline)


def check(
    rekognition: Any, dynamodb: Any, table: str, config: RunConfig, previous: dict[str, Any], now: float
) -> ModelState:
    """One poll while waiting for RUNNING: restarts a model that finished stopping, enforces the deadline."""
    project_arn = str(previous["projectArn"])
    started = bool(previous["startedByRun"])
    deadline = int(previous["deadline"])
    version = describe(rekognition, project_arn, config)
    status = version["Status"]
    if status == "FAILED" or status in BROKEN:
        # A model that failed to start is not running and StopProjectVersion refuses it: drop the
        # stop duty, or the cleanup would retry the stop until it gives up (CleanupFailedError).
        model_lease.clear_stop_duty(dynamodb, table, config.projectVersionArn)
        raise ModelStartFailedError(
            f"model {config.projectVersionArn} went to {status}: {version.get('StatusMessage', '')}".strip()
        )
    if status in STARTABLE:
        # It was stopping when this run acquired it (another run had just released it).
        started = _start(rekognition, dynamodb, table, config) or started
        version = {**version, "Status": "STARTING"}
    if version["Status"] != "RUNNING" and now > deadline:
        raise ModelStartTimeoutError(
            f"model {config.projectVersionArn} not RUNNING after {config.modelStartTimeoutMinutes} minutes "
            f"(status {version['Status']}); see modelStartTimeoutMinutes"
        )
    return _state(version, config, project_arn, started, deadline)


def release(rekognition: Any, dynamodb: Any, table: str, config: RunConfig) -> dict[str, Any]:
    """Give up this run's lease; stop the model if this was the last run and the workflow started it."""
    run_id = config.runId
    must_stop = model_lease.release(dynamodb, table, config.projectVersionArn, run_id)
    if not must_stop:
        return {"stopped": False, "status": "LEFT_RUNNING_OR_STOPPED"}
    try:
        response = rekognition.stop_project_version(ProjectVersionArn=config.projectVersionArn)
    except ClientError as error:
        code = error_code(error)
        if code == "ResourceNotFoundException":
            return {"stopped": False, "status": "NOT_FOUND"}
        if code == "ResourceInUseException":
            # Refused: either it is between states (starting: stop it once it can be stopped) or
            # there is nothing to stop (it stopped or failed under us). Only the status tells.
            project_arn = find_project_arn(rekognition, config.project_name)
            status = str(describe(rekognition, project_arn, config)["Status"])
            if status in NOTHING_TO_STOP:
                return {"stopped": False, "status": status}
            model_lease.restore_stop_duty(dynamodb, table, config.projectVersionArn, run_id)
            raise ModelTransitionError(
                f"model {config.projectVersionArn} is {status} and cannot be stopped yet"
            ) from None
        model_lease.restore_stop_duty(dynamodb, table, config.projectVersionArn, run_id)
        raise
    return {"stopped": True, "status": str(response.get("Status", "STOPPING"))}


def now() -> float:
    return time.time()
