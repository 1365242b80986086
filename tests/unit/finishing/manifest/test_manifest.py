"""Custom Labels manifest lines: building from reviewed records, line rules, manifest rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from labeling_loop.finishing.manifest.lines import (
    ClassMap,
    build_classification_line,
    build_detection_line,
    build_line,
)
from labeling_loop.finishing.manifest.rules import ManifestValidator, errors_only, validate_line
from labeling_loop.kernel.errors import ManifestValidationError

DATE = "2026-01-02T03:04:05.000000"
JOB = "labeling-loop/run1"


def detection_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "source-ref": "s3://b/photos/a.jpg",
        "taskType": "detection",
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "boxes": [
            {"label": "cat", "left": 60, "top": 90, "width": 200, "height": 125, "status": "adjusted"},
            {"label": "dog", "left": 300, "top": 100, "width": 100, "height": 100, "status": "kept"},
        ],
        "labels": [],
        "removed": [{"label": "dog", "left": 1, "top": 2, "width": 30, "height": 40}],
        "reviewer": "groundtruth:lab-run1-det-000",
        "humanReviewed": True,
    }
    record.update(overrides)
    return record


def classification_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "source-ref": "s3://b/photos/b.jpg",
        "taskType": "classification",
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "boxes": [],
        "labels": [{"label": "outdoor", "status": "kept"}, {"label": "dog", "status": "added"}],
        "removed": [{"label": "indoor"}],
        "reviewer": "labelstudio:7",
        "humanReviewed": True,
    }
    record.update(overrides)
    return record


CLASSES = ClassMap(["outdoor", "dog", "cat", "indoor"])


def detect(record: dict[str, Any]) -> Any:
    return build_detection_line(record, CLASSES, job_name=JOB, creation_date=DATE)


def classify(record: dict[str, Any]) -> Any:
    return build_classification_line(record, CLASSES, job_name=JOB, creation_date=DATE)


# --- ClassMap --------------------------------------------------------------------------------------


def test_class_ids_are_sorted_names_whatever_the_input_order() -> None:
    assert CLASSES.names == ["cat", "dog", "indoor", "outdoor"]
    assert ClassMap(["dog", "cat", "outdoor", "indoor", "cat"]).as_class_map() == CLASSES.as_class_map()
    assert CLASSES.id_of("indoor") == 2 and CLASSES.name_of(2) == "indoor"
    assert CLASSES.as_class_map([3, 0, 3]) == {"0": "cat", "3": "outdoor"}
    assert "cat" in CLASSES and "bird" not in CLASSES and len(CLASSES) == 4


@pytest.mark.parametrize("labels", [[f"l{i}" for i in range(251)], ["ok", "x" * 257], ["ok", " "]])
def test_class_map_rejects_label_sets_custom_labels_cannot_train(labels: list[str]) -> None:
    with pytest.raises(ManifestValidationError):
        ClassMap(labels)


# --- detection lines -------------------------------------------------------------------------------


def test_detection_line_has_the_documented_shape() -> None:
    result = detect(detection_record())
    assert result.skip is None and result.fixes == {}
    assert result.line == {
        "source-ref": "s3://b/photos/a.jpg",
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [
                {"class_id": 0, "left": 60, "top": 90, "width": 200, "height": 125},
                {"class_id": 1, "left": 300, "top": 100, "width": 100, "height": 100},
            ],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1}, {"confidence": 1}],
            "class-map": {"0": "cat", "1": "dog"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": DATE,
            "job-name": JOB,
        },
    }
    assert validate_line(result.line) == []


def test_detection_boxes_are_clipped_and_invalid_ones_dropped() -> None:
    record = detection_record(
        boxes=[
            {"label": "cat", "left": -20, "top": 400, "width": 100, "height": 200, "status": "added"},
            {"label": "dog", "left": 639, "top": 0, "width": 50, "height": 50, "status": "added"},  # 1 px
            {"label": "bird", "left": 10, "top": 10, "width": 50, "height": 50, "status": "added"},
        ]
    )
    result = detect(record)
    assert result.line["bounding-box"]["annotations"] == [
        {"class_id": 0, "left": 0, "top": 400, "width": 80, "height": 80}
    ]
    assert result.fixes == {
        "box-clipped": 1,
        "box-dropped-outside-or-too-small": 1,
        "box-dropped-unknown-label": 1,
    }
    assert errors_only(validate_line(result.line)) == []


def test_boxes_too_small_once_a_large_image_is_resized_are_dropped() -> None:
    # GIVEN a 4000 px wide image: it is scaled by 1280/4000 = 0.32 for training
    record = detection_record(
        image_size={"width": 4000, "height": 3000, "depth": 3},
        boxes=[
            {"label": "cat", "left": 10, "top": 10, "width": 3, "height": 100, "status": "added"},  # 0.96 px
            {"label": "cat", "left": 10, "top": 10, "width": 4, "height": 100, "status": "added"},  # 1.28 px
        ],
    )
    result = detect(record)
    assert [a["width"] for a in result.line["bounding-box"]["annotations"]] == [4]
    assert result.fixes == {"box-dropped-too-small-after-resize": 1}


def test_detection_image_whose_boxes_are_all_invalid_is_skipped() -> None:
    record = detection_record(boxes=[{"label": "cat", "left": 700, "top": 0, "width": 10, "height": 10}])
    result = detect(record)
    assert result.line is None
    assert result.skip["reason"] == "invalid-annotation"
    assert result.skip["stage"] == "manifest"
    assert result.skip["source-ref"] == "s3://b/photos/a.jpg"


def test_detection_image_reviewed_as_empty_keeps_an_empty_line() -> None:
    result = detect(detection_record(boxes=[], humanReviewed=False))
    assert result.skip is None
    assert result.line["bounding-box"]["annotations"] == []
    assert result.line["bounding-box-metadata"]["class-map"] == {}
    assert result.line["bounding-box-metadata"]["human-annotated"] == "no"
    assert [i.code for i in validate_line(result.line)] == ["NO_ANNOTATIONS"]
    assert errors_only(validate_line(result.line)) == []


def test_more_than_50_boxes_skips_the_image() -> None:
    boxes = [{"label": "cat", "left": i, "top": 0, "width": 5, "height": 5} for i in range(51)]
    result = detect(detection_record(boxes=boxes))
    assert result.line is None and result.skip["reason"] == "invalid-annotation"
    assert "51 boxes" in result.skip["detail"]


@pytest.mark.parametrize("size", [(63, 480), (4097, 1000), (2100, 100)])
def test_image_outside_custom_labels_dimensions_is_skipped(size: tuple[int, int]) -> None:
    image_size = {"width": size[0], "height": size[1], "depth": 3}
    assert detect(detection_record(image_size=image_size)).skip["reason"] == "image-dimensions"
    assert classify(classification_record(image_size=image_size)).skip["reason"] == "image-dimensions"


def test_record_without_image_size_is_skipped() -> None:
    result = detect(detection_record(image_size=None))
    assert result.skip["reason"] == "invalid-annotation"


# --- classification lines --------------------------------------------------------------------------


def test_classification_line_has_one_attribute_pair_per_label() -> None:
    result = classify(classification_record())
    common = {
        "confidence": 1,
        "type": "groundtruth/image-classification",
        "human-annotated": "yes",
        "creation-date": DATE,
        "job-name": JOB,
    }
    assert result.line == {
        "source-ref": "s3://b/photos/b.jpg",
        "label-0": 3,
        "label-0-metadata": {"class-name": "outdoor", **common},
        "label-1": 1,
        "label-1-metadata": {"class-name": "dog", **common},
    }
    assert validate_line(result.line) == []


def test_classification_without_label_is_skipped_as_no_label() -> None:
    result = classify(classification_record(labels=[]))
    assert result.line is None and result.skip["reason"] == "no-label-after-review"


def test_classification_with_only_unknown_labels_is_skipped_as_invalid() -> None:
    result = classify(classification_record(labels=[{"label": "bird", "status": "added"}]))
    assert result.skip["reason"] == "invalid-annotation"
    assert result.fixes == {"label-dropped-unknown": 1}


def test_classification_duplicates_are_dropped() -> None:
    labels = [{"label": "dog", "status": "kept"}, {"label": "dog", "status": "added"}]
    result = classify(classification_record(labels=labels))
    assert [k for k in result.line if k.startswith("label-") and not k.endswith("metadata")] == ["label-0"]


def test_build_line_dispatches_on_task_type() -> None:
    assert (
        build_line(
            classification_record(), CLASSES, task_type="classification", job_name=JOB, creation_date=DATE
        ).line
        is not None
    )
    with pytest.raises(ValueError):
        build_line(
            classification_record(), CLASSES, task_type="segmentation", job_name=JOB, creation_date=DATE
        )


# --- line validation -------------------------------------------------------------------------------


def valid_detection_line() -> dict[str, Any]:
    return detect(detection_record()).line


def codes(line: dict[str, Any]) -> list[str]:
    return sorted({issue.code for issue in validate_line(line)})


def test_each_issue_cites_an_aws_page() -> None:
    line = valid_detection_line()
    line["bounding-box"]["annotations"][0]["class_id"] = 9
    issues = validate_line(line)
    assert issues and all(i.source.startswith("https://docs.aws.amazon.com/") for i in issues)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda ln: ln.pop("source-ref"), "ERROR_MISSING_SOURCE_REF"),
        (lambda ln: ln.update({"source-ref": "https://b/a.jpg"}), "ERROR_INVALID_SOURCE_REF_FORMAT"),
        (
            lambda ln: ln["bounding-box-metadata"].update({"type": "groundtruth/custom"}),
            "ERROR_UNSUPPORTED_USE_CASE_TYPE",
        ),
        (
            lambda ln: ln["bounding-box"]["annotations"][0].update({"class_id": 7}),
            "ERROR_MISSING_CLASS_MAP_ID",
        ),
        (lambda ln: ln["bounding-box-metadata"]["objects"].pop(), "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE"),
        (
            lambda ln: ln["bounding-box-metadata"]["objects"][0].pop("confidence"),
            "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE",
        ),
        (lambda ln: ln["bounding-box"]["annotations"][0].update({"left": -1}), "ERROR_INVALID_BOUNDING_BOX"),
        (lambda ln: ln["bounding-box"]["annotations"][0].update({"left": 500}), "ERROR_INVALID_BOUNDING_BOX"),
        (
            lambda ln: ln["bounding-box"]["annotations"][0].update({"height": 1}),
            "ERROR_BOUNDING_BOX_TOO_SMALL",
        ),
        (
            lambda ln: ln["bounding-box"]["image_size"][0].update({"width": 5000}),
            "ERROR_INVALID_IMAGE_DIMENSION",
        ),
        (
            lambda ln: ln["bounding-box"]["image_size"][0].update({"width": 63}),
            "ERROR_INVALID_IMAGE_DIMENSION",
        ),
        (lambda ln: ln["bounding-box-metadata"].update({"human-annotated": True}), "INVALID_HUMAN_ANNOTATED"),
        (lambda ln: ln["bounding-box-metadata"].pop("creation-date"), "MISSING_CREATION_DATE"),
        (lambda ln: ln["bounding-box-metadata"]["class-map"].update({"0": "x" * 257}), "INVALID_LABEL_NAME"),
        (lambda ln: ln.pop("bounding-box"), "MISSING_LABEL_ATTRIBUTE"),
        (lambda ln: ln.pop("bounding-box-metadata"), "ERROR_NO_LABEL_ATTRIBUTES"),
    ],
)
def test_detection_rules(mutate: Any, code: str) -> None:
    line = valid_detection_line()
    mutate(line)
    assert code in codes(line)


def test_too_many_boxes_rule() -> None:
    line = valid_detection_line()
    annotation = line["bounding-box"]["annotations"][0]
    line["bounding-box"]["annotations"] = [dict(annotation) for _ in range(51)]
    line["bounding-box-metadata"]["objects"] = [{"confidence": 1} for _ in range(51)]
    assert codes(line) == ["ERROR_TOO_MANY_BOUNDING_BOXES"]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda ln: ln["label-0-metadata"].pop("confidence"), "MISSING_CONFIDENCE"),
        (lambda ln: ln["label-0-metadata"].update({"confidence": 1.5}), "MISSING_CONFIDENCE"),
        (lambda ln: ln["label-0-metadata"].update({"class-name": ""}), "INVALID_LABEL_NAME"),
        (lambda ln: ln.update({"label-0": "outdoor"}), "INVALID_CLASS_ATTRIBUTE"),
    ],
)
def test_classification_rules(mutate: Any, code: str) -> None:
    line = classify(classification_record()).line
    mutate(line)
    assert code in codes(line)


def test_too_many_labels_per_image_rule() -> None:
    line: dict[str, Any] = {"source-ref": "s3://b/a.jpg"}
    template = classify(classification_record()).line["label-0-metadata"]
    for i in range(51):
        line[f"label-{i}"] = i
        line[f"label-{i}-metadata"] = {**template, "class-name": f"l{i}"}
    assert codes(line) == ["TOO_MANY_LABELS_PER_IMAGE"]


# --- manifest validation ---------------------------------------------------------------------------


def test_validator_counts_images_per_label_and_warns_about_missing_labels() -> None:
    validator = ManifestValidator(CLASSES.names)
    validator.add(valid_detection_line())  # cat, dog
    validator.add(classify(classification_record()).line)  # outdoor, dog
    assert validator.label_images == {"cat": 1, "dog": 2, "outdoor": 1}
    assert validator.lines == 2 and validator.bucket == "b"
    warnings = validator.finish()
    assert len(warnings) == 1 and "indoor" in warnings[0]


def test_validator_warns_about_fewer_than_two_labels() -> None:
    validator = ManifestValidator(["cat"])
    validator.add(detect(detection_record(boxes=[detection_record()["boxes"][0]])).line)
    assert any("1 label(s)" in w for w in validator.finish())


def test_validator_warns_about_an_empty_manifest() -> None:
    assert any("empty" in w for w in ManifestValidator().finish())


def test_images_in_two_buckets_are_terminal() -> None:
    validator = ManifestValidator()
    validator.add(valid_detection_line())
    with pytest.raises(ManifestValidationError, match="one S3 bucket"):
        validator.add({**valid_detection_line(), "source-ref": "s3://other-bucket/a.jpg"})


def test_too_many_lines_are_terminal() -> None:
    validator = ManifestValidator(max_lines=2)
    validator.add(valid_detection_line())
    validator.add(valid_detection_line())
    with pytest.raises(ManifestValidationError, match="more than 2 lines"):
        validator.add(valid_detection_line())


def test_too_large_a_manifest_is_terminal() -> None:
    validator = ManifestValidator()
    with pytest.raises(ManifestValidationError, match="1 GB"):
        validator.add(valid_detection_line(), size_bytes=1_000_000_001)


def test_more_than_20_percent_invalid_lines_is_terminal() -> None:
    validator = ManifestValidator()
    bad = valid_detection_line()
    bad["bounding-box-metadata"]["type"] = "groundtruth/custom"
    for line in (valid_detection_line(), valid_detection_line(), valid_detection_line(), bad):
        validator.add(line)
    with pytest.raises(ManifestValidationError, match="invalid"):
        validator.finish()


def test_a_few_invalid_lines_are_a_warning() -> None:
    validator = ManifestValidator(["cat", "dog"])
    bad = valid_detection_line()
    bad["bounding-box-metadata"]["type"] = "groundtruth/custom"
    for line in [valid_detection_line()] * 9 + [bad]:
        validator.add(copy.deepcopy(line))
    assert validator.finish() == [
        "1 manifest lines break a Custom Labels rule "
        "(https://docs.aws.amazon.com/rekognition/latest/customlabels-dg/tm-debugging-json-line-errors.html)"
    ]


# --- properties: every line the builder writes passes the validator --------------------------------

LABELS = ["cat", "dog", "outdoor"]
PROPERTY_CLASSES = ClassMap(LABELS)


@st.composite
def detection_records(draw: st.DrawFn) -> dict[str, Any]:
    width, height = draw(st.integers(64, 4096)), draw(st.integers(64, 4096))
    box = st.fixed_dictionaries(
        {
            "label": st.sampled_from([*LABELS, "unknown"]),
            "left": st.integers(-200, width + 50),
            "top": st.integers(-200, height + 50),
            "width": st.integers(-5, width + 100),
            "height": st.integers(-5, height + 100),
            "status": st.sampled_from(["kept", "adjusted", "added"]),
        }
    )
    return {
        "source-ref": "s3://bucket/" + draw(st.text("abc/._-", min_size=1, max_size=10)) + ".jpg",
        "taskType": "detection",
        "image_size": {"width": width, "height": height, "depth": 3},
        "boxes": draw(st.lists(box, max_size=55)),
        "labels": [],
        "removed": [],
        "reviewer": "auto-accept",
        "humanReviewed": draw(st.booleans()),
    }


@st.composite
def classification_records(draw: st.DrawFn) -> dict[str, Any]:
    labels = draw(st.lists(st.sampled_from([*LABELS, "unknown"]), max_size=6))
    return {
        "source-ref": "s3://bucket/x.png",
        "taskType": "classification",
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "boxes": [],
        "labels": [{"label": name, "status": "kept"} for name in labels],
        "removed": [],
        "reviewer": "labelstudio:1",
        "humanReviewed": draw(st.booleans()),
    }


@given(detection_records())
def test_validator_accepts_every_detection_line_the_builder_writes(record: dict[str, Any]) -> None:
    result = build_detection_line(record, PROPERTY_CLASSES, job_name=JOB, creation_date=DATE)
    assert (result.line is None) != (result.skip is None)
    if result.line is not None:
        assert errors_only(validate_line(result.line)) == []
        assert len(result.line["bounding-box"]["annotations"]) <= len(record["boxes"])
    else:
        assert result.skip["reason"] in ("invalid-annotation", "image-dimensions")


@given(classification_records())
def test_validator_accepts_every_classification_line_the_builder_writes(record: dict[str, Any]) -> None:
    result = build_classification_line(record, PROPERTY_CLASSES, job_name=JOB, creation_date=DATE)
    if result.line is not None:
        assert validate_line(result.line) == []
    else:
        expected = "no-label-after-review" if not record["labels"] else "invalid-annotation"
        assert result.skip["reason"] == expected
