"""The fan-out's plan (inference/fan_out.py): equal slices of the inventory, one batch per 10 inference
units in service, each starting from its share of the priors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from labeling_loop.inference.fan_out import UNITS_PER_BATCH, plan_batches


def test_nothing_to_infer_plans_nothing() -> None:
    assert plan_batches(0, 5) == []


@pytest.mark.parametrize(
    ("images", "units", "sizes"),
    [
        (300, 1, [300]),
        (300, 5, [300]),  # one batch drives up to 10 units
        (1_500, 10, [1_500]),
        (1_500, 11, [750, 750]),
        (20_000, 25, [6_667, 6_667, 6_666]),
        (3, 100, [1, 1, 1]),  # never a batch without an image
    ],
)
def test_one_batch_per_ten_units_in_one_wave_of_equal_slices(
    images: int, units: int, sizes: list[int]
) -> None:
    batches = plan_batches(images, units)
    assert [b.count for b in batches] == sizes
    assert [b.batch_id for b in batches] == list(range(len(sizes)))


def test_each_batch_starts_from_its_share_of_the_priors() -> None:
    # GIVEN 12 units in service: two batches
    first, second = plan_batches(300, 12)
    # THEN each gets half of 12 x 5 calls/s and of 12 x 2.5 calls in flight, and knows it has a
    # sibling to share its estimate with
    assert first.to_dict() == {
        "batchId": 0,
        "first": 0,
        "count": 150,
        "callsPerSecond": 30.0,
        "callsInFlight": 15.0,
        "batches": 2,
    }
    assert second.to_dict()["first"] == 150


@given(st.integers(min_value=1, max_value=200_000), st.integers(min_value=1, max_value=100))
def test_the_slices_cover_the_inventory_once_and_differ_by_at_most_one(images: int, units: int) -> None:
    batches = plan_batches(images, units)
    # every line of the inventory in exactly one batch, in order
    assert batches[0].first == 0
    assert all(a.first + a.count == b.first for a, b in itertools.pairwise(batches))
    assert batches[-1].first + batches[-1].count == images
    # as many batches as the units need (at most one per image), equal to within one image
    assert len(batches) == min(images, -(-units // UNITS_PER_BATCH))
    assert max(b.count for b in batches) - min(b.count for b in batches) <= 1
    assert sum(b.calls_per_second for b in batches) == pytest.approx(units * 5.0)
