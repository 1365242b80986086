"""The estimate a run's batches share (labeling_loop.inference.shared_rate): the split rule, the
run-state item behind a real (moto) DynamoDB client, and the balancing of two limiters."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from labeling_loop.inference.flow import Limiter, RateEstimate
from labeling_loop.inference.shared_rate import STALE_S, Report, SharedRate, share

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:labeling-loop-labeling-loop:run-1"


def test_unequal_shares_become_proportional_to_the_images_left() -> None:
    # GIVEN three batches that learned 18.8, 16.1 and 14.9 calls/s (issue 19) with equal work left
    reports = [
        Report(18.8, 19.5, 1000, 100.0),
        Report(16.1, 17.0, 1000, 100.0),
        Report(14.9, None, 1000, 100.0),
    ]
    # THEN each takes a third of the 49.8 calls/s they found together
    for mine in reports:
        rate, limit = share(mine, reports, now=100.0) or (0.0, None)
        assert rate == pytest.approx(49.8 / 3)
        assert limit == pytest.approx((19.5 + 17.0 + 14.9) / 3)
    # AND a batch that has fallen behind gets more, so they finish together
    behind = [Report(16.6, None, 1500, 100.0), Report(16.6, None, 500, 100.0)]
    assert share(behind[0], behind, 100.0) == (pytest.approx(24.9), None)


def test_older_reports_count_the_images_done_since() -> None:
    # GIVEN two batches at 10 calls/s with 300 images left each, one of which posted 4 s ago
    mine = Report(10.0, None, 300, 104.0)
    other = Report(10.0, None, 340, 100.0)  # 340 then, about 300 now
    # THEN the older count is taken as it stands now: equal shares, not less for the fresh one
    assert share(mine, [mine, other], now=104.0) == (pytest.approx(10.0), None)


def test_stale_reports_and_lone_batches_share_nothing() -> None:
    mine = Report(10.0, None, 100, 100.0)
    gone = Report(30.0, None, 100, 100.0 - STALE_S - 1)
    assert share(mine, [mine, gone], now=100.0) is None
    assert share(mine, [mine], now=100.0) is None
    # a batch that is done (nothing left) keeps its rate in the total while its report is fresh
    done = Report(20.0, None, 0, 99.0)
    assert share(mine, [mine, done], now=100.0) == (pytest.approx(30.0), None)


def test_each_batch_sees_every_batchs_report_in_the_run_state_table(aws: SimpleNamespace) -> None:
    clock = SimpleNamespace(now=1_000.0)
    first = SharedRate(aws.dynamodb, aws.table, EXECUTION, 0, clock=lambda: clock.now)
    second = SharedRate(aws.dynamodb, aws.table, EXECUTION, 1, clock=lambda: clock.now)
    first.exchange(20.0, None, 300)
    clock.now += 1
    mine, reports = second.exchange(10.0, 12.0, 200)
    assert mine == Report(10.0, 12.0, 200, 1_001.0)
    assert sorted(reports, key=lambda r: r.rate) == [
        Report(10.0, 12.0, 200, 1_001.0),
        Report(20.0, None, 300, 1_000.0),
    ]
    # another run's batches are not this run's
    other = SharedRate(aws.dynamodb, aws.table, EXECUTION + "-2", 0, clock=lambda: clock.now)
    assert len(other.exchange(5.0, None, 10)[1]) == 1


def test_two_limiters_are_balanced_through_the_table(aws: SimpleNamespace) -> None:
    # GIVEN two batches of a run whose estimates drifted apart (one was throttled more)
    clock = SimpleNamespace(now=1_000.0)
    limiters = [
        Limiter(RateEstimate(25.0, 12.5, rate=rate), clock=lambda: clock.now) for rate in (30.0, 18.0)
    ]
    shared = [SharedRate(aws.dynamodb, aws.table, EXECUTION, b, clock=lambda: clock.now) for b in (0, 1)]
    # WHEN each balances, in turn (each sees the other's last post)
    for _ in range(6):
        for limiter, side in zip(limiters, shared, strict=True):
            side.balance(limiter, left=500)
    # THEN they send at the same rate, between what each had found
    first, second = (limiter.estimate.rate for limiter in limiters)
    assert first == pytest.approx(second, rel=0.01)
    assert 18.0 < first < 30.0
