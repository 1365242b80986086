"""The clients bundle of model control and of cleanup after a run: the model (Rekognition), the
run-state table (DynamoDB), executions (Step Functions) and metrics (CloudWatch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from labeling_loop.kernel.aws_clients import client

if TYPE_CHECKING:
    from types_boto3_cloudwatch import CloudWatchClient
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_rekognition import RekognitionClient
    from types_boto3_stepfunctions import SFNClient


@dataclass(frozen=True)
class Services:
    """The clients model control uses. `executions` (Step Functions) tells a live lease holder from
    a dead one; `metrics` (CloudWatch) tells how many units a model someone else started runs on."""

    rekognition: RekognitionClient
    dynamodb: DynamoDBClient
    table: str
    executions: SFNClient
    metrics: CloudWatchClient | None = None

    @classmethod
    def create(cls, table: str) -> Services:
        """The clients of a Lambda container (made once, at cold start)."""
        return cls(
            client("rekognition"), client("dynamodb"), table, client("stepfunctions"), client("cloudwatch")
        )
