"""Start, watch and stop the Custom Labels model for one run, under the leases of model_lease.

The model is billed per inference-unit hour from start to stop, idle time included
(docs/aws-facts.md §1.1), so a run starts it only when it is stopped, and the last execution holding
a lease stops it right after inference. The same stop runs from the failure path, from the
execution-ended event and from the sweep (`stop_if_unused`), so a run that ends outside its Catch
(aborted, timed out) still leaves no model running. Status values: docs/aws-facts.md §1.3; errors:
§1.1, §1.2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labeling_loop.inference import model_lease
from labeling_loop.inference.fan_out import plan_batches
from labeling_loop.kernel.aws_clients import error_code
from labeling_loop.kernel.errors import (
    ModelNotFoundError,
    ModelStartFailedError,
    ModelStartTimeoutError,
    ModelTransitionError,
)
from labeling_loop.kernel.run_config import PROJECT_VERSION_ARN, RunConfig
from labeling_loop.lifecycle.services import Services

if TYPE_CHECKING:
    from types_boto3_cloudwatch import CloudWatchClient
    from types_boto3_rekognition import RekognitionClient
    from types_boto3_stepfunctions import SFNClient

STARTABLE = {"STOPPED", "TRAINING_COMPLETED", "COPYING_COMPLETED"}
WAITING = {"STARTING", "STOPPING"}
BROKEN = {"FAILED", "TRAINING_FAILED", "DELETING", "DEPRECATED", "EXPIRED", "COPYING_FAILED"}
# CloudWatch: the units a model actually runs on (docs/aws-facts.md §1.6).
IN_SERVICE_METRIC = "InServiceInferenceUnits"


@dataclass(frozen=True)
class ModelRef:
    arn: str
    project: str
    version: str

    @classmethod
    def of(cls, arn: str) -> ModelRef:
        match = PROJECT_VERSION_ARN.fullmatch(arn)
        if match is None:
            raise ModelNotFoundError(f"projectVersionArn: {arn!r} is not a model version ARN")
        return cls(arn, match["project"], match["version"])


@dataclass(frozen=True)
class ModelState:
    status: str
    started_by_run: bool
    deadline: int
    project_arn: str
    inference_units: int
    # The fan-out's items (inference.plan), for the units in service; one wave, so all run at once.
    batches: list[dict[str, Any]]
    acquired_at: float = 0.0  # when the run took its lease: the start of its model time (cost)

    @property
    def map_concurrency(self) -> int:
        return max(1, len(self.batches))

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "startedByRun": self.started_by_run,
            "deadline": self.deadline,
            "projectArn": self.project_arn,
            "inferenceUnits": self.inference_units,
            "mapConcurrency": self.map_concurrency,
            "acquiredAt": round(self.acquired_at, 3),
            "batches": self.batches,
        }


def find_project_arn(rekognition: RekognitionClient, project_name: str) -> str:
    """The project ARN carries its own timestamp, so it cannot be derived from the version ARN."""
    paginator = rekognition.get_paginator("describe_projects")
    for page in paginator.paginate(ProjectNames=[project_name]):
        for project in page.get("ProjectDescriptions", []):
            return str(project["ProjectArn"])
    raise ModelNotFoundError(f"projectVersionArn: no Custom Labels project named {project_name!r}")


def describe(rekognition: RekognitionClient, project_arn: str, model: ModelRef) -> dict[str, Any]:
    response = rekognition.describe_project_versions(ProjectArn=project_arn, VersionNames=[model.version])
    for version in response.get("ProjectVersionDescriptions", []):
        if version["ProjectVersionArn"] == model.arn:
            return dict(version)
    raise ModelNotFoundError(f"projectVersionArn: no model version {model.arn}")


def status_of(rekognition: RekognitionClient, model: ModelRef) -> str:
    return str(describe(rekognition, find_project_arn(rekognition, model.project), model)["Status"])


def start(services: Services, config: RunConfig) -> bool:
    """Start the model, the stop duty recorded first; False when another run started it a moment
    earlier (its duty is the same record, so it stays). Once Rekognition has answered, the call is
    no longer pending: a cleanup that finds the model stopped may then clear the duty."""
    model_lease.record_start(services.dynamodb, services.table, config.projectVersionArn, config.executionArn)
    try:
        services.rekognition.start_project_version(
            ProjectVersionArn=config.projectVersionArn, MinInferenceUnits=config.minInferenceUnits
        )
    except ClientError as error:
        model_lease.start_returned(
            services.dynamodb, services.table, config.projectVersionArn, config.executionArn
        )
        if error_code(error) == "ResourceInUseException":
            return False
        raise
    model_lease.start_returned(
        services.dynamodb, services.table, config.projectVersionArn, config.executionArn
    )
    return True


def in_service_units(metrics: CloudWatchClient | None, model: ModelRef, now: float) -> int | None:
    """The latest InServiceInferenceUnits of the model (auto-scaling may have added units), or None
    when CloudWatch has no datapoint yet."""
    if metrics is None:
        return None
    end = datetime.fromtimestamp(now, UTC)
    response = metrics.get_metric_statistics(
        Namespace="AWS/Rekognition",
        MetricName=IN_SERVICE_METRIC,
        Dimensions=[
            {"Name": "ProjectName", "Value": model.project},
            {"Name": "VersionName", "Value": model.version},
        ],
        StartTime=end - timedelta(minutes=15),
        EndTime=end,
        Period=60,
        Statistics=["Minimum"],
    )
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return int(points[-1]["Minimum"]) if points else None


@dataclass(frozen=True)
class _Hold:
    """What a run knows of its hold on the model between polls (kept in `$.model`)."""

    project_arn: str
    started: bool  # this run started the model
    deadline: int  # epoch seconds by which it must be RUNNING
    acquired_at: float


def _state(
    services: Services, config: RunConfig, version: dict[str, Any], hold: _Hold, now: float, images: int
) -> ModelState:
    started = hold.started
    units = config.minInferenceUnits if started else int(version.get("MinInferenceUnits") or 1)
    if version["Status"] == "RUNNING" and not started:
        # A model someone else started runs on what is in service now (auto-scaling between its
        # Min and Max); the floor when CloudWatch has nothing yet. Never the Max it may not reach.
        measured = in_service_units(services.metrics, ModelRef.of(config.projectVersionArn), now)
        units = measured or units
    return ModelState(
        status=str(version["Status"]),
        started_by_run=started,
        deadline=hold.deadline,
        project_arn=hold.project_arn,
        inference_units=units,
        batches=[batch.to_dict() for batch in plan_batches(images, units)],
        acquired_at=hold.acquired_at,
    )


def acquire(services: Services, config: RunConfig, now: float, images: int) -> ModelState:
    """Take this run's lease and start the model if it is stopped. `images`: how many the run infers
    (the fan-out is planned for them and the units in service)."""
    model = ModelRef.of(config.projectVersionArn)
    lease = model_lease.acquire(services.dynamodb, services.table, model.arn, config.executionArn)
    try:
        project_arn = find_project_arn(services.rekognition, model.project)
        version = describe(services.rekognition, project_arn, model)
    except ModelNotFoundError:
        model_lease.leave(services.dynamodb, services.table, model.arn, config.executionArn)
        raise
    if lease.stopping:
        # Another execution decided to stop the model just before this run took its lease: finish
        # that stop (it may already be under way) and start the model again once it has stopped. A
        # model that cannot be stopped now (starting) is this run's to use: the decision is dropped.
        if _stop(services, model, who=lease.stopping).get("stopPending"):
            model_lease.withdraw_stop(services.dynamodb, services.table, model.arn, lease.stopping)
        version = describe(services.rekognition, project_arn, model)
    deadline = int(now + config.modelStartTimeoutMinutes * 60)
    status = version["Status"]
    started = False
    if status in BROKEN:
        raise ModelStartFailedError(
            f"model {model.arn} is {status}: {version.get('StatusMessage', '')}".strip()
        )
    if status in STARTABLE:
        started = start(services, config)
        version = {**version, "Status": "STARTING"}
    return _state(services, config, version, _Hold(project_arn, started, deadline, now), now, images)


def check(
    services: Services, config: RunConfig, previous: dict[str, Any], now: float, images: int
) -> ModelState:
    """One poll while waiting for RUNNING: restarts a model that finished stopping, enforces the deadline."""
    model = ModelRef.of(config.projectVersionArn)
    project_arn = str(previous["projectArn"])
    started = bool(previous["startedByRun"])
    deadline = int(previous["deadline"])
    version = describe(services.rekognition, project_arn, model)
    status = version["Status"]
    if status in BROKEN:
        # A model that failed to start is not running and StopProjectVersion refuses it: drop the
        # stop duty, or every later stop would be refused until it gives up.
        model_lease.clear_stop_duty(services.dynamodb, services.table, model.arn)
        raise ModelStartFailedError(
            f"model {model.arn} went to {status}: {version.get('StatusMessage', '')}".strip()
        )
    if status in STARTABLE:
        # It was stopping when this run acquired it (another run had just released it).
        started = start(services, config) or started
        version = {**version, "Status": "STARTING"}
    if version["Status"] != "RUNNING" and now > deadline:
        raise ModelStartTimeoutError(
            f"model {model.arn} not RUNNING after {config.modelStartTimeoutMinutes} minutes "
            f"(status {version['Status']}); see modelStartTimeoutMinutes"
        )
    acquired_at = float(previous.get("acquiredAt") or now)
    hold = _Hold(project_arn, started, deadline, acquired_at)
    return _state(services, config, version, hold, now, images)


def release(
    services: Services, config: RunConfig, now: float | None = None, wait: bool = True
) -> dict[str, Any]:
    """Give up this run's lease; stop the model if no live execution needs it and the workflow
    started it. A stop that cannot be made yet (the model is starting) raises ModelTransitionError
    when `wait`, which the state's Retry waits out: the run's own release and its Catch cleanup wait
    until they can stop. Without `wait` (the execution-ended cleanup) the answer says `stopPending`
    and the sweep stops the model once it can."""
    model = ModelRef.of(config.projectVersionArn)
    model_lease.leave(services.dynamodb, services.table, model.arn, config.executionArn)
    result = stop_if_unused(services, model, who=config.executionArn, now=now)
    if wait and result.get("stopPending"):
        raise ModelTransitionError(f"model {model.arn} is {result['status']} and cannot be stopped yet")
    return result


def usage(held: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """The model time a run used, from its `$.model`: seconds from acquiring to releasing, and the
    units (the report's cost). Zero for a run that never held the model."""
    held = held or {}
    acquired = float(held.get("acquiredAt") or 0)
    return {
        "modelSeconds": round(max(0.0, now - acquired), 3) if acquired else 0.0,
        "inferenceUnits": int(held.get("inferenceUnits") or 0),
        "startedByRun": bool(held.get("startedByRun")),
    }


def live(executions: SFNClient, execution_arn: str) -> bool:
    """Is this lease holder still running? Anything but a definite answer counts as alive: a model
    is never stopped under an execution that might still need it."""
    try:
        status = executions.describe_execution(executionArn=execution_arn)["status"]
    except ClientError as error:
        return error_code(error) != "ExecutionDoesNotExist"
    return bool(status == "RUNNING")


def _gone(executions: SFNClient, decider: str) -> bool:
    """A stop decider that will not finish its stop: an execution that ended (the sweep, which is
    no execution, counts as gone: any caller may finish its decision)."""
    return decider == model_lease.SWEEP or not live(executions, decider)


def stop_if_unused(services: Services, model: ModelRef, who: str, now: float | None = None) -> dict[str, Any]:
    """Stop the model when no live execution holds a lease and the workflow started it. Holders that
    ended without releasing (aborted, timed out) are pruned first. Safe to call from anywhere, any
    number of times: one caller decides the stop (taking over the decision of a caller that is
    gone); the decision is recorded before the call. `stopPending` in the answer: the model could
    not be stopped yet (it is starting, or a start call may still come) and the duty stays."""
    now = time.time() if now is None else now
    lease = model_lease.read(services.dynamodb, services.table, model.arn)
    dead = {user for user in lease.users if user != who and not live(services.executions, user)}
    if dead:
        lease = model_lease.leave(services.dynamodb, services.table, model.arn, *dead)
    if lease.users or not lease.started_by_workflow:
        return {"stopped": False, "status": "LEFT_RUNNING_OR_STOPPED", "prunedUsers": len(dead)}
    gone = lease.stopping if lease.stopping and lease.stopping != who else None
    takeover = gone if gone and _gone(services.executions, gone) else None
    if not model_lease.decide_stop(services.dynamodb, services.table, model.arn, who, int(now), takeover):
        return {"stopped": False, "status": "STOP_DECIDED_ELSEWHERE", "prunedUsers": len(dead)}
    return {**_stop(services, model, who, now), "prunedUsers": len(dead)}


def _stop(services: Services, model: ModelRef, who: str, now: float | None = None) -> dict[str, Any]:
    """Carry out `who`'s decided stop, by the model's status (AWS documents stopping a running model,
    docs/aws-facts.md §1.2; what it answers for a model in any other state is not documented, §8):

    - RUNNING: StopProjectVersion; the duty is fulfilled once the call went through;
    - STARTING: not yet: the decision and the duty stay (`stopPending`);
    - stopped, stopping or never started: the duty is cleared, unless a StartProjectVersion call may
      still reach Rekognition (recorded, not returned, and its invocation may be alive): then the
      decision is dropped and the duty stays, for the next caller to stop what that start starts;
    - failed or otherwise broken: nothing runs and nothing will: the duty is cleared.
    """
    now = time.time() if now is None else now
    try:
        status = status_of(services.rekognition, model)
    except ModelNotFoundError:
        model_lease.stop_done(services.dynamodb, services.table, model.arn, who)
        return {"stopped": False, "status": "NOT_FOUND"}
    if status == "RUNNING":
        try:
            response = services.rekognition.stop_project_version(ProjectVersionArn=model.arn)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                model_lease.stop_done(services.dynamodb, services.table, model.arn, who)
                return {"stopped": False, "status": "NOT_FOUND"}
            if error_code(error) != "ResourceInUseException":
                raise
            # It changed state between the describe and the stop: decide again on what it is now.
            status = status_of(services.rekognition, model)
            if status == "RUNNING":
                raise ModelTransitionError(f"model {model.arn} refused the stop while RUNNING") from None
        else:
            model_lease.stop_done(services.dynamodb, services.table, model.arn, who)
            return {"stopped": True, "status": str(response.get("Status", "STOPPING"))}
    if status == "STARTING":
        return {"stopped": False, "status": status, "stopPending": True}
    lease = model_lease.read(services.dynamodb, services.table, model.arn)
    if status not in BROKEN and lease.start_may_come(now):
        model_lease.withdraw_stop(services.dynamodb, services.table, model.arn, who)
        return {"stopped": False, "status": status, "stopPending": True}
    model_lease.stop_done(services.dynamodb, services.table, model.arn, who)
    return {"stopped": False, "status": status}


def now() -> float:
    return time.time()
