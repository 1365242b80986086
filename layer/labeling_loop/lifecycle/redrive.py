"""A redriven execution takes back what its cleanup gave back.

Step Functions can redrive a FAILED, ABORTED or TIMED_OUT Standard execution for 14 days after it
ended: it continues at the state that did not finish, with the same input and the same execution
ARN; a Distributed Map reruns only its unsuccessful children (docs/aws-facts.md §4.15). By then the
execution-ended cleanup (or the sweep) has given back what the run held: its model lease (and the
model, stopped when no one else needed it), its image claims and its run record. The states that
need them take them back before they use them:

- Acquire Model and Check Model (functions/model_control): `take_back` makes the run record active
  again and re-takes the lease and the claims before the model is looked at, so a model a resumed
  run starts is held by it (the sweep never stops it under the run) and carries its stop duty;
- a fan-out batch that finds the model not running (`model_for_resumed_batch`): in a run taken back
  this way it restarts the model (the stop duty recorded first, model_control.start) and waits for
  RUNNING through its state's Retry on ModelStartingError, within modelStartTimeoutMinutes of the
  resume. A run that was never redriven does not restart a model stopped under its inference:
  someone stopped it (ModelNotRunningError, as before).

The states after inference need neither the model nor the lease. Labeling jobs the cleanup stopped
stay stopped: a run redriven during its review collects what reviewers did and reports the rest as
not reviewed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labeling_loop.inference import claims, model_control, model_lease
from labeling_loop.kernel.errors import ModelStartFailedError, ModelStartingError, ModelStartTimeoutError
from labeling_loop.kernel.jsonl import read_jsonl
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.lifecycle import run_records
from labeling_loop.lifecycle.services import Services

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


def take_back(services: Services, s3: S3Client, config: RunConfig, now: float) -> dict[str, Any]:
    """If the run's cleanup gave it up while its execution was redriven: its record active again, its
    model lease, and (incremental runs) the claims of its inventory. `resumed` is True for the one
    caller that did it; `claimsLost` counts images another run claimed or labeled in between (both
    runs then have them). A Lambda still in flight for the execution that ended (its result will be
    dropped) takes nothing back: only a running execution does."""
    record = run_records.get(services.dynamodb, services.table, config.executionArn)
    if record is None or record.status != run_records.CLEANED_UP:
        return {"resumed": False}
    if not model_control.live(services.executions, config.executionArn):
        return {"resumed": False}
    if not run_records.reactivate(services.dynamodb, services.table, config.executionArn, int(now)):
        return {"resumed": False}
    model_lease.acquire(services.dynamodb, services.table, config.projectVersionArn, config.executionArn)
    lost = 0
    if config.incremental:
        refs = (line["source-ref"] for line in read_jsonl(s3, config.layout().inventory, missing_ok=True))
        expires = int(now) + config.longest_run_seconds
        for _, outcome in claims.claim_many(
            services.dynamodb, services.table, refs, config.runId, int(now), expires
        ):
            lost += not outcome.claimed
    return {"resumed": True, "claimsLost": lost}


def model_for_resumed_batch(services: Services, s3: S3Client, config: RunConfig, now: float) -> None:
    """Called by a fan-out batch whose model is not running. Returns when the run was never redriven
    after a cleanup (the caller fails the batch: ModelNotRunningError). Otherwise starts the model if
    it is stopped and raises ModelStartingError (the batch waits), ModelStartTimeoutError past the
    run's start deadline counted from the resume, or ModelStartFailedError for a model that cannot
    run."""
    take_back(services, s3, config, now)
    record = run_records.get(services.dynamodb, services.table, config.executionArn)
    if record is None or not record.resumed_at or record.status != run_records.ACTIVE:
        return
    if not model_control.live(services.executions, config.executionArn):
        return  # the invocation of an execution that ended again: its result is dropped
    model = model_control.ModelRef.of(config.projectVersionArn)
    status = model_control.status_of(services.rekognition, model)
    if status in model_control.BROKEN:
        raise ModelStartFailedError(f"model {model.arn} is {status}: the redriven run cannot use it")
    if status != "RUNNING" and now > record.resumed_at + config.modelStartTimeoutMinutes * 60:
        raise ModelStartTimeoutError(
            f"model {model.arn} not RUNNING {config.modelStartTimeoutMinutes} minutes after the run was "
            f"redriven (status {status}); see modelStartTimeoutMinutes"
        )
    if status in model_control.STARTABLE:
        model_control.start(services, config)
        status = "STARTING"
    raise ModelStartingError(f"model {model.arn} is {status}: the redriven run waits for it to run again")
