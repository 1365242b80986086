"""Leases on a Custom Labels model, so that overlapping runs never stop a model under each other.

One DynamoDB item per model version: `users` is the set of run ids that still need the model for
inference, `startedByWorkflow` says whether a run of this workflow started it (a model the user
started by hand is never stopped by us). The last run to release a model that the workflow started
stops it. Conditional writes make the decision atomic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


def _key(version_arn: str) -> dict[str, Any]:
    return {"pk": {"S": f"model#{version_arn}"}}


@dataclass(frozen=True)
class Lease:
    users: frozenset[str]
    started_by_workflow: bool
    started_by: str | None


def _lease(attributes: dict[str, Any]) -> Lease:
    return Lease(
        users=frozenset(attributes.get("users", {}).get("SS", [])),
        started_by_workflow=attributes.get("startedByWorkflow", {}).get("BOOL", False),
        started_by=attributes.get("startedBy", {}).get("S"),
    )


def acquire(dynamodb: Any, table: str, version_arn: str, run_id: str) -> Lease:
    """Add this run to the model's users (idempotent) and return the lease as it now is."""
    result = dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression="ADD #users :me SET updatedAt = :now",
        ExpressionAttributeNames={"#users": "users"},
        ExpressionAttributeValues={":me": {"SS": [run_id]}, ":now": {"N": str(int(time.time()))}},
        ReturnValues="ALL_NEW",
    )
    return _lease(result["Attributes"])


def mark_started(dynamodb: Any, table: str, version_arn: str, run_id: str) -> None:
    """Record that a run of this workflow started the model (so the last user stops it)."""
    dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression="SET startedByWorkflow = :yes, startedBy = :me",
        ExpressionAttributeValues={":yes": {"BOOL": True}, ":me": {"S": run_id}},
    )


def release(dynamodb: Any, table: str, version_arn: str, run_id: str) -> bool:
    """Remove this run from the users. True when the caller must stop the model: no user is left
    and the workflow started it. Only one caller ever gets True for one start."""
    dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression="DELETE #users :me",
        ExpressionAttributeNames={"#users": "users"},
        ExpressionAttributeValues={":me": {"SS": [run_id]}},
    )
    try:
        dynamodb.update_item(
            TableName=table,
            Key=_key(version_arn),
            UpdateExpression="REMOVE startedByWorkflow, startedBy",
            ConditionExpression="attribute_not_exists(#users) AND startedByWorkflow = :yes",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def restore_stop_duty(dynamodb: Any, table: str, version_arn: str, run_id: str) -> None:
    """Put the stop duty back when stopping failed, so a retry (or the next run) still stops it."""
    mark_started(dynamodb, table, version_arn, run_id)


def clear_stop_duty(dynamodb: Any, table: str, version_arn: str) -> None:
    """Nothing is left to stop (the model failed to start): no run may try to stop it."""
    dynamodb.update_item(
        TableName=table, Key=_key(version_arn), UpdateExpression="REMOVE startedByWorkflow, startedBy"
    )


def read(dynamodb: Any, table: str, version_arn: str) -> Lease:
    item = dynamodb.get_item(TableName=table, Key=_key(version_arn), ConsistentRead=True).get("Item", {})
    return _lease(item)
