"""Give back what a run holds when it ends without finishing: from its own failure path (the Catch),
from the execution-ended event (aborted, timed out, failed outside a Catch) and from the sweep.
Idempotent: any number of calls, from any of these, do no harm.

In order: stop the run's labeling jobs still in progress; release its model lease (stopping the
model when no live execution needs it and the workflow started it); release its image claims,
except those of images whose labeling job could not be stopped (people may still review them).
A run with a job that could not be stopped stays registered, so the sweep tries again until the
job has ended; a model that cannot be stopped yet (starting) keeps its stop duty: the Catch path's
Retry waits for it, the execution-ended cleanup waits within its invocation, and the sweep carries
out whatever is left once it can.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from labeling_loop.inference import claims, model_control, model_lease
from labeling_loop.kernel import errors as error_types
from labeling_loop.kernel.aws_clients import error_code
from labeling_loop.kernel.errors import ModelTransitionError
from labeling_loop.kernel.jsonl import read_json
from labeling_loop.kernel.run_config import RunConfig, from_state
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.lifecycle import run_records
from labeling_loop.lifecycle.services import Services
from labeling_loop.review.backend import ReviewServices

# A model the sweep could not stop counts as running unheld in these statuses (UNKNOWN: the sweep's
# calls failed, so it may well be running).
UNHELD_STATUSES = frozenset({"STARTING", "RUNNING", "UNKNOWN"})


# A model found STARTING is stopped once it runs (AWS stops running models, docs/aws-facts.md §1.2):
# the execution-ended cleanup looks again every START_POLL_S while its invocation has more than
# RESERVE_S left, then leaves the rest to the sweep.
START_POLL_S = 2.0
RESERVE_S = 30.0


@dataclass(frozen=True)
class StopWaiting:
    """How a cleanup waits for a model it cannot stop yet. `raise_while_pending`: raise
    ModelTransitionError (the Catch path, whose Retry waits). Otherwise a starting model is waited
    for while `seconds_left` allows, and past that the answer says so and the sweep stops the model."""

    raise_while_pending: bool = True
    seconds_left: Callable[[], float] | None = None
    sleep: Callable[[float], None] = time.sleep


CATCH_PATH = StopWaiting()


def clean_up(
    services: Services,
    s3: Any,
    sagemaker: Any,
    config: RunConfig,
    error: dict[str, Any] | None,
    waiting: StopWaiting = CATCH_PATH,
) -> dict[str, Any]:
    layout = config.layout()
    review = config.backend.stop_review(ReviewServices(s3, sagemaker=sagemaker), layout)
    released = model_control.release(services, config, wait=waiting.raise_while_pending)
    model = model_control.ModelRef.of(config.projectVersionArn)
    seconds_left = waiting.seconds_left
    while (
        released.get("stopPending")
        and released["status"] == "STARTING"
        and seconds_left is not None
        and seconds_left() > RESERVE_S + START_POLL_S
    ):
        waiting.sleep(START_POLL_S)
        released = model_control.stop_if_unused(services, model, who=config.executionArn)
    released_claims = 0
    if config.incremental:
        released_claims = claims.release_all(
            services.dynamodb, services.table, s3, layout, config.runId, keep=review.images_in_review
        )
    if not review.unstoppable:
        run_records.finish(services.dynamodb, services.table, config.executionArn, run_records.CLEANED_UP)
    name, cause = failure_name(error)
    return {
        "modelStopped": released["stopped"],
        "modelStatus": released["status"],
        "modelStopPending": bool(released.get("stopPending")),
        "claimsReleased": released_claims,
        **review.to_dict(),
        "error": name,
        "cause": cause,
    }


def failure_name(error: dict[str, Any] | None) -> tuple[str, str]:
    """The (error, cause) the execution fails with. Step Functions reserves `States.` names, and a
    Fail state may not raise them, so `States.Timeout` becomes `StatesTimeoutError`; the cause
    always starts with the original name, so nothing is lost. An error the workflow raises on
    purpose (errors.py) says all in its message: the cause is that one line, not the Lambda
    runtime's JSON with its stack trace (an unexpected error keeps it, for whoever debugs it)."""
    error = error or {}
    name = str(error.get("Error") or "RunFailedError")
    cause = _own_message(str(error.get("Cause") or ""))
    if name.startswith("States."):
        return f"States{name.removeprefix('States.')}Error", f"{name}: {cause}"
    return name, cause


