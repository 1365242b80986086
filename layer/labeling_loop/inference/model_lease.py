"""Leases on a Custom Labels model, so that overlapping runs never stop a model under each other and
no run, however it ends, leaves a model running that the workflow started.

One DynamoDB item per model version (`model#<version ARN>`):
- `users`: the executions that need the model for inference (execution ARNs, so a user that ended
  without releasing, aborted or timed out, can be recognised with DescribeExecution and pruned);
- `startedByWorkflow` / `startedBy`: the stop duty. It is recorded *before* StartProjectVersion is
  called, so a crash between the call and the record cannot lose it, with `startPendingAt`: a start
  call may still be on its way until the caller says it returned (`start_returned`) or until no
  invocation that could make it is alive any more (START_CALL_WINDOW_S). The duty is cleared only
  once the model is known stopped with no start on its way, or known never to start (FAILED);
- `unheldSweeps`: how many sweeps in a row found the model running, started by the workflow, with
  no live holder (the sweep's alarm metric);
- `stopping` / `stoppingAt`: a stop decided and not yet confirmed. It is recorded before
  StopProjectVersion is called and cleared only after the call succeeded, so a crash (or a Lambda
  timeout) between the two leaves the decision for the next caller to finish.
The last user to leave a model the workflow started stops it; a model someone started by hand is
never stopped. Conditional writes make each decision atomic. An index item lists the models ever
leased, for the sweep that stops what no live execution needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

INDEX_KEY = {"pk": {"S": "index#models"}}
# A stop decided this long ago and still not confirmed belongs to a caller that died: anyone may
# finish it. Longer than the Release Model step's retries (about 15 minutes of ModelTransitionError).
STALE_STOP_SECONDS = 30 * 60
# A StartProjectVersion call recorded this long ago has been made or never will be: no Lambda
# invocation outlives 15 minutes (docs/aws-facts.md §4.12), and the call is made by one.
START_CALL_WINDOW_S = 15 * 60
# The sweep is the one caller that is not an execution: its decisions can be taken over by anyone.
SWEEP = "sweep"
# Fulfilling or dropping the stop duty removes all of it.
_NO_DUTY = "REMOVE startedByWorkflow, startedBy, stopping, stoppingAt, startPendingAt, unheldSweeps"


def _key(version_arn: str) -> dict[str, Any]:
    return {"pk": {"S": f"model#{version_arn}"}}


@dataclass(frozen=True)
class Lease:
    users: frozenset[str]
    started_by_workflow: bool
    started_by: str | None
    stopping: str | None = None
    stopping_at: int = 0
    start_pending_at: int = 0  # when a StartProjectVersion call was recorded and not yet returned
    unheld_sweeps: int = 0

    def start_may_come(self, now: float) -> bool:
        """A recorded StartProjectVersion call may still reach Rekognition."""
        return bool(self.start_pending_at) and now - self.start_pending_at < START_CALL_WINDOW_S


def _lease(attributes: dict[str, Any]) -> Lease:
    return Lease(
        users=frozenset(attributes.get("users", {}).get("SS", [])),
        started_by_workflow=attributes.get("startedByWorkflow", {}).get("BOOL", False),
        started_by=attributes.get("startedBy", {}).get("S"),
        stopping=attributes.get("stopping", {}).get("S"),
        stopping_at=int(attributes.get("stoppingAt", {}).get("N", "0")),
        start_pending_at=int(attributes.get("startPendingAt", {}).get("N", "0")),
        unheld_sweeps=int(attributes.get("unheldSweeps", {}).get("N", "0")),
    )


def _now() -> str:
    return str(int(time.time()))


def _conditional(update: Any) -> bool:
    """Run a conditional write; False when its condition did not hold."""
    try:
        update()
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def acquire(dynamodb: DynamoDBClient, table: str, version_arn: str, user: str) -> Lease:
    """Add this execution to the model's users (idempotent) and return the lease as it now is."""
    result = dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression="ADD #users :me SET updatedAt = :now",
        ExpressionAttributeNames={"#users": "users"},
        ExpressionAttributeValues={":me": {"SS": [user]}, ":now": {"N": _now()}},
        ReturnValues="ALL_NEW",
    )
    dynamodb.update_item(
        TableName=table,
        Key=INDEX_KEY,
        UpdateExpression="ADD models :arn",
        ExpressionAttributeValues={":arn": {"SS": [version_arn]}},
    )
    return _lease(result["Attributes"])


def record_start(
    dynamodb: DynamoDBClient, table: str, version_arn: str, user: str, now: int | None = None
) -> None:
    """The stop duty, recorded before StartProjectVersion (so the last user stops the model), with
    the call pending until `start_returned`."""
    now = int(time.time()) if now is None else now
    dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression="SET startedByWorkflow = :yes, startedBy = :me, startPendingAt = :now",
        ExpressionAttributeValues={":yes": {"BOOL": True}, ":me": {"S": user}, ":now": {"N": str(now)}},
    )


