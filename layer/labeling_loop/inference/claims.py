"""Image claims for incremental runs: which images a run is working on and which are labeled.

An item per image (`image#<source-ref>`): `state` is `claimed` (a run has it in flight, until
`expiresAt`), `labeled` (it is in a manifest) or `deferred` (a run put it off for later, with its
`reason`, since `deferredSince`: labeling_loop/kernel/deferral.py). Listing claims images with a
conditional write, so two overlapping runs never send the same image to review; a failed or finished
run releases the claims of images that did not reach a manifest, so the next run picks them up. A
deferred image is free for the next run, which learns from its claim that it waited (and since when)
and takes it first; a claim on it that is released goes back to `deferred`, never losing its place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError

from labeling_loop.kernel.jsonl import read_jsonl
from labeling_loop.kernel.layout import RunLayout

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client

CLAIM_THREADS = 16


def _key(source_ref: str) -> dict[str, Any]:
    return {"pk": {"S": f"image#{source_ref}"}}


class ClaimOutcome(NamedTuple):
    claimed: bool
    deferred_since: int | None = None  # when an earlier run deferred the image (epoch seconds)


def try_claim(
    dynamodb: DynamoDBClient, table: str, source_ref: str, run_id: str, now: int, expires_at: int
) -> ClaimOutcome:
    """Claim an image for this run; not claimed when it is labeled or claimed by another live run.
    An update, not a put: a deferred image keeps its `deferredSince` while a run has it."""
    try:
        answer = dynamodb.update_item(
            TableName=table,
            Key=_key(source_ref),
            UpdateExpression="SET #state = :claimed, runId = :me, expiresAt = :expires",
            # Free, deferred, or claimed by this run already (a retried listing), or a claim that
            # has lapsed; never a labeled image, whoever labeled it.
            ConditionExpression=(
                "attribute_not_exists(pk) OR #state = :deferred"
                " OR (#state = :claimed AND (runId = :me OR expiresAt < :now))"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":me": {"S": run_id},
                ":claimed": {"S": "claimed"},
                ":deferred": {"S": "deferred"},
                ":now": {"N": str(now)},
                ":expires": {"N": str(expires_at)},
            },
            ReturnValues="ALL_OLD",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return ClaimOutcome(False)
        raise
    since = answer.get("Attributes", {}).get("deferredSince", {}).get("N")
    return ClaimOutcome(True, int(since) if since is not None else None)


def claim(
    dynamodb: DynamoDBClient, table: str, source_ref: str, run_id: str, now: int, expires_at: int
) -> bool:
    """Claim an image for this run. False when it is labeled or claimed by another live run."""
    return try_claim(dynamodb, table, source_ref, run_id, now, expires_at).claimed


def claim_many(
    dynamodb: DynamoDBClient, table: str, source_refs: Iterable[str], run_id: str, now: int, expires_at: int
) -> Iterator[tuple[str, ClaimOutcome]]:
    """Claim images concurrently (one conditional write each), yielding (source-ref, outcome) in order."""
    with ThreadPoolExecutor(max_workers=CLAIM_THREADS) as pool:
        refs = list(source_refs)
        yield from zip(
            refs,
            pool.map(lambda ref: try_claim(dynamodb, table, ref, run_id, now, expires_at), refs),
            strict=True,
        )


def mark_labeled(dynamodb: DynamoDBClient, table: str, source_ref: str, run_id: str) -> None:
    dynamodb.put_item(
        TableName=table,
        Item={**_key(source_ref), "state": {"S": "labeled"}, "runId": {"S": run_id}},
    )


def release(dynamodb: DynamoDBClient, table: str, source_ref: str, run_id: str) -> None:
    """Drop this run's claim (never another run's, never a labeled image). An image an earlier run
    deferred goes back to `deferred`, keeping its place in the queue."""
    names = {"#state": "state"}
    values = {":me": {"S": run_id}, ":claimed": {"S": "claimed"}}
    try:
        dynamodb.update_item(
            TableName=table,
            Key=_key(source_ref),
            UpdateExpression="SET #state = :deferred REMOVE expiresAt",
            ConditionExpression="runId = :me AND #state = :claimed AND attribute_exists(deferredSince)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":deferred": {"S": "deferred"}},
        )
        return
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    try:
        dynamodb.delete_item(
            TableName=table,
            Key=_key(source_ref),
            ConditionExpression="runId = :me AND #state = :claimed",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def defer(dynamodb: DynamoDBClient, table: str, source_ref: str, run_id: str, reason: str, now: int) -> None:
    """This run's claim becomes a deferral: free for the next run, which sees since when the image
    has waited (an image deferred twice keeps its first date). No claim of this run, no change."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key=_key(source_ref),
            UpdateExpression=(
                "SET #state = :deferred, reason = :reason, deferredSince = if_not_exists(deferredSince, :now)"
                " REMOVE expiresAt"
            ),
            ConditionExpression="runId = :me AND #state = :claimed",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":me": {"S": run_id},
                ":claimed": {"S": "claimed"},
                ":deferred": {"S": "deferred"},
                ":reason": {"S": reason},
                ":now": {"N": str(now)},
            },
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def for_each(function: Any, items: Iterable[Any]) -> int:
    """Apply a ledger write to many items with a few threads; returns how many were done."""
    count = 0
    with ThreadPoolExecutor(max_workers=CLAIM_THREADS) as pool:
        for _ in pool.map(function, items):
            count += 1
    return count


def settle(
    dynamodb: DynamoDBClient, table: str, s3: S3Client, layout: RunLayout, run_id: str, now: int
) -> None:
    """At the end of a run: images in the manifest are labeled (later incremental runs skip them);
    skipped images are released, so the next run tries them again; deferred images wait for the
    next run, which takes them first."""
    labeled = (line["source-ref"] for line in read_jsonl(s3, layout.manifest, missing_ok=True))
    for_each(lambda ref: mark_labeled(dynamodb, table, ref, run_id), labeled)
    skipped = (line["source-ref"] for line in read_jsonl(s3, layout.skipped, missing_ok=True))
    for_each(lambda ref: release(dynamodb, table, ref, run_id), skipped)
    deferred = read_jsonl(s3, layout.deferred, missing_ok=True)
    for_each(
        lambda line: defer(dynamodb, table, line["source-ref"], run_id, str(line["reason"]), now), deferred
    )


def release_all(
    dynamodb: DynamoDBClient,
    table: str,
    s3: S3Client,
    layout: RunLayout,
    run_id: str,
    keep: set[str] | frozenset[str] = frozenset(),
) -> int:
    """After a failure: release every claim of the run (its inventory) but those in `keep` (images
    people may still be reviewing), so nothing else stays taken."""
    refs = (
        r["source-ref"]
        for r in read_jsonl(s3, layout.inventory, missing_ok=True)
        if r["source-ref"] not in keep
    )
    return for_each(lambda ref: release(dynamodb, table, ref, run_id), refs)
