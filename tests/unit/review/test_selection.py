"""PlanReview core against moto S3: which images people review, which are auto-accepted, in what form."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fixtures_aws import OUTPUT_BUCKET, read_jsonl, write_jsonl
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.selection import (
    AuditSampler,
    AutoAccept,
    PlanSettings,
    PlanSummary,
    audit_key,
    is_auto_accepted,
    plan,
    resolve_task_type,
)

LAYOUT = RunLayout.for_run(S3Uri(OUTPUT_BUCKET, "labeling-runs/"), "run-1")
SIZE = {"width": 640, "height": 480, "depth": 3}


def ref(name: str) -> str:
    return f"s3://images-bucket/photos/{name}"


def box(left: float, top: float, width: float, height: float) -> dict[str, float]:
    return {"left": left, "top": top, "width": width, "height": height}


def label(name: str, confidence: float, ratio: dict[str, float] | None = None) -> dict[str, Any]:
    return {"name": name, "confidence": confidence, **({"box": ratio} if ratio else {})}


def prediction(name: str, labels: list[dict[str, Any]], size: dict[str, int] = SIZE) -> dict[str, Any]:
    return {"source-ref": ref(name), "image_size": size, "orientation": 1, "labels": labels}


def make_plan(
    aws: SimpleNamespace,
    parts: list[list[dict[str, Any]]],
    *,
    task_type: str = "auto",
    extra_labels: list[str] | None = None,
    auto_accept: float | None = None,
) -> tuple[PlanSummary, list[dict[str, Any]], list[dict[str, Any]]]:
    for batch_id, records in enumerate(parts):
        write_jsonl(aws.s3, LAYOUT.predictions_part(batch_id), records)
    settings = PlanSettings(
        requested_task_type=task_type,
        extra_labels=tuple(extra_labels or []),
        auto_accept=AutoAccept(auto_accept),
    )
    summary = plan(aws.s3, LAYOUT, settings)
    return summary, read_jsonl(aws.s3, LAYOUT.review_tasks), read_jsonl(aws.s3, LAYOUT.auto_accepted)


# Tasks --------------------------------------------------------------------------------------------


def test_detection_tasks_carry_pixel_boxes_of_the_displayed_image(aws: SimpleNamespace) -> None:
    # GIVEN a prediction with a box in Rekognition's ratios (the data contract's example)
    records = [prediction("a.jpg", [label("cat", 87.5, box(0.1, 0.2, 0.3, 0.25)), label("outdoor", 64.0)])]

    # WHEN the review is planned
    summary, tasks, accepted = make_plan(aws, [records])

    # THEN people get a detection task with the box in pixels; image-level labels are not boxes
    assert tasks == [
        {
            "source-ref": ref("a.jpg"),
            "taskType": "detection",
            "image_size": SIZE,
            "predictions": [
                {
                    "label": "cat",
                    "confidence": 87.5,
                    "box": {"left": 64, "top": 96, "width": 192, "height": 120},
                }
            ],
        }
    ]
    assert accepted == []
    assert summary.to_dict() == {
        "taskType": "detection",
        "labels": ["cat", "outdoor"],
        "imagesToReview": 1,
        "imagesAutoAccepted": 0,
        "imagesAudited": 0,
        "jobs": 0,
        "wave": 1,
        "jobsKey": "",
        "reviewBudget": None,
        "imagesDeferred": 0,
        "auditCappedByBudget": 0,
        "reviewedByPriority": {"uncertainty": 1},
    }


def test_boxes_are_clipped_to_the_image_and_degenerate_ones_dropped(aws: SimpleNamespace) -> None:
    # GIVEN a box crossing the right edge, one slightly negative, and one entirely outside
    records = [
        prediction(
            "a.jpg",
            [
                label("cat", 90, box(0.9, 0.5, 0.2, 0.25)),
                label("dog", 80, box(-0.01, -0.02, 0.1, 0.1)),
                label("bird", 70, box(1.2, 0.1, 0.1, 0.1)),
            ],
        )
    ]
    _, tasks, _ = make_plan(aws, [records])
    # THEN boxes stay inside the 640x480 image; nothing usable is left of the third
    assert [(p["label"], p["box"]) for p in tasks[0]["predictions"]] == [
        ("cat", {"left": 576, "top": 240, "width": 64, "height": 120}),
        ("dog", {"left": 0, "top": 0, "width": 58, "height": 38}),
    ]


def test_boxes_use_the_records_displayed_size(aws: SimpleNamespace) -> None:
    # GIVEN a portrait photo (displayed 480x640, e.g. EXIF orientation 6)
    portrait = {"width": 480, "height": 640, "depth": 3}
    records = [prediction("p.jpg", [label("cat", 90, box(0.5, 0.5, 0.5, 0.5))], size=portrait)]
    _, tasks, _ = make_plan(aws, [records])
    # THEN the pixel box is of the displayed image
    assert tasks[0]["predictions"][0]["box"] == {"left": 240, "top": 320, "width": 240, "height": 320}
    assert tasks[0]["image_size"] == portrait


def test_classification_tasks_have_labels_without_boxes(aws: SimpleNamespace) -> None:
    # GIVEN a classification model (no boxes)
    records = [prediction("a.jpg", [label("outdoor", 64.0), label("night", 55.0)])]
    summary, tasks, _ = make_plan(aws, [records])
    # THEN the task verifies labels
    assert summary.task_type == "classification"
    assert tasks[0]["taskType"] == "classification"
    assert tasks[0]["predictions"] == [
        {"label": "outdoor", "confidence": 64.0},
        {"label": "night", "confidence": 55.0},
    ]


def test_images_without_predictions_are_reviewed(aws: SimpleNamespace) -> None:
    # GIVEN an image the model found nothing in (missed objects are the errors that matter most)
    records = [prediction("a.jpg", [label("cat", 99, box(0.1, 0.1, 0.2, 0.2))]), prediction("empty.jpg", [])]
    # WHEN planned, even with auto-accept at 0
    summary, tasks, accepted = make_plan(aws, [records], auto_accept=0)
    # THEN the empty image goes to people with no predictions; the other is accepted
    assert [t["source-ref"] for t in tasks] == [ref("empty.jpg")]
    assert tasks[0]["predictions"] == []
    assert [a["source-ref"] for a in accepted] == [ref("a.jpg")]
    assert (summary.images_to_review, summary.images_auto_accepted) == (1, 1)


# Task type ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "has_boxes", "resolved"),
    [
        ("auto", True, "detection"),
        ("auto", False, "classification"),
        ("detection", False, "detection"),
        ("classification", True, "classification"),
    ],
)
def test_task_type_resolution(requested: str, has_boxes: bool, resolved: str) -> None:
    # WHEN the run asks for a task type, or `auto`
    # THEN `auto` follows the predictions, anything else is kept
    assert resolve_task_type(requested, has_boxes) == resolved


def test_one_box_anywhere_makes_the_run_detection(aws: SimpleNamespace) -> None:
    # GIVEN predictions over two batches where only the last image has a box
    first = [prediction("a.jpg", [label("outdoor", 70)])]
    second = [prediction("b.jpg", [label("cat", 70, box(0.1, 0.1, 0.2, 0.2))])]
    summary, tasks, _ = make_plan(aws, [first, second])
    # THEN the whole run is detection, and every image becomes a task (both batches read)
    assert summary.task_type == "detection"
    assert [t["taskType"] for t in tasks] == ["detection", "detection"]
    # (in the review order: the image with a prediction to check before the one with nothing)
    assert [(t["source-ref"], len(t["predictions"])) for t in tasks] == [(ref("b.jpg"), 1), (ref("a.jpg"), 0)]


def test_a_requested_task_type_wins(aws: SimpleNamespace) -> None:
    # GIVEN predictions with boxes and a run that asks for classification
    # WHEN planned
    # THEN the task is classification with the image-level labels only
    records = [prediction("a.jpg", [label("cat", 70, box(0.1, 0.1, 0.2, 0.2)), label("outdoor", 60)])]
    summary, tasks, _ = make_plan(aws, [records], task_type="classification")
    assert summary.task_type == "classification"
    assert tasks[0]["predictions"] == [{"label": "outdoor", "confidence": 60}]


# Auto-accept --------------------------------------------------------------------------------------


def test_images_whose_every_prediction_reaches_the_threshold_are_auto_accepted(aws: SimpleNamespace) -> None:
    # GIVEN a threshold of 90 and three images: all at/above, one below, all above
    records = [
        prediction(
            "sure.jpg",
            [label("cat", 90.0, box(0.1, 0.2, 0.3, 0.25)), label("dog", 99, box(0.5, 0.5, 0.2, 0.2))],
        ),
        prediction(
            "unsure.jpg",
            [label("cat", 95, box(0.1, 0.1, 0.2, 0.2)), label("dog", 89.9, box(0.5, 0.5, 0.2, 0.2))],
        ),
    ]

    # WHEN planned
    summary, tasks, accepted = make_plan(aws, [records], auto_accept=90)

    # THEN the sure image skips review as a reviewed record kept as predicted, in pixels
    assert accepted == [
        {
            "source-ref": ref("sure.jpg"),
            "taskType": "detection",
            "image_size": SIZE,
            "boxes": [
                {"label": "cat", "left": 64, "top": 96, "width": 192, "height": 120, "status": "kept"},
                {"label": "dog", "left": 320, "top": 240, "width": 128, "height": 96, "status": "kept"},
            ],
            "labels": [],
            "removed": [],
            "reviewer": "auto-accept",
            "humanReviewed": False,
        }
    ]
    # AND one doubtful prediction sends the whole image to people
    assert [t["source-ref"] for t in tasks] == [ref("unsure.jpg")]
    assert (summary.images_auto_accepted, summary.images_to_review) == (1, 1)


def test_auto_accepted_classification_keeps_labels(aws: SimpleNamespace) -> None:
    # GIVEN a classification image whose labels are all at/above 95
    # WHEN planned with auto-accept at 95
    # THEN it is accepted with its labels kept
    records = [prediction("a.jpg", [label("outdoor", 97), label("day", 95)])]
    _, tasks, accepted = make_plan(aws, [records], auto_accept=95)
    assert tasks == []
    assert accepted[0]["boxes"] == []
    assert accepted[0]["labels"] == [
        {"label": "outdoor", "status": "kept"},
        {"label": "day", "status": "kept"},
    ]
    assert accepted[0]["taskType"] == "classification"


def test_without_a_threshold_everything_is_reviewed(aws: SimpleNamespace) -> None:
    # GIVEN a prediction at 100% and no auto-accept threshold
    # WHEN planned
    # THEN people still review it
    records = [prediction("a.jpg", [label("cat", 100.0, box(0.1, 0.1, 0.2, 0.2))])]
    summary, tasks, accepted = make_plan(aws, [records], auto_accept=None)
    assert len(tasks) == 1 and accepted == []
    assert summary.images_auto_accepted == 0


# Labels -------------------------------------------------------------------------------------------


def test_reviewers_get_predicted_and_extra_labels(aws: SimpleNamespace) -> None:
    # GIVEN the model predicted cat, and the run names dog and bird as possible labels too
    records = [prediction("a.jpg", [label("cat", 70, box(0.1, 0.1, 0.2, 0.2))])]
    summary, _, _ = make_plan(aws, [records], extra_labels=["dog", "bird", "cat"])
    # THEN the label set is their union, sorted; predicted labels are kept apart
    assert summary.labels == ["bird", "cat", "dog"]
    assert summary.predicted_labels == {"cat"}


def test_a_run_with_no_predictions_writes_empty_files(aws: SimpleNamespace) -> None:
    # GIVEN every image was skipped at inference (no prediction parts at all)
    summary = plan(aws.s3, LAYOUT, PlanSettings())
    # THEN the plan is empty but the files exist for the next steps
    assert summary.to_dict()["imagesToReview"] == 0
    assert read_jsonl(aws.s3, LAYOUT.review_tasks) == []
    assert read_jsonl(aws.s3, LAYOUT.auto_accepted) == []


def test_the_audit_sample_takes_the_lowest_keys_and_at_least_the_minimum() -> None:
    refs = [f"s3://b/img-{i:03d}.jpg" for i in range(200)]
    keys = sorted(audit_key(r, "run-1") for r in refs)
    sampler = AuditSampler(fraction=0.05, minimum=20)
    for ref in refs:
        sampler.offer(audit_key(ref, "run-1"))
    chosen = [r for r in refs if sampler.selects(audit_key(r, "run-1"))]
    # 5 % of 200 is about 10, fewer than the minimum: exactly the 20 lowest keys
    assert len(chosen) == 20 and sorted(audit_key(r, "run-1") for r in chosen) == keys[:20]
    # reproducible: the same images every time, whatever the order they come in
    again = AuditSampler(fraction=0.05, minimum=20)
    for ref in reversed(refs):
        again.offer(audit_key(ref, "run-1"))
    assert [r for r in refs if again.selects(audit_key(r, "run-1"))] == chosen
    # AND another run over the same images audits others (the run id salts the hash)
    other = AuditSampler(fraction=0.05, minimum=20)
    for ref in refs:
        other.offer(audit_key(ref, "run-2"))
    assert len(set(chosen) & {r for r in refs if other.selects(audit_key(r, "run-2"))}) < 10


def test_per_label_thresholds_decide_auto_accept() -> None:
    task = {"predictions": [{"label": "cat", "confidence": 85.0}, {"label": "dog", "confidence": 97.0}]}
    assert is_auto_accepted(task, AutoAccept(90.0)) is False
    assert is_auto_accepted(task, AutoAccept(None, {"cat": 80.0, "dog": 95.0})) is True
    assert is_auto_accepted(task, AutoAccept(None, {"cat": 80.0})) is False  # dog: always reviewed
    assert is_auto_accepted({"predictions": []}, AutoAccept(0.0)) is False
