"""Give back what a run holds when it ends without finishing: from its own failure path (the Catch),
from the execution-ended event (aborted, timed out, failed outside a Catch) and from the sweep.
Idempotent: any number of calls, from any of these, do no harm.

In order: stop the run's labeling jobs still in progress; release its model lease (stopping the
model when no live execution needs it and the workflow started it); release its image claims,
except those of images whose labeling job could not be stopped (people may still review them).
"""

from __future__ import annotations

import json
from typing import Any

from labeling_loop import errors, run_records
from labeling_loop.inference import claims, model_control, model_lease
from labeling_loop.jsonl import read_json
from labeling_loop.review.groundtruth.stop import images_of, stop_run_jobs
from labeling_loop.run_config import RunConfig, from_state
from labeling_loop.s3_uri import S3Uri


def clean_up(
    services: model_control.Services,
    s3: Any,
    sagemaker: Any,
    config: RunConfig,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    layout = config.layout()
    jobs = stop_run_jobs(s3, sagemaker, layout)
    released = model_control.release(services, config)
    released_claims = 0
    if config.incremental:
        keep = images_of(s3, layout, set(jobs.unstoppable))
        released_claims = claims.release_all(
            services.dynamodb, services.table, s3, layout, config.runId, keep=keep
        )
    run_records.finish(services.dynamodb, services.table, config.executionArn, run_records.CLEANED_UP)
    name, cause = failure_name(error)
    return {
        "modelStopped": released["stopped"],
        "modelStatus": released["status"],
        "claimsReleased": released_claims,
        **jobs.to_dict(),
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
    services: model_control.Services, s3: Any, sagemaker: Any, execution_arn: str, status: str
) -> dict[str, Any]:
    """For an execution that ended FAILED, TIMED_OUT or ABORTED (its status-change event): clean up
    after its run unless that is done. Executions that never registered a run (they failed in the
    first state, or are a Map's child executions) hold nothing."""
    record = run_records.get(services.dynamodb, services.table, execution_arn)
    if record is None or record.status != run_records.ACTIVE:
        return {"executionArn": execution_arn, "cleanedUp": False, "reason": "nothing held"}
    config = from_state(read_json(s3, S3Uri.parse(record.config_uri)))
    result = clean_up(
        services, s3, sagemaker, config, {"Error": f"Execution{status.title()}", "Cause": status}
    )
    return {"executionArn": execution_arn, "cleanedUp": True, "model": config.projectVersionArn, **result}


def sweep(services: model_control.Services, s3: Any, sagemaker: Any) -> dict[str, Any]:
    """What the schedule runs: clean up after every registered run whose execution is no longer
    running (its ended-event may never have come: EventBridge delivers at least once, best effort),
    then stop every workflow-started model no live execution holds (leases of dead executions are
    pruned on the way)."""
    cleaned, stopped = 0, set()
    for execution_arn in run_records.active(services.dynamodb, services.table):
        if not model_control.live(services.executions, execution_arn):
            result = clean_up_ended_execution(services, s3, sagemaker, execution_arn, "ENDED")
            cleaned += bool(result["cleanedUp"])
            if result.get("modelStopped"):
                stopped.add(str(result["model"]))
    for arn in model_lease.leased_models(services.dynamodb, services.table):
        if model_control.stop_if_unused(services, model_control.ModelRef.of(arn), who="sweep")["stopped"]:
            stopped.add(arn)
    return {"runsCleanedUp": cleaned, "modelsStopped": sorted(stopped)}


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


_OWN_ERRORS = frozenset(cls.__name__ for cls in _subclasses(errors.LabelingLoopError))
