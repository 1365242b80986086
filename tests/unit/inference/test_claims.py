"""Image claims of incremental runs (moto DynamoDB): who may work on an image, and what is labeled."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from labeling_loop.inference import claims

NOW = 1_760_000_000
HOUR = 3600
A = "s3://images-bucket/photos/a.jpg"
B = "s3://images-bucket/photos/b.jpg"
C = "s3://images-bucket/photos/c.jpg"


def item(aws: SimpleNamespace, source_ref: str) -> dict[str, Any] | None:
    found = aws.dynamodb.get_item(TableName=aws.table, Key={"pk": {"S": f"image#{source_ref}"}}).get("Item")
    return None if found is None else {k: next(iter(v.values())) for k, v in found.items()}


def claim(aws: SimpleNamespace, source_ref: str, run_id: str, now: int = NOW, ttl: int = HOUR) -> bool:
    return claims.claim(aws.dynamodb, aws.table, source_ref, run_id, now, now + ttl)


def test_a_free_image_is_claimed_until_the_claim_expires(aws: SimpleNamespace) -> None:
    # WHEN a run claims an image nobody has
    assert claim(aws, A, "run-a") is True
    # THEN the ledger says who has it and until when (the table's TTL attribute)
    assert item(aws, A) == {
        "pk": f"image#{A}",
        "state": "claimed",
        "runId": "run-a",
        "expiresAt": str(NOW + HOUR),
    }


def test_a_live_claim_keeps_other_runs_out(aws: SimpleNamespace) -> None:
    claim(aws, A, "run-a")
    # WHEN another run tries within the hour
    assert claim(aws, A, "run-b", now=NOW + HOUR - 1) is False
    # THEN the first run keeps it
    assert item(aws, A)["runId"] == "run-a"


def test_an_expired_claim_can_be_taken_over(aws: SimpleNamespace) -> None:
    # GIVEN run-a's claim lapsed an hour ago
    # WHEN run-b claims the image
    # THEN run-b gets it
    claim(aws, A, "run-a")
    assert claim(aws, A, "run-b", now=NOW + HOUR + 1) is True
    assert item(aws, A)["runId"] == "run-b"


def test_a_run_can_claim_its_own_image_again(aws: SimpleNamespace) -> None:
    # GIVEN a retried listing of the same run
    claim(aws, A, "run-a")
    assert claim(aws, A, "run-a", now=NOW + 10) is True
    # THEN the claim is extended
    assert item(aws, A)["expiresAt"] == str(NOW + 10 + HOUR)


def test_a_labeled_image_is_never_claimed_again_by_another_run(aws: SimpleNamespace) -> None:
    # GIVEN an image that reached a manifest
    claim(aws, A, "run-a")
    claims.mark_labeled(aws.dynamodb, aws.table, A, "run-a")
    assert item(aws, A) == {"pk": f"image#{A}", "state": "labeled", "runId": "run-a"}
    # WHEN a run a year later tries to claim it
    # THEN it cannot: labeled images have no expiry
    assert claim(aws, A, "run-b", now=NOW + 365 * 24 * HOUR) is False
    # AND neither can the run that labeled it (a run id reused would otherwise review it again)
    assert claim(aws, A, "run-a", now=NOW + 10) is False
    assert item(aws, A)["state"] == "labeled"


def test_claim_many_answers_in_order(aws: SimpleNamespace) -> None:
    # GIVEN B is taken by another run
    claim(aws, B, "run-z")
    # WHEN a run claims A, B and C
    results = list(claims.claim_many(aws.dynamodb, aws.table, [A, B, C], "run-a", NOW, NOW + HOUR))
    # THEN each answer belongs to its image
    assert [(ref, outcome.claimed) for ref, outcome in results] == [(A, True), (B, False), (C, True)]


def test_release_drops_only_the_runs_own_claims(aws: SimpleNamespace) -> None:
    # GIVEN A claimed by run-a, B claimed by run-b, C labeled by run-a
    claim(aws, A, "run-a")
    claim(aws, B, "run-b")
    claim(aws, C, "run-a")
    claims.mark_labeled(aws.dynamodb, aws.table, C, "run-a")

    # WHEN run-a releases all three
    for source_ref in (A, B, C):
        claims.release(aws.dynamodb, aws.table, source_ref, "run-a")

    # THEN only its live claim is gone; the other run's claim and the labeled image stay
    assert item(aws, A) is None
    assert item(aws, B)["runId"] == "run-b"
    assert item(aws, C)["state"] == "labeled"
    # AND a released image is free for the next run
    assert claim(aws, A, "run-c") is True


def test_releasing_an_unknown_image_is_harmless(aws: SimpleNamespace) -> None:
    # WHEN a run releases an image nobody claimed
    # THEN nothing happens and nothing fails
    claims.release(aws.dynamodb, aws.table, A, "run-a")
    assert item(aws, A) is None


def test_for_each_applies_a_write_to_every_item(aws: SimpleNamespace) -> None:
    # GIVEN 40 images
    # WHEN a write is applied to each with the ledger's threads
    # THEN every one is done and counted
    refs = [f"s3://images-bucket/photos/{i}.jpg" for i in range(40)]
    done = claims.for_each(lambda ref: claims.mark_labeled(aws.dynamodb, aws.table, ref, "run-a"), iter(refs))
    assert done == 40
    assert all(item(aws, ref)["state"] == "labeled" for ref in refs)


def test_a_deferred_image_is_free_for_the_next_run_which_learns_since_when_it_waited(
    aws: SimpleNamespace,
) -> None:
    # GIVEN run-a claimed A and deferred it (over its review budget)
    claim(aws, A, "run-a")
    claims.defer(aws.dynamodb, aws.table, A, "run-a", "over-review-budget", NOW + 5)
    assert item(aws, A) == {
        "pk": f"image#{A}",
        "state": "deferred",
        "runId": "run-a",
        "reason": "over-review-budget",
        "deferredSince": str(NOW + 5),
    }
    # WHEN the next run lists it, long before any claim would have lapsed
    outcome = claims.try_claim(aws.dynamodb, aws.table, A, "run-b", NOW + 60, NOW + 60 + HOUR)
    # THEN it gets the image and is told it waited since run-a deferred it
    assert outcome == claims.ClaimOutcome(True, NOW + 5)
    assert item(aws, A)["state"] == "claimed"
    assert item(aws, A)["runId"] == "run-b"
    # AND a run that never saw a deferral is told nothing of the kind
    assert claims.try_claim(aws.dynamodb, aws.table, B, "run-b", NOW, NOW + HOUR) == claims.ClaimOutcome(True)


def test_a_deferred_image_keeps_its_place_when_the_next_run_releases_or_defers_it_again(
    aws: SimpleNamespace,
) -> None:
    # GIVEN A deferred by run-a, then claimed by run-b
    claim(aws, A, "run-a")
    claims.defer(aws.dynamodb, aws.table, A, "run-a", "over-review-budget", NOW)
    claim(aws, A, "run-b", now=NOW + 100)
    # WHEN run-b fails and releases its claims
    claims.release(aws.dynamodb, aws.table, A, "run-b")
    # THEN A is deferred again with its first date (not deleted: it keeps its place in the queue)
    assert item(aws, A)["state"] == "deferred"
    assert item(aws, A)["deferredSince"] == str(NOW)
    # WHEN run-c takes it and defers it once more
    claim(aws, A, "run-c", now=NOW + 200)
    claims.defer(aws.dynamodb, aws.table, A, "run-c", "held-by-audit-gate", NOW + 300)
    # THEN it still waits since the first deferral, with the latest reason
    assert item(aws, A)["deferredSince"] == str(NOW)
    assert item(aws, A)["reason"] == "held-by-audit-gate"


def test_defer_touches_only_the_runs_own_claims(aws: SimpleNamespace) -> None:
    # GIVEN B claimed by run-b and C labeled
    claim(aws, B, "run-b")
    claim(aws, C, "run-a")
    claims.mark_labeled(aws.dynamodb, aws.table, C, "run-a")
    # WHEN run-a defers B, C and an image nobody claimed (a non-incremental run has no claims)
    for ref in (A, B, C):
        claims.defer(aws.dynamodb, aws.table, ref, "run-a", "over-manifest-limit", NOW)
    # THEN nothing changed
    assert item(aws, A) is None
    assert item(aws, B)["state"] == "claimed"
    assert item(aws, C)["state"] == "labeled"


def test_real_dynamodb_errors_are_not_mistaken_for_taken_images(aws: SimpleNamespace) -> None:
    # GIVEN a misconfigured table name
    # THEN the claim fails loudly instead of reporting the image as taken
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        claims.claim(aws.dynamodb, "no-such-table", A, "run-a", NOW, NOW + HOUR)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        claims.release(aws.dynamodb, "no-such-table", A, "run-a")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        claims.defer(aws.dynamodb, "no-such-table", A, "run-a", "over-review-budget", NOW)
