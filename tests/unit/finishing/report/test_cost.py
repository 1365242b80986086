"""What a run cost, and what it cost per correct label."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from fixtures_aws import make_config
from labeling_loop.finishing.report.cost import run_cost
from labeling_loop.finishing.report.engine_usage import measure_run


def test_cost_counts_inference_unit_hours_review_and_engine() -> None:
    cost = run_cost(
        model_usage={"modelSeconds": 1800, "inferenceUnits": 2, "startedByRun": True},
        backend="groundtruth",
        images_reviewed_by_people=100,
        batches=10,
        images_labeled=200,
    )
    assert cost["inference"]["quantity"] == 1.0 and cost["inference"]["usd"] == 4.0
    assert cost["review"]["usd"] == pytest.approx(8.0)
    assert cost["totalUsd"] == pytest.approx(12.0 + cost["engine"]["usd"], abs=1e-3)
    assert cost["perLabeledImageUsd"] == pytest.approx(cost["totalUsd"] / 200, abs=1e-5)


def test_cost_per_correct_image_leaves_out_the_auto_accepted_images_estimated_wrong() -> None:
    # GIVEN 200 images in the manifest, of which the audit says 2 to 10 auto-accepted ones are wrong
    cost = run_cost(
        model_usage={"modelSeconds": 3600, "inferenceUnits": 1},
        backend="labelstudio",
        images_reviewed_by_people=50,
        batches=1,
        images_labeled=200,
        wrong_auto_accepted=[2, 10],
        reviewer_seconds=50 * 36.0,
        reviewer_hourly_usd=30.0,
    )
    # THEN the correct images are 190-198 and the cost per correct image is over those, people included
    assert cost["correctImages95"] == [190, 198]
    assert cost["people"]["quantity"] == 0.5 and cost["people"]["usd"] == 15.0
    best, worst = cost["perCorrectImageUsd95"]
    assert best == pytest.approx(cost["totalUsd"] / 198, abs=1e-5)
    assert worst == pytest.approx(cost["totalUsd"] / 190, abs=1e-5)
    assert worst > cost["perLabeledImageUsd"]


def test_the_engine_line_uses_what_was_measured_and_says_what_was_estimated() -> None:
    usage = {"transitions": 140, "invocations": 21, "measuredTransitions": 129, "estimatedTransitions": 11}
    cost = run_cost(
        model_usage={}, backend="groundtruth", images_reviewed_by_people=0, batches=3, images_labeled=10,
        engine_usage=usage,
    )  # fmt: skip
    engine = cost["engine"]
    assert engine["quantity"] == 140 and engine["measuredTransitions"] == 129
    assert (
        engine["note"].startswith("measured: 140 transitions and 21 Lambda requests")
        and "11" in engine["note"]
    )
    # without a measurement, the estimate, said so
    assert run_cost(
        model_usage={}, backend="groundtruth", images_reviewed_by_people=0, batches=3, images_labeled=10
    )["engine"]["note"].startswith("estimate:")


def test_a_history_the_run_cannot_read_falls_back_to_the_estimate() -> None:
    class Refusing:
        def get_paginator(self, name: str) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetExecutionHistory"
            )

    config = make_config()
    assert measure_run(Refusing(), None, config, review_seconds=0) is None
