"""What the sweep reports besides what it cleans up: live runs past their review deadline.

A run is overdue when it is still live (registered, not finished or cleaned up, execution RUNNING)
longer than its model may take to start plus its review deadline, with an hour's grace for the
steps around them. Both figures come from the run's own settings (config.json), so a run with a
two-week review is not overdue after one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from labeling_loop.kernel.jsonl import read_json
from labeling_loop.kernel.run_config import from_state
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.lifecycle import run_records

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client

GRACE_SECONDS = 3600


def review_deadline_seconds(config: Any) -> int:
    """From the run's start to the end of its review: the model's start, then the review window."""
    return int(config.modelStartTimeoutMinutes * 60 + config.reviewDeadlineHours * 3600 + GRACE_SECONDS)


def overdue_runs(
    dynamodb: DynamoDBClient, s3: S3Client, table: str, live: Callable[[str], bool], now: int
) -> list[str]:
    """Execution ARNs of live runs past their review deadline."""
    overdue = []
    for execution_arn in run_records.active(dynamodb, table):
        record = run_records.get(dynamodb, table, execution_arn)
        if record is None or record.status != run_records.ACTIVE or not live(execution_arn):
            continue
        try:
            config = from_state(read_json(s3, S3Uri.parse(record.config_uri)))
        except (ClientError, ValueError):
            continue  # nothing to measure against; the sweep's cleanup handles broken runs
        if now - record.started_at > review_deadline_seconds(config):
            overdue.append(execution_arn)
    return overdue
