"""The run's figures from reviewed images: quality with intervals per stratum, the one verdict fed
to the audit, the thresholds and the work figures."""

from __future__ import annotations

import random
from typing import Any

import pytest
from labeling_loop.evaluation.measures import AUDIT, REVIEW, RunMeasures
from labeling_loop.evaluation.quality import Moments, Stratum, ratio_estimate


def prediction(ref: str, labels: list[tuple[str, float, int]]) -> dict[str, Any]:
    """A prediction record on a 1000 x 1000 image: (label, confidence, left px) of 100 px boxes."""
    return {
        "source-ref": ref,
        "image_size": {"width": 1000, "height": 1000, "depth": 3},
        "labels": [
            {
                "name": name,
                "confidence": c,
                "box": {"left": x / 1000, "top": 0.0, "width": 0.1, "height": 0.1},
            }
            for name, c, x in labels
        ],
    }


def reviewed(ref: str, boxes: list[tuple[str, int]], seconds: float = 12.0) -> dict[str, Any]:
    return {
        "source-ref": ref,
        "taskType": "detection",
        "image_size": {"width": 1000, "height": 1000, "depth": 3},
        "boxes": [
            {"label": n, "left": x, "top": 0, "width": 100, "height": 100, "status": "kept"} for n, x in boxes
        ],
        "labels": [],
        "removed": [],
        "humanReviewed": True,
        "reviewSeconds": seconds,
    }


def measures() -> RunMeasures:
    return RunMeasures("detection", min_confidence=50.0, floor=10.0)


def test_whole_run_figures_weight_each_stratum_by_its_images_per_reviewed_image() -> None:
    m = measures()
    # review stratum: the model right about the cat, wrong about a dog (a false positive)
    m.add("r1", reviewed("r1", [("cat", 0)]), prediction("r1", [("cat", 60, 0), ("dog", 55, 500)]))
    # audit stratum: one image, the model right
    m.add("a1", reviewed("a1", [("cat", 0)]), prediction("a1", [("cat", 95, 0)]), stratum=AUDIT, audited=True)
    # 1 image in review, 10 auto-accept candidates (1 audited): the audited image stands for 10
    quality = m.quality({REVIEW: 1, AUDIT: 10})
    on_reviewed, whole = quality["reviewedImages"]["overall"], quality["wholeRun"]["overall"]
    assert (on_reviewed["tp"], on_reviewed["fp"], on_reviewed["fn"]) == (2, 1, 0)
    assert (whole["tp"], whole["fp"], whole["fn"]) == (11, 1, 0)
    # printed at the precision its interval has (a wide interval: one decimal)
    precision = whole["precision"]
    assert precision["value"] == round(11 / 12, precision["decimals"]) and precision["decimals"] == 1
    assert quality["reviewedImages"]["byLabel"]["dog"]["precision"]["value"] == 0.0
    # every figure carries its interval, printed at the precision it has
    low, high = whole["precision"]["interval95"]
    assert low <= whole["precision"]["value"] <= high
    assert "(" in whole["f1"]["text"]


def test_a_fully_reviewed_run_knows_its_own_figures_exactly() -> None:
    # Every image of the run reviewed: its whole-run F1 is a fact about these images, no interval.
    m = measures()
    m.add("r1", reviewed("r1", [("cat", 0)]), prediction("r1", [("cat", 60, 0), ("dog", 55, 500)]))
    m.add("r2", reviewed("r2", [("cat", 0), ("cat", 300)]), prediction("r2", [("cat", 90, 0)]))
    whole = m.quality({REVIEW: 2, AUDIT: 0})["wholeRun"]["overall"]
    assert whole["f1"]["interval95"][0] == whole["f1"]["interval95"][1] == whole["f1"]["value"]
    # while the same images, as a sample of what the model does, leave it uncertain
    on_reviewed = m.quality({REVIEW: 2, AUDIT: 0})["reviewedImages"]["overall"]
    assert (
        on_reviewed["f1"]["interval95"][0] < on_reviewed["f1"]["value"] < on_reviewed["f1"]["interval95"][1]
    )


def test_the_f1_interval_covers_the_models_true_f1_about_95_percent_of_the_time() -> None:
    # Images of 1-4 objects, each found with p = 0.85, a false positive on 20 % of images.
    p, q = 0.85, 0.2
    true_f1 = 2 * p * 2.5 / (2 * p * 2.5 + (1 - p) * 2.5 + q)
    covered = 0
    for draw in range(500):
        rng = random.Random(draw)
        moments = Moments()
        for _ in range(60):
            objects = rng.randint(1, 4)
            found = sum(rng.random() < p for _ in range(objects))
            moments.add(found, int(rng.random() < q), objects - found)
        _, low, high = ratio_estimate("f1", {REVIEW: moments}, {REVIEW: Stratum(60, 60, finite=False)})
        covered += low <= true_f1 <= high
    assert 0.92 <= covered / 500 <= 0.98


