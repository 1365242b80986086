"""One record per execution (`run#<execution ARN>`), written by the first state: where the run's
settings are, so that whatever ends the execution (its own failure path, the execution-ended event
after an abort or a timeout, or the sweep when that event never came) can clean up after it. An
index item lists the executions not yet finished or cleaned up."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

INDEX_KEY = {"pk": {"S": "index#runs"}}
ACTIVE, SUCCEEDED, CLEANED_UP = "active", "succeeded", "cleaned-up"


def _key(execution_arn: str) -> dict[str, Any]:
    return {"pk": {"S": f"run#{execution_arn}"}}


@dataclass(frozen=True)
class RunRecord:
    execution_arn: str
    run_id: str
    config_uri: str  # s3://.../<runId>/config.json: the state payload the first state wrote
    status: str
    started_at: int = 0  # epoch seconds the run registered (0: not recorded)
    resumed_at: int = 0  # when a redriven execution took the run back after its cleanup (0: never)


def register(
    dynamodb: DynamoDBClient, table: str, *, execution_arn: str, run_id: str, config_uri: str, expires_at: int
) -> None:
    dynamodb.put_item(
        TableName=table,
        Item={
            **_key(execution_arn),
            "runId": {"S": run_id},
            "config": {"S": config_uri},
            "status": {"S": ACTIVE},
            "startedAt": {"N": str(int(time.time()))},
            "expiresAt": {"N": str(expires_at)},
        },
    )
    dynamodb.update_item(
        TableName=table,
        Key=INDEX_KEY,
        UpdateExpression="ADD executions :arn",
        ExpressionAttributeValues={":arn": {"SS": [execution_arn]}},
    )


def get(dynamodb: DynamoDBClient, table: str, execution_arn: str) -> RunRecord | None:
    item = dynamodb.get_item(TableName=table, Key=_key(execution_arn), ConsistentRead=True).get("Item")
    if not item:
        return None
    started_at = int(item.get("startedAt", {}).get("N", "0"))
    resumed_at = int(item.get("resumedAt", {}).get("N", "0"))
    return RunRecord(
        execution_arn, item["runId"]["S"], item["config"]["S"], item["status"]["S"], started_at, resumed_at
    )


def finish(dynamodb: DynamoDBClient, table: str, execution_arn: str, status: str) -> None:
    """The run succeeded or was cleaned up: nothing is left to do for it."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key=_key(execution_arn),
            UpdateExpression="SET #status = :status",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": {"S": status}},
        )
    except ClientError as error:  # no record (an execution that failed before registering)
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    dynamodb.update_item(
        TableName=table,
        Key=INDEX_KEY,
        UpdateExpression="DELETE executions :arn",
        ExpressionAttributeValues={":arn": {"SS": [execution_arn]}},
    )


def reactivate(dynamodb: DynamoDBClient, table: str, execution_arn: str, now: int) -> bool:
    """A cleaned-up run whose execution runs again (redriven, docs/aws-facts.md §4.15) is active
    again: True for the one caller that made it so (a conditional write), False otherwise."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key=_key(execution_arn),
            UpdateExpression="SET #status = :active, resumedAt = :now",
            ConditionExpression="#status = :cleaned",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":active": {"S": ACTIVE},
                ":cleaned": {"S": CLEANED_UP},
                ":now": {"N": str(now)},
            },
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    dynamodb.update_item(
        TableName=table,
        Key=INDEX_KEY,
        UpdateExpression="ADD executions :arn",
        ExpressionAttributeValues={":arn": {"SS": [execution_arn]}},
    )
    return True


def active(dynamodb: DynamoDBClient, table: str) -> list[str]:
    """Executions that registered and have not finished or been cleaned up yet."""
    item = dynamodb.get_item(TableName=table, Key=INDEX_KEY, ConsistentRead=True).get("Item", {})
    return sorted(item.get("executions", {}).get("SS", []))
