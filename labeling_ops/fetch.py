"""The reads behind `follow`, `show` and `stop`: the execution, its history, its Map Runs, the model,
the labeling jobs, and the run's durable records. Clients are passed in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from labeling_loop.inference import model_lease
from labeling_loop.inference.model_control import ModelRef, describe, find_project_arn
from labeling_loop.kernel.jsonl import list_keys, read_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.lifecycle import run_records
from labeling_loop.review.backends import find_backend

from labeling_ops.aws import Clients
from labeling_ops.progress import INFERENCE_MAP, Progress, ReviewJob, progress, read_history

if TYPE_CHECKING:
    from types_boto3_rekognition import RekognitionClient
    from types_boto3_s3 import S3Client
    from types_boto3_stepfunctions import SFNClient
    from types_boto3_stepfunctions.type_defs import HistoryEventTypeDef


def history(sfn: SFNClient, execution_arn: str) -> list[HistoryEventTypeDef]:
    events: list[HistoryEventTypeDef] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def model_status(
    rekognition: RekognitionClient, model_arn: str | None, project_arn: str | None
) -> str | None:
    """The model's status now (None when it cannot be read: no permission, or no model yet)."""
    if not model_arn:
        return None
    try:
        model = ModelRef.of(model_arn)
        project = project_arn or find_project_arn(rekognition, model.project)
        return str(describe(rekognition, project, model)["Status"])
    except Exception:  # the display goes on without it
        return None


def review_jobs(clients: Clients, config: dict[str, Any]) -> list[ReviewJob]:
    """The run's Ground Truth jobs (review/jobs.json) and their LabelCounters."""
    bucket, key = config.get("outputBucket"), config.get("reviewJobsKey")
    if not bucket or not key:
        return []
    try:
        planned = read_json(clients.s3, S3Uri(bucket, key))
    except ClientError:
        return []
    jobs = []
    for job in planned or []:
        name = str(job["jobName"])
        try:
            described = clients.sagemaker.describe_labeling_job(LabelingJobName=name)
        except ClientError:
            jobs.append(ReviewJob(name, "not created yet", 0, 0, 0))
            continue
        counters = described.get("LabelCounters", {})
        jobs.append(
            ReviewJob(
                name,
                str(described["LabelingJobStatus"]),
                int(counters.get("TotalLabeled", 0)),
                int(counters.get("Unlabeled", 0)),
                int(counters.get("FailedNonRetryableError", 0)),
            )
        )
    return jobs


def batch_progress(s3: S3Client, run_prefix: str | None) -> list[dict[str, Any]]:
    """The batches' progress objects (progress/batch-*.json, written while each batch runs)."""
    if not run_prefix:
        return []
    prefix = RunLayout(S3Uri.parse(run_prefix).as_prefix()).batch_progress_prefix
    documents = []
    try:
        for key in list_keys(s3, prefix):
            documents.append(dict(read_json(s3, S3Uri(prefix.bucket, key))))
    except (ClientError, ValueError):  # a display aid: the display goes on without it
        return []
    return documents


def run_progress(clients: Clients, execution_arn: str, now: datetime | None = None) -> Progress:
    description = clients.sfn.describe_execution(executionArn=execution_arn)
    events = history(clients.sfn, execution_arn)
    facts = read_history(events)
    map_runs = {}
    for state, map_run_arn in facts.map_runs.items():
        try:
            map_runs[state] = clients.sfn.describe_map_run(mapRunArn=map_run_arn)
        except ClientError:
            continue
    config = facts.data.get("config", {})
    jobs = []
    backend = find_backend(config.get("reviewBackend"))
    if "plan" in facts.data and backend and backend.has_labeling_jobs:
        jobs = review_jobs(clients, config)
    status = model_status(
        clients.rekognition, config.get("projectVersionArn"), facts.data.get("model", {}).get("projectArn")
    )
    inferring = INFERENCE_MAP in facts.map_runs and facts.model_released_at is None
    batches = batch_progress(clients.s3, config.get("runPrefix")) if inferring else None
    return progress(
        description,
        events,
        now=now or datetime.now(UTC),
        map_runs=map_runs,
        model_status=status,
        review_jobs=jobs,
        batch_progress=batches,
    )


def cleanup_outcome(
    clients: Clients, table: str, execution_arn: str, model_arn: str | None
) -> dict[str, Any]:
    """What the cleanup left, read from durable state (never from a function's return value): the
    run's record, the model's lease and the model's status."""
    record = run_records.get(clients.dynamodb, table, execution_arn)
    outcome: dict[str, Any] = {"record": record.status if record else None}
    if model_arn:
        lease = model_lease.read(clients.dynamodb, table, model_arn)
        outcome["modelUsers"] = sorted(lease.users)
        outcome["modelStopDuty"] = lease.started_by_workflow
        outcome["modelStatus"] = model_status(clients.rekognition, model_arn, None)
    return outcome
