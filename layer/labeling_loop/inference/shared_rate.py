"""What the batches of one run share: their estimate of the model's capacity.

Each batch paces its calls with its own estimate (flow.py), because concurrent Lambda invocations
share no memory. Above 10 inference units a run has several batches (plan.py), and learning alone
they settle on unequal shares: their sum finds the capacity, their split does not (issue 19: 25 units
of a 2 TPS/unit model, batches at 18.8, 16.1 and 14.9 calls/s), and the batch with the smallest share
finishes last while the others' share goes unused (0.896 of capacity).

So every SYNC_S seconds each batch posts its rate, the rate last refused and the images it has left
to one item of the run-state table (`flow#<execution ARN>`, one attribute per batch; the UpdateItem
answers with the whole item), and takes as its own the batches' total in proportion to the images it
has left: the capacity they found together is kept, and they all finish together. A report older
than STALE_S (a batch between two invocations, or done) no longer counts. One write per batch every
SYNC_S seconds; a run with one batch shares nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from labeling_loop.inference.flow import Limiter

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

SYNC_S = 2.0
STALE_S = 10.0


@dataclass(frozen=True)
class Report:
    """One batch's post: calls/s it sends at, the rate the model last refused (None: never), the
    images it has left, when (epoch seconds)."""

    rate: float
    limit: float | None
    left: int
    at: float

    def to_item(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "rate": {"N": f"{self.rate:.6f}"},
            "left": {"N": str(self.left)},
            "at": {"N": f"{self.at:.3f}"},
        }
        if self.limit is not None:
            value["limit"] = {"N": f"{self.limit:.6f}"}
        return {"M": value}

    @classmethod
    def of_item(cls, item: AttributeValueTypeDef) -> Report:
        value = item["M"]
        limit = value.get("limit")
        return cls(
            float(value["rate"]["N"]),
            None if limit is None else float(limit["N"]),
            int(value["left"]["N"]),
            float(value["at"]["N"]),
        )


def share(mine: Report, reports: list[Report], now: float) -> tuple[float, float | None] | None:
    """This batch's (rate, refused rate) from every batch's fresh report (its own included): the
    total in proportion to the images left. None when there is nothing to share."""
    fresh = [r for r in reports if now - r.at <= STALE_S]
    # Each report as it stands now: a batch posted a few seconds ago has done rate x age images
    # since. (Unprojected, a batch's own fresh count against the others' older, larger ones gave
    # every batch a little less than its share at every exchange: measured, the run's rate decayed
    # by 1-2 % a round.)
    lefts = [max(0.0, r.left - r.rate * max(0.0, now - r.at)) for r in fresh]
    mine_left = max(0.0, mine.left - mine.rate * max(0.0, now - mine.at))
    left = sum(lefts)
    if len(fresh) < 2 or left <= 0 or mine_left <= 0:
        return None
    fraction = mine_left / left
    rate = sum(r.rate for r in fresh) * fraction
    if all(r.limit is None for r in fresh):
        return rate, None
    return rate, sum(r.rate if r.limit is None else r.limit for r in fresh) * fraction


class SharedRate:
    """The run's item in the run-state table, from one batch's side."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        execution_arn: str,
        batch_id: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._key = {"pk": {"S": f"flow#{execution_arn}"}}
        self._attribute = f"b{batch_id}"
        self._clock = clock

    def exchange(self, rate: float, limit: float | None, left: int) -> tuple[Report, list[Report]]:
        """Post this batch's report; return it and every batch's (this one's included)."""
        mine = Report(rate, limit, left, self._clock())
        answer = self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET #me = :report",
            ExpressionAttributeNames={"#me": self._attribute},
            ExpressionAttributeValues={":report": mine.to_item()},
            ReturnValues="ALL_NEW",
        )
        attributes = answer.get("Attributes", {})
        return mine, [Report.of_item(v) for k, v in attributes.items() if k.startswith("b") and "M" in v]

    def balance(self, limiter: Limiter, left: int) -> None:
        """One exchange: post the limiter's estimate and take this batch's share of the total."""
        rate, limit = limiter.estimate_now()
        mine, reports = self.exchange(rate, limit, left)
        shared = share(mine, reports, self._clock())
        if shared is not None:
            limiter.adopt(*shared)


@contextmanager
def balancing(shared: SharedRate | None, limiter: Limiter, left: Callable[[], int]) -> Iterator[None]:
    """Balance the limiter with the run's other batches every SYNC_S seconds while the block runs. A
    failed exchange is skipped (the batch keeps its own estimate): sharing is an optimisation, never
    a reason to fail a batch."""
    if shared is None:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(SYNC_S):
            try:
                shared.balance(limiter, left())
            except (ClientError, BotoCoreError):
                continue

    thread = threading.Thread(target=loop, name="shared-rate", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        try:  # the last word: how much is left, so the others take this batch's share at once
            shared.balance(limiter, left())
        except (ClientError, BotoCoreError):
            pass