def start_returned(dynamodb: DynamoDBClient, table: str, version_arn: str, user: str) -> None:
    """StartProjectVersion answered (started, or refused): no call of this user is on its way. A
    later start recorded by another run keeps its own pending mark."""
    _conditional(
        lambda: dynamodb.update_item(
            TableName=table,
            Key=_key(version_arn),
            UpdateExpression="REMOVE startPendingAt",
            ConditionExpression="startedBy = :me",
            ExpressionAttributeValues={":me": {"S": user}},
        )
    )


def leave(dynamodb: DynamoDBClient, table: str, version_arn: str, *users: str) -> Lease:
    """Remove executions from the users (their own release, or pruning dead ones)."""
    result = dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression="DELETE #users :them",
        ExpressionAttributeNames={"#users": "users"},
        ExpressionAttributeValues={":them": {"SS": list(users)}},
        ReturnValues="ALL_NEW",
    )
    return _lease(result.get("Attributes", {}))


def decide_stop(
    dynamodb: DynamoDBClient,
    table: str,
    version_arn: str,
    who: str,
    now: int | None = None,
    takeover: str | None = None,
) -> bool:
    """Record the decision to stop the model: only when no execution uses it and the workflow
    started it, and no one else's recent decision is pending (`takeover`: a decider the caller knows
    is gone, whose decision it may take). True for the one caller that stops."""
    now = int(time.time()) if now is None else now
    return _conditional(
        lambda: dynamodb.update_item(
            TableName=table,
            Key=_key(version_arn),
            UpdateExpression="SET stopping = :who, stoppingAt = :now",
            ConditionExpression=(
                "attribute_not_exists(#users) AND startedByWorkflow = :yes AND "
                "(attribute_not_exists(stopping) OR stopping = :who OR stopping = :gone "
                "OR stoppingAt < :stale)"
            ),
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={
                ":who": {"S": who},
                ":gone": {"S": takeover or who},
                ":now": {"N": str(now)},
                ":yes": {"BOOL": True},
                ":stale": {"N": str(now - STALE_STOP_SECONDS)},
            },
        )
    )


def withdraw_stop(dynamodb: DynamoDBClient, table: str, version_arn: str, who: str) -> bool:
    """Drop `who`'s decision without fulfilling the duty: the model cannot be stopped now (a start
    may still come, or a run took it again); the duty stays for the next caller."""
    return _conditional(
        lambda: dynamodb.update_item(
            TableName=table,
            Key=_key(version_arn),
            UpdateExpression="REMOVE stopping, stoppingAt",
            ConditionExpression="stopping = :who",
            ExpressionAttributeValues={":who": {"S": who}},
        )
    )


def stop_done(dynamodb: DynamoDBClient, table: str, version_arn: str, who: str) -> bool:
    """The stop went through (or there was nothing left to stop): the duty is fulfilled."""
    return _conditional(
        lambda: dynamodb.update_item(
            TableName=table,
            Key=_key(version_arn),
            UpdateExpression=_NO_DUTY,
            ConditionExpression="stopping = :who",
            ExpressionAttributeValues={":who": {"S": who}},
        )
    )


def clear_stop_duty(dynamodb: DynamoDBClient, table: str, version_arn: str) -> None:
    """Nothing is left to stop (the model failed to start): no run may try to stop it."""
    dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression=_NO_DUTY,
    )


def count_unheld(dynamodb: DynamoDBClient, table: str, version_arn: str, unheld: bool) -> int:
    """The sweep's record of a workflow-started model running with no live holder: one more sweep
    in a row (`unheld`), or none (held again, stopped, or not running). Returns the count."""
    if not unheld:
        dynamodb.update_item(TableName=table, Key=_key(version_arn), UpdateExpression="REMOVE unheldSweeps")
        return 0
    result = dynamodb.update_item(
        TableName=table,
        Key=_key(version_arn),
        UpdateExpression="ADD unheldSweeps :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    return int(result["Attributes"]["unheldSweeps"]["N"])


def read(dynamodb: DynamoDBClient, table: str, version_arn: str) -> Lease:
    item = dynamodb.get_item(TableName=table, Key=_key(version_arn), ConsistentRead=True).get("Item", {})
    return _lease(item)


def leased_models(dynamodb: DynamoDBClient, table: str) -> list[str]:
    """Every model version a run of this stack has leased (for the sweep)."""
    item = dynamodb.get_item(TableName=table, Key=INDEX_KEY, ConsistentRead=True).get("Item", {})
    return sorted(item.get("models", {}).get("SS", []))