def test_one_verdict_feeds_the_audit_the_thresholds_and_the_work() -> None:
    m = measures()
    # a1: the model found the cat but missed a second one: the image is wrong (a missed object)
    m.add(
        "a1",
        reviewed("a1", [("cat", 0), ("cat", 500)]),
        prediction("a1", [("cat", 95, 0)]),
        stratum=AUDIT,
        audited=True,
    )
    # a2: people nudged the box 5 px: within tolerance, the image is right
    m.add("a2", reviewed("a2", [("cat", 5)]), prediction("a2", [("cat", 97, 0)]), stratum=AUDIT, audited=True)
    assert (m.audit_tally.reviewed, m.audit_tally.wrong, m.audit_tally.missed) == (2, 1, 1)
    # the thresholds count images, misses included, at each image's least confident prediction
    bins = m.thresholds.bins["cat"][AUDIT]
    assert bins == {950: [1, 1], 970: [1, 0]}
    work = m.work_done(images_auto_accepted=0)
    assert (work["kept"], work["adjustedWithinTolerance"], work["added"], work["imagesCorrected"]) == (
        1,
        1,
        1,
        1,
    )
    assert work["shareNeedingNoCorrection"] == pytest.approx(2 / 3, abs=1e-4)
    assert work["reviewerSecondsPerImage"] == 12.0
    assert m.disagreements()[0]["source-ref"] == "a1"


def test_a_box_moved_past_the_tolerance_is_a_correction_not_an_adjustment() -> None:
    m = measures()
    m.add("r1", reviewed("r1", [("cat", 30)]), prediction("r1", [("cat", 80, 0)]))  # IoU 0.54
    work = m.work_done(images_auto_accepted=0)
    assert (work["adjustedWithinTolerance"], work["corrected"], work["imagesCorrected"]) == (0, 1, 1)
    # at IoU 0.5 it was a true positive all the same: quality figures use the VOC criterion
    assert m.quality({REVIEW: 1})["reviewedImages"]["overall"]["tp"] == 1


def test_whole_run_is_not_claimed_when_auto_accepted_images_were_not_audited() -> None:
    m = measures()
    m.add("r1", reviewed("r1", [("cat", 0)]), prediction("r1", [("cat", 60, 0)]))
    quality = m.quality({REVIEW: 1, AUDIT: 5})
    assert quality["wholeRun"] is None and "not audited" in quality["wholeRunNote"]


def test_confidence_histograms_count_the_shown_predictions_people_kept_and_corrected() -> None:
    m = measures()
    # r1: a cat kept at 97, a cat moved a little at 91 (kept), a dog people deleted at 62
    m.add(
        "r1",
        reviewed("r1", [("cat", 0), ("cat", 305)]),
        prediction("r1", [("cat", 97, 0), ("cat", 91, 300), ("dog", 62, 600)]),
    )
    # r2: a cat moved past the tolerance at 71, a bird people drew (a miss: no prediction to count),
    # and a dog at 40, below minConfidence 50: nobody saw it
    m.add(
        "r2",
        reviewed("r2", [("cat", 30), ("bird", 600)]),
        prediction("r2", [("cat", 71, 0), ("dog", 40, 900)]),
    )
    histograms = m.confidence_histograms()
    assert histograms["edges"] == [50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100]
    by_label = histograms["byLabel"]
    assert set(by_label) == {"cat", "dog"}
    #                          50 55 60 65 70 75 80 85 90 95
    assert by_label["cat"] == {
        "kept": [0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
        "corrected": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    }
    assert by_label["dog"] == {"kept": [0] * 10, "corrected": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]}
    # one count per shown prediction, and what people corrected is what the work figures count
    work = m.work_done(images_auto_accepted=0)
    assert sum(sum(c["kept"]) for c in by_label.values()) == work["kept"] + work["adjustedWithinTolerance"]
    assert sum(sum(c["corrected"]) for c in by_label.values()) == work["corrected"] + work["removed"]


def test_confidence_histograms_stay_the_same_size_whatever_the_number_of_images() -> None:
    m = RunMeasures("classification", min_confidence=0.0, floor=0.0)
    rng = random.Random(7)
    for i in range(3000):
        truth = [{"label": "cat", "status": "kept"}] if rng.random() < 0.8 else []
        m.add(
            f"i{i}",
            {
                "source-ref": f"i{i}",
                "taskType": "classification",
                "boxes": [],
                "labels": truth,
                "removed": [],
            },
            {"source-ref": f"i{i}", "labels": [{"name": "cat", "confidence": rng.uniform(0, 100)}]},
        )
    histograms = m.confidence_histograms()
    counts = histograms["byLabel"]["cat"]
    assert len(counts["kept"]) == len(counts["corrected"]) == 20 == len(histograms["edges"]) - 1
    assert sum(counts["kept"]) + sum(counts["corrected"]) == 3000
    assert 0.75 < sum(counts["kept"]) / 3000 < 0.85
