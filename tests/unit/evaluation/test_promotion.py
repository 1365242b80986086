"""Promotion on a real improvement (evaluation/promotion.py): the testing snapshots read as AWS
documents them, the paired F1 difference and its interval, the refusals, and seeded simulations of
the decision with the emulated model: how often two equal versions are promoted, and how often a
clearly better one is."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fixtures_aws import OUTPUT_BUCKET
from labeling_loop.evaluation.promotion import (
    NO_TEST_DATASET,
    ImageCounts,
    compare_versions,
    decide,
    image_counts,
    paired_f1,
    read_testing_snapshot,
    t_quantile,
)
from labeling_loop.kernel.jsonl import dumps
from labeling_loop.kernel.s3_uri import S3Uri

from localcloud.data.truth import Truth, TruthBox
from localcloud.services.custom_labels import CustomLabelsConfig
from localcloud.services.custom_labels.model import TrainedModel
from localcloud.services.custom_labels.results import score_image

# The documented testing-snapshot lines (docs/aws-facts.md §1.9), one prediction each.
DETAILS = {
    "version": 1,
    "ground-truth-labelling-jobs": ["rekognition-custom-labels-training-job"],
    "is-true-positive": True,
    "is-true-negative": False,
    "is-false-positive": False,
    "is-false-negative": False,
    "is-present-in-ground-truth": True,
}
DETECTION_LINE = {
    "source-ref": "s3://test-bucket/dataset/beckham.jpeg",
    "rekognition-custom-labels-training-0": {
        "annotations": [
            {"class_id": 0, "width": 39, "top": 409, "height": 63, "left": 712},
            {"class_id": 0, "width": 40, "top": 100, "height": 60, "left": 100},
        ],
        "image_size": [{"width": 1024, "depth": 3, "height": 768}],
    },
    "rekognition-custom-labels-training-0-metadata": {
        "job-name": "rekognition-custom-labels-training-job",
        "class-map": {"0": "Cap"},
        "human-annotated": "yes",
        "objects": [{"confidence": 1.0}, {"confidence": 1.0}],
        "creation-date": "2019-10-21T22:02:18.432644",
        "type": "groundtruth/object-detection",
    },
    "rekognition-custom-labels-evaluation": {
        "annotations": [
            {"class_id": 0, "width": 39, "top": 409, "height": 63, "left": 712},
            {"class_id": 0, "width": 30, "top": 10, "height": 30, "left": 10},
        ],
        "image_size": [{"width": 1024, "depth": 3, "height": 768}],
    },
    "rekognition-custom-labels-evaluation-metadata": {
        "confidence": 0.95,
        "job-name": "rekognition-custom-labels-evaluation-job",
        "class-map": {"0": "Cap"},
        "human-annotated": "no",
        "objects": [
            {"confidence": 0.95, "rekognition-custom-labels-evaluation-details": DETAILS},
            {
                "confidence": 0.7,
                "rekognition-custom-labels-evaluation-details": {
                    **DETAILS,
                    "is-true-positive": False,
                    "is-false-positive": True,
                    "is-present-in-ground-truth": False,
                },
            },
        ],
        "creation-date": "2019-10-21T22:02:18.432644",
        "type": "groundtruth/object-detection",
    },
}
CLASSIFICATION_LINE = {
    "source-ref": "s3://test-bucket/dataset/beckham.jpeg",
    "rekognition-custom-labels-training-0": 1,
    "rekognition-custom-labels-training-0-metadata": {
        "confidence": 1.0,
        "job-name": "rekognition-custom-labels-training-job",
        "class-name": "Football",
        "human-annotated": "yes",
        "creation-date": "2019-09-06T00:07:25.488243",
        "type": "groundtruth/image-classification",
    },
    "rekognition-custom-labels-evaluation-0": 1,
    "rekognition-custom-labels-evaluation-0-metadata": {
        "confidence": 0.95,
        "job-name": "rekognition-custom-labels-evaluation-job",
        "class-name": "Football",
        "human-annotated": "no",
        "creation-date": "2019-09-06T00:07:25.488243",
        "type": "groundtruth/image-classification",
        "rekognition-custom-labels-evaluation-details": DETAILS,
    },
}


def test_the_documented_snapshot_lines_read_as_true_positives_false_positives_and_misses() -> None:
    detection = image_counts(DETECTION_LINE)
    assert (detection.tp, detection.fp, detection.fn) == (1, 1, 1)  # 2 true objects, 1 found
    classification = image_counts(CLASSIFICATION_LINE)
    assert (classification.tp, classification.fp, classification.fn) == (1, 0, 0)
    # a line whose model predicted nothing: every true object is a miss
    bare = {k: v for k, v in DETECTION_LINE.items() if "evaluation" not in k}
    missed = image_counts(bare)
    assert (missed.tp, missed.fp, missed.fn) == (0, 0, 2)


def test_student_t_quantiles_match_the_tables() -> None:
    # two-sided 95 % critical values (any statistics table)
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262, 19: 2.093, 49: 2.010, 99: 1.984}
    for df, value in table.items():
        assert t_quantile(0.975, df) == pytest.approx(value, abs=0.002), df


def _counts(rows: list[tuple[int, int, int]]) -> dict[str, ImageCounts]:
    return {f"s3://b/{i:04d}.jpg": ImageCounts(tp, fp, fn, "t") for i, (tp, fp, fn) in enumerate(rows)}


def test_the_interval_is_what_a_seeded_paired_bootstrap_over_images_gives() -> None:
    # GIVEN two versions scored on the same 80 images
    rng = random.Random(7)
    rows_a, rows_b = [], []
    for _ in range(80):
        objects = rng.randint(1, 4)
        found_a = sum(rng.random() < 0.85 for _ in range(objects))
        found_b = sum(rng.random() < 0.92 for _ in range(objects))
        rows_a.append((found_a, int(rng.random() < 0.2), objects - found_a))
        rows_b.append((found_b, int(rng.random() < 0.1), objects - found_b))
    before, after = _counts(rows_a), _counts(rows_b)
    paired = paired_f1(before, after)

    # WHEN the same difference is bootstrapped: images drawn with replacement, both versions together
    def f1(rows: list[tuple[int, int, int]]) -> float:
        tp, fp, fn = (sum(r[i] for r in rows) for i in range(3))
        return 2 * tp / (2 * tp + fp + fn)

    boot = random.Random(11)
    diffs = sorted(
        f1([rows_b[i] for i in picks]) - f1([rows_a[i] for i in picks])
        for picks in ([boot.randrange(80) for _ in range(80)] for _ in range(4000))
    )
    low, high = diffs[int(0.025 * 4000)], diffs[int(0.975 * 4000) - 1]
    # THEN the analytic interval is centred on the same difference and about as wide (within 15 %)
    ours = paired.difference_interval
    assert paired.difference == pytest.approx(f1(rows_b) - f1(rows_a))
    assert (ours[1] - ours[0]) == pytest.approx(high - low, rel=0.15), (ours, (low, high))
    assert abs((ours[0] + ours[1]) / 2 - (low + high) / 2) < 0.25 * (high - low)


def test_different_test_images_changed_truth_or_a_single_image_are_refused() -> None:
    from labeling_loop.evaluation.promotion import ComparisonRefused

    before = _counts([(2, 0, 0), (1, 1, 0), (3, 0, 1)])
    with pytest.raises(ComparisonRefused, match="not tested on the same images: 1 only in the current"):
        paired_f1(before, dict(list(before.items())[:2]))
    relabelled = {**before, "s3://b/0000.jpg": ImageCounts(2, 0, 0, "other")}
    with pytest.raises(ComparisonRefused, match="ground truth of 1 test images changed"):
        paired_f1(before, relabelled)
    with pytest.raises(ComparisonRefused, match="at least 2"):
        paired_f1(dict(list(before.items())[:1]), dict(list(before.items())[:1]))
    with pytest.raises(ComparisonRefused, match="twice"):
        read_testing_snapshot([DETECTION_LINE, DETECTION_LINE])


# ---------------------------------------------------------------------------------------------
# the decision, simulated with the emulated model


def _test_set(rng: random.Random, images: int) -> list[Truth]:
    truths = []
    for i in range(images):
        boxes = []
        for _ in range(rng.randint(1, 4)):
            w, h = rng.randint(40, 120), rng.randint(40, 120)
            boxes.append(
                TruthBox(rng.choice(["circle", "square"]), rng.randint(0, 500), rng.randint(0, 350), w, h)
            )
        truths.append(Truth(f"s3://test/{i:04d}.png", 640, 480, boxes, sorted({b.label for b in boxes})))
    return truths


def _snapshot(model: TrainedModel, config: CustomLabelsConfig, truths: list[Truth]) -> dict[str, ImageCounts]:
    """The testing snapshot the emulator writes for this model, read back by the layer."""
    lines = (
        score_image(
            t, model.predict(config, t.source_ref, t.width, t.height), config.assumed_threshold, True, ""
        ).line
        for t in truths
    )
    return read_testing_snapshot(lines)


def _promotion_rate(draws: int, images: int, scale_after: float) -> tuple[float, float, float]:
    """Over `draws` seeded draws (a fresh test set and fresh model noise each), the share of draws
    where a version of noise scale 1.0 is replaced by one of `scale_after`, the mean F1 gain, and
    the share the old rule (any higher F1) would have promoted."""
    promoted, gains, higher = 0, 0.0, 0
    for draw in range(draws):
        rng = random.Random(draw)
        truths = _test_set(rng, images)
        truth = {t.source_ref: t for t in truths}
        config = CustomLabelsConfig(seed=draw)
        current = TrainedModel(f"arn:p/version/v1/{draw}", "detection", truth, ["circle", "square"], 1.0)
        new = TrainedModel(f"arn:p/version/v2/{draw}", "detection", truth, ["circle", "square"], scale_after)
        paired = paired_f1(_snapshot(current, config, truths), _snapshot(new, config, truths))
        promoted += paired.better
        gains += paired.difference
        higher += paired.difference > 0
    return promoted / draws, gains / draws, higher / draws


@pytest.mark.parametrize("images", [20, 50])
def test_two_equal_versions_are_promoted_at_most_5_percent_of_1000_draws(images: int) -> None:
    rate, gain, higher = _promotion_rate(1000, images, 1.0)
    print(
        f"\nequal versions, {images} test images: promoted in {rate:.1%} of 1000 draws "
        f"(mean F1 gain {gain:+.4f}; any higher F1: {higher:.1%})"
    )
    assert rate <= 0.05


def test_a_clearly_better_version_is_promoted_most_of_the_time() -> None:
    # half the misses, false positives and jitter: about +0.063 F1 with the calibrated emulated model,
    # whose errors concentrate on hard images (measured: promoted in 93.5 % of 200 draws at 300 test
    # images, 82.5 % at 200, 97.5 % at 400)
    rate, gain, higher = _promotion_rate(200, 300, 0.5)
    print(
        f"\nnoise halved, 300 test images: promoted in {rate:.1%} of 200 draws "
        f"(mean F1 gain {gain:+.4f}; any higher F1: {higher:.1%})"
    )
    assert gain > 0.03 and rate >= 0.85


# ---------------------------------------------------------------------------------------------
# the comparison a training makes, from S3


def _put(s3: Any, key: str, lines: list[dict[str, Any]]) -> S3Uri:
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body="".join(dumps(line) + "\n" for line in lines).encode())
    return S3Uri(OUTPUT_BUCKET, key)


def _described(testing: S3Uri, training: S3Uri) -> dict[str, Any]:
    def result(uri: S3Uri) -> dict[str, Any]:
        return {
            "Output": {
                "Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": uri.bucket, "Name": uri.key}}}]
            }
        }

    return {"TestingDataResult": result(testing), "TrainingDataResult": result(training)}


def _line(ref: str, found: int) -> dict[str, Any]:
    """A documented detection line with two true objects, `found` of them predicted."""
    objects = DETECTION_LINE["rekognition-custom-labels-evaluation-metadata"]["objects"]
    metadata = {
        **DETECTION_LINE["rekognition-custom-labels-evaluation-metadata"],
        "objects": [objects[0]] * found,
    }
    return {**DETECTION_LINE, "source-ref": ref, "rekognition-custom-labels-evaluation-metadata": metadata}


def test_a_training_compares_on_the_snapshots_and_refuses_test_images_in_the_training_data(aws: Any) -> None:
    refs = [f"s3://images/test/{i}.jpg" for i in range(30)]
    current = _put(aws.s3, "v1/testing.manifest", [_line(r, 1) for r in refs])
    new = _put(aws.s3, "v2/testing.manifest", [_line(r, 2) for r in refs])
    clean = _put(aws.s3, "v2/training.manifest", [{"source-ref": "s3://images/train/0.jpg"}])
    leaky = _put(aws.s3, "v2/training-leaky.manifest", [{"source-ref": refs[3]}, {"source-ref": refs[7]}])

    # a clear improvement on the same 30 images: promoted
    comparison = compare_versions(aws.s3, [current], _described(new, clean), has_test_dataset=True)
    assert comparison["possible"] and comparison["better"] and comparison["testImages"] == 30, comparison
    assert comparison["f1Before"]["estimate"] == round(2 / 3, 4) and comparison["f1After"]["estimate"] == 1.0
    decision = decide(comparison, True, "arn:v1", "arn:v2")
    assert decision["promote"] and decision["nextProjectVersionArn"] == "arn:v2"
    assert decide(comparison, False, "arn:v1", "arn:v2")["nextProjectVersionArn"] == "arn:v1"

    # the same, with two test images in the new version's training data: refused, and not promoted
    refused = compare_versions(aws.s3, [current], _described(new, leaky), has_test_dataset=True)
    assert (
        not refused["possible"]
        and "2 test images are in the new version's training data" in refused["reason"]
    )
    assert decide(refused, True, "arn:v1", "arn:v2") == {
        "promote": False,
        "reason": f"not compared: {refused['reason']}",
        "nextProjectVersionArn": "arn:v1",
    }

    # no TEST dataset: not possible, and how to get one
    none = compare_versions(aws.s3, [current], _described(new, clean), has_test_dataset=False)
    assert none["reason"] == NO_TEST_DATASET and "CreateDataset" in none["reason"]

    # a snapshot the role cannot read (here: missing) is a reason, not a failed run
    gone = compare_versions(
        aws.s3, [S3Uri(OUTPUT_BUCKET, "v0/none")], _described(new, clean), has_test_dataset=True
    )
    assert not gone["possible"] and "NoSuchKey" in gone["reason"]
