"""What the run used of the engine, measured where the run can read it: Step Functions bills a
Standard workflow per state transition and Lambda per request (docs/aws-facts.md §4.7).

- The run's own execution: its history so far (GetExecutionHistory), one transition per state
  entered, one request per Lambda task scheduled, retries included. Build Manifest reads it, so the
  few states after it (training, the notification, the end) are added from the definition.
- The inference fan-out's child executions: each DetectLabels invocation wrote one predictions
  part, and its child entered two states for it (the task and its loop's Choice), plus its end.
- Ground Truth's per-job child executions (create, then poll until the job ends) are not read:
  estimated from the review's duration and the poll interval, and said so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labeling_loop.kernel.jsonl import list_keys, read_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_stepfunctions import SFNClient

# States a successful run enters after Build Manifest without training: Train Next Version?,
# No Training, Notify Run Ended, Run Result, Manifest Ready (statemachine/labeling_loop.asl.json).
STATES_AFTER_BUILD = 5
LAMBDAS_AFTER_BUILD = 1  # Notify Run Ended
STATES_PER_INVOCATION = 2  # Detect Labels In Batch, Batch Done?
STATES_PER_BATCH_END = 1  # Batch Finished
STATES_PER_JOB_POLL = 4  # Wait For Reviewers, Describe Labeling Job, Labeling Job Ended?, Deadline?
STATES_PER_JOB_FIXED = 3  # Create Labeling Job, the last check, Labeling Job Ended


@dataclass
class EngineUsage:
    transitions: int = 0
    invocations: int = 0
    measured_transitions: int = 0
    estimated_transitions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "transitions": self.transitions,
            "invocations": self.invocations,
            "measuredTransitions": self.measured_transitions,
            "estimatedTransitions": self.estimated_transitions,
        }


BUILD_STATE = "Build Manifest"


def _execution_history(sfn: SFNClient, execution_arn: str) -> tuple[int, int]:
    """(states entered, Lambda tasks scheduled) in an execution's history so far, Build Manifest
    (the state running this) counted once whether or not its events are recorded yet."""
    states = lambdas = 0
    building = False
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, includeExecutionData=False
    )
    for page in pages:
        for event in page["events"]:
            kind = str(event["type"])
            states += kind.endswith("StateEntered")
            entered: Mapping[str, Any] = event.get("stateEnteredEventDetails") or {}
            building = building or entered.get("name") == BUILD_STATE
            if kind == "TaskScheduled":
                lambdas += str(event.get("taskScheduledEventDetails", {}).get("resourceType")) == "lambda"
            lambdas += kind == "LambdaFunctionScheduled"
    if not building:
        states, lambdas = states + 1, lambdas + 1
    return states, lambdas


def _labeling_jobs(s3: S3Client, layout: RunLayout) -> int:
    jobs = 0
    for wave in (1, 2):
        try:
            jobs += len(read_json(s3, layout.for_wave(wave).review_jobs))
        except s3.exceptions.NoSuchKey:
            continue
    return jobs


def measure_run(
    sfn: SFNClient, s3: S3Client, config: RunConfig, *, review_seconds: float
) -> dict[str, Any] | None:
    """The run's engine usage so far, or None when its history cannot be read (the cost then falls
    back to the estimate, and says so): reading it is never worth failing the run."""
    try:
        return measure(
            sfn,
            s3,
            config.layout(),
            execution_arn=config.executionArn,
            review_seconds=review_seconds,
            review_poll_seconds=config.reviewPollSeconds,
        ).to_dict()
    except ClientError:
        return None


def measure(
    sfn: SFNClient,
    s3: S3Client,
    layout: RunLayout,
    *,
    execution_arn: str,
    review_seconds: float,
    review_poll_seconds: int,
) -> EngineUsage:
    usage = EngineUsage()
    states, lambdas = _execution_history(sfn, execution_arn)
    labeling_jobs = _labeling_jobs(s3, layout)
    # predictions/batch-<batchId>-<start>.jsonl: one part per invocation (docs/data-contracts.md)
    keys = [
        key.rsplit("/", 1)[-1] for key in list_keys(s3, layout.predictions_prefix) if key.endswith(".jsonl")
    ]
    parts, batches = len(keys), len({key.split("-")[1] for key in keys if key.count("-") >= 2})
    usage.measured_transitions = (
        states + STATES_AFTER_BUILD + parts * STATES_PER_INVOCATION + batches * STATES_PER_BATCH_END
    )
    usage.invocations = lambdas + LAMBDAS_AFTER_BUILD + parts
    polls = math.ceil(review_seconds / review_poll_seconds) + 1 if labeling_jobs else 0
    usage.estimated_transitions = labeling_jobs * (STATES_PER_JOB_FIXED + polls * STATES_PER_JOB_POLL)
    usage.transitions = usage.measured_transitions + usage.estimated_transitions
    return usage
