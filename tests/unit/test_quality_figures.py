"""The figures of the report on hand-checked cases and properties: the Wilson interval, threshold
choice, per-label and stratum-weighted quality, the audit, the audit sample, cost and COCO."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from labeling_loop.export.coco import CocoWriter
from labeling_loop.geometry import PixelBox
from labeling_loop.manifest.measures import AUDIT, REVIEW, RunMeasures
from labeling_loop.manifest.quality import LabeledBox
from labeling_loop.manifest.thresholds import ScoredBox, ThresholdCounts, correct_by_confidence, recommend
from labeling_loop.report.cost import run_cost
from labeling_loop.review.plan import AuditSampler, AutoAccept, audit_key, is_auto_accepted
from labeling_loop.s3_uri import S3Uri
from labeling_loop.stats import effective_size, weighted_wilson, wilson_interval

# Wilson interval -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # Hand-checked with the closed form (z = 1.959964): p = 0.5, n = 10 -> centre 0.5,
        # half = z * sqrt(0.025 + 0.0096) / 1.3841 = 0.2634
        (5, 10, 0.2366, 0.7634),
        # x = 0: low 0, high = z²/n / (1 + z²/n) = 0.38415 / 1.38415 = 0.2775
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        # 1 of 20, from the same closed form: centre 0.1402, half 0.1136
        (1, 20, 0.0089, 0.2361),
    ],
)
def test_wilson_interval_on_hand_checked_cases(x: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(x, n)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_wilson_interval_without_trials_is_everything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0.02, 0.98), n=st.integers(20, 200), seed=st.integers(0, 2**32 - 1))
def test_wilson_interval_covers_the_true_rate_about_95_percent_of_the_time(
    p: float, n: int, seed: int
) -> None:
    # Exact coverage over the binomial distribution (no sampling noise): Wilson's coverage stays near
    # 0.95; its known dips for small n*p stay above 0.85 in this range (Brown, Cai and DasGupta 2001).
    coverage = sum(
        math.comb(n, x) * p**x * (1 - p) ** (n - x)
        for x in range(n + 1)
        if wilson_interval(x, n)[0] <= p <= wilson_interval(x, n)[1]
    )
    assert coverage >= 0.85


def test_wilson_coverage_by_simulation_is_close_to_nominal() -> None:
    rng = random.Random(7)
    hits = trials = 0
    for _ in range(2000):
        p, n = rng.uniform(0.05, 0.5), rng.randint(30, 120)
        x = sum(rng.random() < p for _ in range(n))
        low, high = wilson_interval(x, n)
        hits += low <= p <= high
        trials += 1
    assert 0.93 <= hits / trials <= 0.97


def test_weighted_interval_with_equal_weights_is_the_plain_one() -> None:
    assert effective_size(20.0, 20.0) == 20.0
    assert weighted_wilson(6 * 3.0, 20 * 3.0, 20 * 9.0) == pytest.approx(wilson_interval(6, 20))


# Thresholds ----------------------------------------------------------------------------------------


def _box(x: int) -> PixelBox:
    return PixelBox(x, 0, 10, 10)


def test_matching_in_confidence_order_gives_the_box_to_the_surest_prediction() -> None:
    # Two predictions on one true box: the surer one matches, the other is a false positive, even
    # though the less sure one overlaps better.
    truth = [LabeledBox("cat", _box(0))]
    predicted = [ScoredBox("cat", 60.0, _box(0)), ScoredBox("cat", 90.0, _box(2))]
    assert correct_by_confidence(predicted, truth) == [False, True]


def _counts(rows: list[tuple[str, float, bool]]) -> ThresholdCounts:
    counts = ThresholdCounts()
    for label, confidence, right in rows:
        counts.add(label, REVIEW, confidence, right)
    return counts


def test_recommended_threshold_is_the_lowest_whose_lower_bound_reaches_the_target() -> None:
    # 40 right predictions at 90, 10 wrong at 55: at 55 precision 0.8 (lower bound ~0.67); at 90,
    # 40/40 (lower bound 40/(40+z²) = 0.912).
    counts = _counts([("cat", 90.0, True)] * 40 + [("cat", 55.0, False)] * 10)
    curve = counts.curve(["cat"], {REVIEW: 1.0}, floor=50.0)
    row = recommend(curve, 0.9)
    assert row["recommended"] == 90.0
    assert row["precision"] == 1.0 and row["precisionLowerBound"] == pytest.approx(0.9124, abs=1e-3)
    assert recommend(curve, 0.95)["recommended"] is None  # 40 successes cannot prove 0.95
    # the floor (minConfidence) is where counting starts: below it nothing is shown
    assert curve[0][0] == 50.0


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(st.tuples(st.floats(10, 99.9), st.booleans()), min_size=1, max_size=120),
    targets=st.tuples(st.floats(0.5, 0.999), st.floats(0.5, 0.999)),
)
def test_threshold_choice_is_monotone_in_the_target(
    rows: list[tuple[float, bool]], targets: tuple[float, float]
) -> None:
    low_target, high_target = sorted(targets)
    curve = _counts([("cat", c, r) for c, r in rows]).curve(["cat"], {REVIEW: 1.0}, floor=10.0)
    low, high = recommend(curve, low_target)["recommended"], recommend(curve, high_target)["recommended"]
    if high is not None:
        assert low is not None and low <= high
    # and whatever is recommended meets its target
    for target, chosen in ((low_target, low), (high_target, high)):
        if chosen is not None:
            point = next(r for r in curve if r[0] == chosen)
            assert weighted_wilson(point[1], point[2], point[3])[0] >= target


# Per-label, whole-run quality and the audit ---------------------------------------------------------


def _prediction(ref: str, labels: list[tuple[str, float, int]]) -> dict[str, Any]:
    return {
        "source-ref": ref,
        "image_size": {"width": 100, "height": 100, "depth": 3},
        "labels": [
            {"name": name, "confidence": c, "box": {"left": x / 100, "top": 0.0, "width": 0.1, "height": 0.1}}
            for name, c, x in labels
        ],
    }


def _reviewed(ref: str, boxes: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "source-ref": ref,
        "taskType": "detection",
        "image_size": {"width": 100, "height": 100, "depth": 3},
        "boxes": [
            {"label": n, "left": x, "top": 0, "width": 10, "height": 10, "status": "kept"} for n, x in boxes
        ],
        "labels": [],
        "removed": [],
        "humanReviewed": True,
        "reviewSeconds": 12.0,
    }


def test_whole_run_figures_weight_each_stratum_by_its_images_per_reviewed_image() -> None:
    measures = RunMeasures("detection", min_confidence=50.0, floor=10.0)
    # review stratum: one image, the model right about the cat, wrong about a dog (fp)
    measures.add(
        "r1", _reviewed("r1", [("cat", 0)]), _prediction("r1", [("cat", 60, 0), ("dog", 55, 50)]), False
    )
    # audit stratum: one image, the model right
    measures.add("a1", _reviewed("a1", [("cat", 0)]), _prediction("a1", [("cat", 95, 0)]), True)
    # 1 image in review, 10 auto-accept candidates (1 audited): the audited image stands for 10
    quality = measures.quality({REVIEW: 1, AUDIT: 10})
    reviewed, whole = quality["reviewedImages"]["overall"], quality["wholeRun"]["overall"]
    assert (reviewed["tp"], reviewed["fp"], reviewed["fn"]) == (2, 1, 0)
    assert (whole["tp"], whole["fp"], whole["fn"]) == (11, 1, 0)
    assert whole["precision"] == pytest.approx(11 / 12, abs=1e-4)
    assert quality["reviewedImages"]["byLabel"]["dog"]["precision"] == 0.0
    # predictions below minConfidence are not counted as shown, but feed the thresholds
    audit = measures.audit(candidates=10, audited=1, target=0.05)
    assert audit is not None and audit["errors"] == 0 and audit["interval95"][0] == 0.0
    work = measures.work_saved(images_auto_accepted=9)
    assert (
        work["kept"] == 2 and work["shareNeedingNoChange"] == 1.0 and work["reviewerSecondsPerImage"] == 12.0
    )


def test_an_audited_image_people_changed_is_an_auto_accept_error() -> None:
    measures = RunMeasures("detection", min_confidence=50.0, floor=10.0)
    measures.add("a1", _reviewed("a1", [("cat", 0), ("cat", 50)]), _prediction("a1", [("cat", 95, 0)]), True)
    measures.add("a2", _reviewed("a2", [("cat", 0)]), _prediction("a2", [("cat", 95, 0)]), True)
    audit = measures.audit(candidates=2, audited=2, target=0.05)
    assert audit is not None
    assert (audit["errors"], audit["missedObjects"], audit["errorRate"]) == (1, 1, 0.5)
    assert audit["meetsTarget"] is False
    assert measures.disagreements()[0]["source-ref"] == "a1"


def test_whole_run_is_not_claimed_when_auto_accepted_images_were_not_audited() -> None:
    measures = RunMeasures("detection", min_confidence=50.0, floor=10.0)
    measures.add("r1", _reviewed("r1", [("cat", 0)]), _prediction("r1", [("cat", 60, 0)]), False)
    quality = measures.quality({REVIEW: 1, AUDIT: 5})
    assert quality["wholeRun"] is None and "not audited" in quality["wholeRunNote"]


# The audit sample and per-label auto-accept ---------------------------------------------------------


def test_the_audit_sample_takes_the_lowest_keys_and_at_least_the_minimum() -> None:
    refs = [f"s3://b/img-{i:03d}.jpg" for i in range(200)]
    keys = sorted(audit_key(r) for r in refs)
    sampler = AuditSampler(fraction=0.05, minimum=20)
    for ref in refs:
        sampler.offer(audit_key(ref))
    chosen = [r for r in refs if sampler.selects(audit_key(r))]
    # 5 % of 200 is about 10, fewer than the minimum: exactly the 20 lowest keys
    assert len(chosen) == 20 and sorted(audit_key(r) for r in chosen) == keys[:20]
    # reproducible: the same images every time, whatever the order they come in
    again = AuditSampler(fraction=0.05, minimum=20)
    for ref in reversed(refs):
        again.offer(audit_key(ref))
    assert [r for r in refs if again.selects(audit_key(r))] == chosen


def test_per_label_thresholds_decide_auto_accept() -> None:
    task = {"predictions": [{"label": "cat", "confidence": 85.0}, {"label": "dog", "confidence": 97.0}]}
    assert is_auto_accepted(task, AutoAccept(90.0)) is False
    assert is_auto_accepted(task, AutoAccept(None, {"cat": 80.0, "dog": 95.0})) is True
    assert is_auto_accepted(task, AutoAccept(None, {"cat": 80.0})) is False  # dog: always reviewed
    assert is_auto_accepted({"predictions": []}, AutoAccept(0.0)) is False


# Cost and COCO ------------------------------------------------------------------------------------


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


def test_coco_writer_streams_a_valid_document(moto_s3: Any) -> None:
    moto_s3.create_bucket(Bucket="out")
    uri = S3Uri("out", "run/coco.json")
    line = {
        "source-ref": "s3://images/a b/c.jpg",
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [{"class_id": 1, "left": 10, "top": 20, "width": 30, "height": 40}],
        },
        "bounding-box-metadata": {"class-map": {"0": "cat", "1": "dog"}},
    }
    with CocoWriter(moto_s3, uri, ["cat", "dog"]) as coco:
        coco.add(line)
        coco.add({**line, "source-ref": "s3://images/d.jpg"})
    document = json.loads(moto_s3.get_object(Bucket="out", Key=uri.key)["Body"].read())
    assert [i["file_name"] for i in document["images"]] == ["a b/c.jpg", "d.jpg"]
    assert document["annotations"][0] == {
        "id": 1, "image_id": 1, "category_id": 2, "bbox": [10, 20, 30, 40], "area": 1200, "iscrowd": 0,
    }  # fmt: skip
    assert [c["name"] for c in document["categories"]] == ["cat", "dog"]
