"""finish_run against moto S3: manifest lines, merged skip records, report counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from labeling_loop.finishing.finish import finish_run
from labeling_loop.finishing.manifest.rules import errors_only, validate_line
from labeling_loop.finishing.settings import FinishSettings
from labeling_loop.kernel.deferral import defer_record
from labeling_loop.kernel.errors import ManifestValidationError
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri

OUT_BUCKET = "out-bucket"
NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
LAYOUT = RunLayout.for_run(S3Uri(OUT_BUCKET, "runs"), "run1")


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    moto_s3.create_bucket(Bucket=OUT_BUCKET)
    return moto_s3


def put_jsonl(s3: Any, uri: S3Uri, records: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(r) + "\n" for r in records)
    s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=body.encode("utf-8"))


def get_jsonl(s3: Any, uri: S3Uri) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read().decode("utf-8")
    return [json.loads(line) for line in body.splitlines() if line]


def get_json(s3: Any, uri: S3Uri) -> Any:
    return json.loads(s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())


def ref(name: str) -> str:
    return f"s3://images/photos/{name}"


SIZE = {"width": 640, "height": 480, "depth": 3}


def ratio(left: int, top: int, width: int, height: int) -> dict[str, float]:
    """Rekognition ratios of a pixel box of a 640x480 image."""
    return {"left": left / 640, "top": top / 480, "width": width / 640, "height": height / 480}


def prediction(name: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
    return {"source-ref": ref(name), "image_size": SIZE, "orientation": 1, "labels": labels}


def inventory(s3: Any, names: list[str]) -> None:
    put_jsonl(
        s3,
        LAYOUT.inventory,
        [{"source-ref": ref(n), "key": f"photos/{n}", "size": 1, "etag": "e"} for n in names],
    )


def settings(task_type: str, labels: list[str], images_listed: int) -> FinishSettings:
    return FinishSettings(
        layout=LAYOUT,
        task_type=task_type,
        labels=tuple(labels),
        images_listed=images_listed,
        run_id="run1",
        backend="groundtruth",
        labeling_jobs=("lab-run1-det-000",),
        job_name="labeling-loop/run1",
        now=NOW,
    )


def run(s3: Any, task_type: str, labels: list[str], images_listed: int) -> dict[str, Any]:
    return finish_run(s3, settings(task_type, labels, images_listed))


# --- detection -------------------------------------------------------------------------------------


@pytest.fixture
def detection_run(s3: Any) -> Any:
    # GIVEN six listed images: one corrupt, three reviewed by people, two auto-accepted
    inventory(s3, ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "broken.jpg"])
    put_jsonl(s3, LAYOUT.predictions_part(0), [
        prediction("a.jpg", [
            {"name": "cat", "confidence": 87.5, "box": ratio(64, 96, 192, 120)},
            {"name": "dog", "confidence": 80.0, "box": ratio(300, 100, 100, 100)},
            {"name": "dog", "confidence": 55.0, "box": ratio(1, 2, 30, 40)},
        ]),
        prediction("b.jpg", [{"name": "cat", "confidence": 60.0, "box": ratio(10, 10, 50, 50)}]),
        prediction("c.jpg", []),
    ])  # fmt: skip
    put_jsonl(s3, LAYOUT.predictions_part(1), [
        prediction("d.jpg", [{"name": "cat", "confidence": 99.0, "box": ratio(5, 5, 100, 100)}]),
        prediction("e.jpg", [{"name": "dog", "confidence": 98.0, "box": ratio(200, 200, 50, 60)}]),
    ])  # fmt: skip
    put_jsonl(s3, LAYOUT.skipped_part("inference", 0), [
        {"source-ref": ref("broken.jpg"), "stage": "inference", "reason": "corrupt-image",
         "detail": "cannot identify image file"},
    ])  # fmt: skip
    human = {"taskType": "detection", "image_size": SIZE, "labels": [],
             "reviewer": "groundtruth:lab-run1-det-000", "humanReviewed": True}  # fmt: skip
    put_jsonl(s3, LAYOUT.reviewed, [
        {**human, "source-ref": ref("a.jpg"),
         "boxes": [{"label": "cat", "left": 60, "top": 90, "width": 200, "height": 125, "status": "adjusted"},
                   {"label": "dog", "left": 300, "top": 100, "width": 100, "height": 100, "status": "kept"}],
         "removed": [{"label": "dog", "left": 1, "top": 2, "width": 30, "height": 40}]},
        # a box drawn outside the image: nothing valid is left
        {**human, "source-ref": ref("b.jpg"),
         "boxes": [{"label": "cat", "left": 700, "top": 10, "width": 40, "height": 40, "status": "added"}],
         "removed": [{"label": "cat", "left": 10, "top": 10, "width": 50, "height": 50}]},
        # the model found nothing, a person drew a dog partly outside the image
        {**human, "source-ref": ref("c.jpg"),
         "boxes": [{"label": "dog", "left": 600, "top": 400, "width": 100, "height": 100, "status": "added"}],
         "removed": []},
    ])  # fmt: skip
    auto = {"taskType": "detection", "image_size": SIZE, "labels": [], "removed": [],
            "reviewer": "auto-accept", "humanReviewed": False}  # fmt: skip
    put_jsonl(s3, LAYOUT.auto_accepted, [
        {**auto, "source-ref": ref("d.jpg"),
         "boxes": [{"label": "cat", "left": 5, "top": 5, "width": 100, "height": 100, "status": "kept"}]},
        {**auto, "source-ref": ref("e.jpg"),
         "boxes": [{"label": "dog", "left": 200, "top": 200, "width": 50, "height": 60, "status": "kept"}]},
    ])  # fmt: skip
    return run(s3, "detection", ["dog", "cat"], images_listed=6)


def test_detection_manifest_lines(s3: Any, detection_run: Any) -> None:
    lines = {line["source-ref"]: line for line in get_jsonl(s3, LAYOUT.manifest)}
    # THEN reviewed and auto-accepted images are in the manifest, b is not
    assert sorted(lines) == [ref("a.jpg"), ref("c.jpg"), ref("d.jpg"), ref("e.jpg")]
    a = lines[ref("a.jpg")]
    assert a["bounding-box"] == {
        "image_size": [{"width": 640, "height": 480, "depth": 3}],
        "annotations": [
            {"class_id": 0, "left": 60, "top": 90, "width": 200, "height": 125},
            {"class_id": 1, "left": 300, "top": 100, "width": 100, "height": 100},
        ],
    }
    assert a["bounding-box-metadata"] == {
        "objects": [{"confidence": 1}, {"confidence": 1}],
        "class-map": {"0": "cat", "1": "dog"},
        "type": "groundtruth/object-detection",
        "human-annotated": "yes",
        "creation-date": "2026-03-04T05:06:07.890000",
        "job-name": "labeling-loop/run1",
    }
    # the dog drawn across the border is clipped; class ids are the same on every line
    assert lines[ref("c.jpg")]["bounding-box"]["annotations"] == [
        {"class_id": 1, "left": 600, "top": 400, "width": 40, "height": 80}
    ]
    assert lines[ref("d.jpg")]["bounding-box-metadata"]["class-map"] == {"0": "cat"}
    assert lines[ref("d.jpg")]["bounding-box-metadata"]["human-annotated"] == "no"
    assert all(errors_only(validate_line(line)) == [] for line in lines.values())


def test_detection_skipped_records_are_merged(s3: Any, detection_run: Any) -> None:
    skipped = sorted(get_jsonl(s3, LAYOUT.skipped), key=lambda r: r["source-ref"])
    assert [(r["source-ref"], r["stage"], r["reason"]) for r in skipped] == [
        (ref("b.jpg"), "manifest", "invalid-annotation"),
        (ref("broken.jpg"), "inference", "corrupt-image"),
    ]


def test_detection_report(s3: Any, detection_run: Any) -> None:
    report = get_json(s3, LAYOUT.report)
    assert report == detection_run
    assert report["runId"] == "run1" and report["status"] == "SUCCEEDED"
    assert report["backend"] == "groundtruth" and report["taskType"] == "detection"
    assert report["counts"] == {
        "imagesListed": 6, "imagesInManifest": 4, "imagesAutoAccepted": 2, "imagesSkipped": 2,
        "imagesDeferred": 0, "imagesReviewed": 3,
        "boxesKept": 3, "boxesAdjusted": 1, "boxesAdded": 1, "boxesRemoved": 1,
        "labelsKept": 0, "labelsAdded": 0, "labelsRemoved": 0,
    }  # fmt: skip
    counts = report["counts"]
    assert counts["imagesListed"] == counts["imagesInManifest"] + counts["imagesSkipped"]
    assert report["skippedByReason"] == {"corrupt-image": 1, "invalid-annotation": 1}
    # a: cat (IoU 0.91) and dog match, the removed dog is a false positive; c: the added dog is a
    # miss; b is not in the manifest, so neither its boxes nor its predictions count in any figure
    assert report["modelQuality"] == {
        "precision": 0.666667, "recall": 0.666667, "f1": 0.666667, "iouThreshold": 0.5,
        "tp": 2, "fp": 1, "fn": 1,
    }  # fmt: skip
    assert report["labelingJobs"] == ["lab-run1-det-000"]
    assert report["manifest"] == f"s3://{OUT_BUCKET}/runs/run1/output.manifest"
    assert report["skipped"] == f"s3://{OUT_BUCKET}/runs/run1/skipped.jsonl"
    assert "1 boxes clipped to the image" in report["warnings"]
    assert not any("imagesListed" in w for w in report["warnings"])


# --- classification --------------------------------------------------------------------------------


def test_classification_run(s3: Any) -> None:
    # GIVEN four listed images: one unsupported, two reviewed by people, one auto-accepted
    inventory(s3, ["x.jpg", "y.jpg", "z.jpg", "w.gif"])
    put_jsonl(s3, LAYOUT.predictions_part(0), [
        prediction("x.jpg", [{"name": "outdoor", "confidence": 70.0},
                             {"name": "indoor", "confidence": 52.0}]),
        prediction("y.jpg", [{"name": "outdoor", "confidence": 51.0}]),
        prediction("z.jpg", [{"name": "indoor", "confidence": 99.0}]),
    ])  # fmt: skip
    put_jsonl(s3, LAYOUT.skipped_part("listing", 0), [
        {"source-ref": ref("w.gif"), "stage": "listing", "reason": "unsupported-format",
         "detail": "image/gif"},
    ])  # fmt: skip
    base = {"taskType": "classification", "image_size": SIZE, "boxes": []}
    put_jsonl(s3, LAYOUT.reviewed, [
        {**base, "source-ref": ref("x.jpg"),
         "labels": [{"label": "outdoor", "status": "kept"}, {"label": "dog", "status": "added"}],
         "removed": [{"label": "indoor"}], "reviewer": "labelstudio:3", "humanReviewed": True},
        {**base, "source-ref": ref("y.jpg"), "labels": [], "removed": [{"label": "outdoor"}],
         "reviewer": "labelstudio:3", "humanReviewed": True},
    ])  # fmt: skip
    put_jsonl(s3, LAYOUT.auto_accepted, [
        {**base, "source-ref": ref("z.jpg"), "labels": [{"label": "indoor", "status": "kept"}], "removed": [],
         "reviewer": "auto-accept", "humanReviewed": False},
    ])  # fmt: skip

    # WHEN the manifest is built
    report = run(s3, "classification", ["outdoor", "indoor", "dog"], images_listed=4)

    # THEN x and z are image-level lines with stable class ids (dog 0, indoor 1, outdoor 2)
    lines = {line["source-ref"]: line for line in get_jsonl(s3, LAYOUT.manifest)}
    assert sorted(lines) == [ref("x.jpg"), ref("z.jpg")]
    x = lines[ref("x.jpg")]
    assert (x["label-0"], x["label-0-metadata"]["class-name"]) == (2, "outdoor")
    assert (x["label-1"], x["label-1-metadata"]["class-name"]) == (0, "dog")
    assert x["label-0-metadata"]["type"] == "groundtruth/image-classification"
    assert x["label-0-metadata"]["confidence"] == 1 and x["label-0-metadata"]["human-annotated"] == "yes"
    z = lines[ref("z.jpg")]
    assert (z["label-0"], z["label-0-metadata"]["class-name"], z["label-0-metadata"]["human-annotated"]) == (
        1, "indoor", "no",
    )  # fmt: skip
    assert "label-1" not in z
    # y was left without a label
    skipped = {r["source-ref"]: r for r in get_jsonl(s3, LAYOUT.skipped)}
    assert skipped[ref("y.jpg")]["reason"] == "no-label-after-review"
    assert skipped[ref("w.gif")]["reason"] == "unsupported-format"
    assert report["counts"] == {
        "imagesListed": 4, "imagesInManifest": 2, "imagesAutoAccepted": 1, "imagesSkipped": 2,
        "imagesDeferred": 0, "imagesReviewed": 2,
        "boxesKept": 0, "boxesAdjusted": 0, "boxesAdded": 0, "boxesRemoved": 0,
        "labelsKept": 2, "labelsAdded": 1, "labelsRemoved": 2,
    }  # fmt: skip
    assert report["skippedByReason"] == {"no-label-after-review": 1, "unsupported-format": 1}
    # x: outdoor right, indoor wrong, dog missed; y: outdoor wrong
    quality = report["modelQuality"]
    assert (quality["tp"], quality["fp"], quality["fn"]) == (1, 2, 1)
    assert quality["precision"] == pytest.approx(1 / 3, abs=1e-6)
    assert quality["recall"] == 0.5
    assert quality["f1"] == pytest.approx(0.4, abs=1e-6)
    assert report["warnings"] == []


# --- edge cases ------------------------------------------------------------------------------------


def test_missing_inputs_give_an_empty_manifest_and_name_the_missing_images(s3: Any) -> None:
    # GIVEN a run whose review produced nothing at all
    inventory(s3, ["p.jpg", "q.jpg"])
    report = run(s3, "detection", ["cat", "dog"], images_listed=2)
    # THEN the files exist, the counts are zero and the warnings say what is wrong
    assert get_jsonl(s3, LAYOUT.manifest) == [] and get_jsonl(s3, LAYOUT.skipped) == []
    assert report["counts"]["imagesInManifest"] == 0 and report["counts"]["imagesSkipped"] == 0
    warnings = "\n".join(report["warnings"])
    assert "manifest is empty" in warnings
    assert "imagesListed (2) != imagesInManifest (0) + imagesSkipped (0) + imagesDeferred (0)" in warnings
    assert (
        f"2 listed images neither in the manifest, skipped nor deferred: {ref('p.jpg')}, {ref('q.jpg')}"
        in warnings
    )
    assert "modelQuality not measured" in warnings


def test_duplicates_are_resolved_in_favour_of_people(s3: Any) -> None:
    # GIVEN an image both reviewed and auto-accepted, and a stale skip record for it
    inventory(s3, ["a.jpg"])
    record = {"source-ref": ref("a.jpg"), "taskType": "classification", "image_size": SIZE, "boxes": [],
              "removed": []}  # fmt: skip
    put_jsonl(
        s3,
        LAYOUT.reviewed,
        [
            {
                **record,
                "labels": [{"label": "dog", "status": "added"}],
                "reviewer": "labelstudio:1",
                "humanReviewed": True,
            }
        ],
    )
    put_jsonl(
        s3,
        LAYOUT.auto_accepted,
        [
            {
                **record,
                "labels": [{"label": "cat", "status": "kept"}],
                "reviewer": "auto-accept",
                "humanReviewed": False,
            }
        ],
    )
    put_jsonl(s3, LAYOUT.skipped_part("review", "job-000"), [
        {"source-ref": ref("a.jpg"), "stage": "review", "reason": "not-reviewed", "detail": "expired"},
    ])  # fmt: skip
    report = run(s3, "classification", ["cat", "dog"], images_listed=1)
    lines = get_jsonl(s3, LAYOUT.manifest)
    assert len(lines) == 1 and lines[0]["label-0-metadata"]["class-name"] == "dog"
    assert get_jsonl(s3, LAYOUT.skipped) == []
    assert report["counts"]["imagesInManifest"] == 1 and report["counts"]["imagesAutoAccepted"] == 0
    assert "1 duplicate reviewed records ignored (first one kept)" in report["warnings"]
    assert "1 skip records of images that are in the manifest ignored" in report["warnings"]


def test_deferred_images_are_merged_counted_and_close_the_invariant(s3: Any) -> None:
    # GIVEN three listed images: one deferred at listing (never inventoried), one reviewed, one
    # deferred when the review was planned (and, by mistake, deferred twice)
    inventory(s3, ["a.jpg", "b.jpg"])
    put_jsonl(s3, LAYOUT.deferred_part("listing", 0), [
        defer_record(ref("z.jpg"), "listing", "over-manifest-limit", "over 1 line"),
    ])  # fmt: skip
    put_jsonl(s3, LAYOUT.deferred_part("review", 0), [
        defer_record(ref("b.jpg"), "review", "over-review-budget", "budget 1"),
        defer_record(ref("b.jpg"), "review", "over-review-budget", "budget 1"),
    ])  # fmt: skip
    put_jsonl(s3, LAYOUT.reviewed, [
        {"source-ref": ref("a.jpg"), "taskType": "classification", "image_size": SIZE, "boxes": [],
         "labels": [{"label": "cat", "status": "kept"}], "removed": [], "reviewer": "labelstudio:1",
         "humanReviewed": True},
    ])  # fmt: skip
    # WHEN the manifest is built
    report = run(s3, "classification", ["cat", "dog"], images_listed=3)
    # THEN deferred.jsonl names each deferred image once, with its reason
    deferred = sorted(get_jsonl(s3, LAYOUT.deferred), key=lambda r: r["source-ref"])
    assert [(r["source-ref"], r["stage"], r["reason"]) for r in deferred] == [
        (ref("b.jpg"), "review", "over-review-budget"),
        (ref("z.jpg"), "listing", "over-manifest-limit"),
    ]
    # AND every listed image is accounted for: manifest + skipped + deferred
    counts = report["counts"]
    assert (counts["imagesInManifest"], counts["imagesSkipped"], counts["imagesDeferred"]) == (1, 0, 2)
    assert (
        counts["imagesListed"]
        == counts["imagesInManifest"] + counts["imagesSkipped"] + counts["imagesDeferred"]
    )
    assert report["deferredByReason"] == {"over-manifest-limit": 1, "over-review-budget": 1}
    assert report["deferred"] == str(LAYOUT.deferred)
    assert not any("imagesListed" in w for w in report["warnings"])
    assert (
        "1 deferral records of images already in the manifest, skipped or deferred ignored"
        in report["warnings"]
    )


def test_images_in_two_buckets_fail_without_writing(s3: Any) -> None:
    base = {
        "taskType": "classification",
        "image_size": SIZE,
        "boxes": [],
        "removed": [],
        "labels": [{"label": "cat", "status": "kept"}],
        "reviewer": "auto-accept",
        "humanReviewed": False,
    }
    put_jsonl(
        s3,
        LAYOUT.auto_accepted,
        [{**base, "source-ref": "s3://bucket-one/a.jpg"}, {**base, "source-ref": "s3://bucket-two/b.jpg"}],
    )
    with pytest.raises(ManifestValidationError, match="one S3 bucket"):
        run(s3, "classification", ["cat", "dog"], images_listed=2)
    listed = s3.list_objects_v2(Bucket=OUT_BUCKET, Prefix="runs/run1/").get("Contents", [])
    assert {o["Key"] for o in listed} == {"runs/run1/review/auto_accepted.jsonl"}


def test_many_images_stream_through(s3: Any) -> None:
    # GIVEN a few thousand images, half reviewed by people, spread over prediction parts
    n = 3000
    names = [f"img-{i:05d}.jpg" for i in range(n)]
    inventory(s3, names)
    for part in range(3):
        put_jsonl(s3, LAYOUT.predictions_part(part), [
            prediction(name, [{"name": "cat", "confidence": 90.0, "box": ratio(10, 10, 100, 100)}])
            for name in names[part * 1000:(part + 1) * 1000]
        ])  # fmt: skip
    box = {"label": "cat", "left": 10, "top": 10, "width": 100, "height": 100, "status": "kept"}
    records = [
        {"source-ref": ref(name), "taskType": "detection", "image_size": SIZE, "boxes": [box], "labels": [],
         "removed": [], "reviewer": "x" if i % 2 else "auto-accept", "humanReviewed": bool(i % 2)}
        for i, name in enumerate(names)
    ]  # fmt: skip
    put_jsonl(s3, LAYOUT.reviewed, [r for r in records if r["humanReviewed"]])
    put_jsonl(s3, LAYOUT.auto_accepted, [r for r in records if not r["humanReviewed"]])
    report = run(s3, "detection", ["cat", "dog"], images_listed=n)
    assert report["counts"]["imagesInManifest"] == n
    assert report["counts"]["imagesReviewed"] == n // 2
    assert report["modelQuality"]["tp"] == n // 2 and report["modelQuality"]["f1"] == 1.0
    assert len(get_jsonl(s3, LAYOUT.manifest)) == n


def test_broken_invariant_without_inventory_still_writes_the_report(s3: Any) -> None:
    # GIVEN a run that claims three listed images but has neither inventory nor review output
    report = run(s3, "classification", ["cat", "dog"], images_listed=3)
    # THEN the report says the counts disagree and why the images cannot be named
    assert (
        "imagesListed (3) != imagesInManifest (0) + imagesSkipped (0) + imagesDeferred (0)"
        in report["warnings"]
    )
    assert any("inventory.jsonl is missing" in w for w in report["warnings"])
    assert get_json(s3, LAYOUT.report) == report