def clean_up_ended_execution(
    services: Services,
    s3: Any,
    sagemaker: Any,
    execution_arn: str,
    status: str,
    seconds_left: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """For an execution that ended FAILED, TIMED_OUT or ABORTED (its status-change event): clean up
    after its run unless that is done. Executions that never registered a run (they failed in the
    first state, or are a Map's child executions) hold nothing."""
    record = run_records.get(services.dynamodb, services.table, execution_arn)
    if record is None or record.status != run_records.ACTIVE:
        return {"executionArn": execution_arn, "cleanedUp": False, "reason": "nothing held"}
    if model_control.live(services.executions, execution_arn):
        # Redriven since it ended (docs/aws-facts.md §4.15): the execution runs again and needs
        # what it holds. (Its own cleanup path, or the next end, cleans up after it.)
        return {"executionArn": execution_arn, "cleanedUp": False, "reason": "running again (redriven)"}
    config = from_state(read_json(s3, S3Uri.parse(record.config_uri)))
    result = clean_up(
        services,
        s3,
        sagemaker,
        config,
        {"Error": f"Execution{status.title()}", "Cause": status},
        StopWaiting(raise_while_pending=False, seconds_left=seconds_left),
    )
    return {"executionArn": execution_arn, "cleanedUp": True, "model": config.projectVersionArn, **result}


def sweep(services: Services, s3: Any, sagemaker: Any) -> dict[str, Any]:
    """What the schedule runs: clean up after every registered run whose execution is no longer
    running (its ended-event may never have come: EventBridge delivers at least once, best effort;
    or a labeling job of it could not be stopped last time), then stop every workflow-started model
    no live execution holds, whatever happened before (leases of dead executions are pruned on the
    way). One model that cannot be stopped does not keep the others running.

    `modelsLeftRunning`: workflow-started models found running (or starting) with no live holder by
    this sweep and the one before it, so for longer than one sweep period: the alarm's metric."""
    cleaned, stopped, jobs_left = 0, set(), 0
    for execution_arn in run_records.active(services.dynamodb, services.table):
        if not model_control.live(services.executions, execution_arn):
            result = clean_up_ended_execution(services, s3, sagemaker, execution_arn, "ENDED")
            cleaned += bool(result["cleanedUp"])
            jobs_left += int(result.get("labelingJobsNotStopped", 0))
            if result.get("modelStopped"):
                stopped.add(str(result["model"]))
    left_running, errors = [], {}
    for arn in model_lease.leased_models(services.dynamodb, services.table):
        try:
            result = model_control.stop_if_unused(
                services, model_control.ModelRef.of(arn), who=model_lease.SWEEP
            )
        except (ClientError, ModelTransitionError) as error:
            errors[arn] = f"{error_code(error)}: {error}"
            result = {"stopped": False, "status": "UNKNOWN", "stopPending": True}
        if result["stopped"]:
            stopped.add(arn)
        unheld = bool(result.get("stopPending")) and result["status"] in UNHELD_STATUSES
        if model_lease.count_unheld(services.dynamodb, services.table, arn, unheld) >= 2:
            left_running.append(arn)
    return {
        "runsCleanedUp": cleaned,
        "modelsStopped": sorted(stopped),
        "modelsLeftRunning": left_running,
        "labelingJobsNotStopped": jobs_left,
        "errors": errors,
    }


def _own_message(cause: str) -> str:
    """The errorMessage of one of the workflow's own errors in a Lambda error cause, else `cause`."""
    try:
        document = json.loads(cause)
    except ValueError:
        return cause
    if (
        isinstance(document, dict)
        and document.get("errorType") in _OWN_ERRORS
        and isinstance(document.get("errorMessage"), str)
    ):
        return str(document["errorMessage"])
    return cause


def _subclasses(cls: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = {cls}
    for child in cls.__subclasses__():
        found |= _subclasses(child)
    return found


_OWN_ERRORS = frozenset(cls.__name__ for cls in _subclasses(error_types.LabelingLoopError))
