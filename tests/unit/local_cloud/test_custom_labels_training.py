"""What the emulated Custom Labels training leaves behind (training.py, results.py): testing and
training snapshots and the summary file under the version's OutputConfig, described as
DescribeProjectVersions describes them (botocore's shapes), the auto-split when the project has no
TEST dataset, and a new version that is as good as the labels it was given."""

from __future__ import annotations

import json
from typing import Any

from labeling_loop.evaluation.promotion import read_testing_snapshot, snapshot_uris
from labeling_loop.kernel.jsonl import read_json, read_jsonl
from labeling_loop.kernel.s3_uri import S3Uri

from localcloud.data.truth import load_truth
from localcloud.services.base import operation_model
from localcloud.services.custom_labels import CustomLabelsConfig, CustomLabelsEmulator

OUT = "training-out"


def _line(i: int, boxes: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Image i with its boxes (left, top) of 100x80 pixels; by default two, at (10+i, 20) and (300, 200)."""
    boxes = [(10 + i, 20), (300, 200)] if boxes is None else boxes
    return {
        "source-ref": f"s3://images/photos/img-{i:03d}.jpg",
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [
                {"class_id": 0, "left": x, "top": y, "width": 100, "height": 80} for x, y in boxes
            ],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 0}] * len(boxes),
            "class-map": {"0": "cat"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-01-01T00:00:00.000000",
        },
    }


def _emulator(s3: Any, images: int = 200) -> CustomLabelsEmulator:
    emulator = CustomLabelsEmulator(
        s3, CustomLabelsConfig(dataset_latency_s=0.0, training_latency_s=0.0), clock=lambda: 0.0
    )
    emulator.add_model(
        "pets", "v1", "detection", load_truth([_line(i) for i in range(images)], "s3://unused/")
    )
    return emulator


def _train(emulator: CustomLabelsEmulator, name: str) -> dict[str, Any]:
    project_arn = emulator.project_arn("pets")
    emulator.handle(
        "CreateProjectVersion",
        {
            "ProjectArn": project_arn,
            "VersionName": name,
            "OutputConfig": {"S3Bucket": OUT, "S3KeyPrefix": f"runs/{name}/"},
        },
    )
    (described,) = emulator.handle(
        "DescribeProjectVersions", {"ProjectArn": project_arn, "VersionNames": [name]}
    )["ProjectVersionDescriptions"]
    assert described["Status"] == "TRAINING_COMPLETED"
    return dict(described)


def _check_members(value: Any, shape: Any) -> None:
    if shape.type_name == "structure":
        assert isinstance(value, dict) and not set(value) - set(shape.members), (shape.name, value)
        for key, item in value.items():
            _check_members(item, shape.members[key])
    elif shape.type_name == "list":
        for item in value:
            _check_members(item, shape.member)


def _refs(s3: Any, uris: list[S3Uri]) -> set[str]:
    return {line["source-ref"] for uri in uris for line in read_jsonl(s3, uri)}


def test_a_trained_version_points_at_its_snapshots_and_summary_under_its_output_config(aws: Any) -> None:
    s3 = aws.s3
    s3.create_bucket(Bucket=OUT)
    emulator = _emulator(s3)
    emulator.add_dataset("pets", "TRAIN", [_line(i) for i in range(0, 40)])
    emulator.add_dataset("pets", "TEST", [_line(i) for i in range(100, 130)])
    described = _train(emulator, "v2")
    # the members are botocore's ProjectVersionDescription members
    shape = operation_model("rekognition", "DescribeProjectVersions").output_shape
    _check_members(described, shape.members["ProjectVersionDescriptions"].member)
    testing, training = (
        snapshot_uris(described, "TestingDataResult"),
        snapshot_uris(described, "TrainingDataResult"),
    )
    assert all(u.bucket == OUT and u.key.startswith("runs/v2/") for u in testing + training)
    # the test is the TEST dataset, the training the TRAIN dataset, and the F1 is the snapshot's
    assert _refs(s3, testing) == {f"s3://images/photos/img-{i:03d}.jpg" for i in range(100, 130)}
    assert _refs(s3, training) == {f"s3://images/photos/img-{i:03d}.jpg" for i in range(0, 40)}
    counts = read_testing_snapshot(line for uri in testing for line in read_jsonl(s3, uri))
    tp, fp, fn = (sum(getattr(c, k) for c in counts.values()) for k in ("tp", "fp", "fn"))
    assert described["EvaluationResult"]["F1Score"] == round(2 * tp / (2 * tp + fp + fn), 4)
    assert described["TestingDataResult"]["Input"]["AutoCreate"] is False
    summary_object = described["EvaluationResult"]["Summary"]["S3Object"]
    assert summary_object["Name"] == "runs/v2/EvaluationSummary-pets-v2.json"
    summary = read_json(s3, S3Uri(summary_object["Bucket"], summary_object["Name"]))
    assert summary["EvaluationDetails"]["NumberOfTestingImages"] == 30
    assert summary["EvaluationDetails"]["NumberOfTrainingImages"] == 40
    assert (
        summary["AggregatedEvaluationResults"]["Metrics"]["F1Score"]
        == described["EvaluationResult"]["F1Score"]
    )


def test_without_a_test_dataset_each_training_tests_on_its_own_temporary_split(aws: Any) -> None:
    s3 = aws.s3
    emulator = _emulator(s3)  # the output bucket does not exist yet: the emulator creates it
    emulator.add_dataset("pets", "TRAIN", [_line(i) for i in range(0, 200)])
    splits = []
    for name in ("v2", "v3"):
        described = _train(emulator, name)
        assert described["TestingDataResult"]["Input"]["AutoCreate"] is True
        test = _refs(s3, snapshot_uris(described, "TestingDataResult"))
        train = _refs(s3, snapshot_uris(described, "TrainingDataResult"))
        assert not test & train and len(test | train) == 200 and 20 <= len(test) <= 60, len(test)
        splits.append(test)
    assert splits[0] != splits[1]  # "temporary": two trainings are not tested on the same images


def _noise_after_training(s3: Any, lines: list[dict[str, Any]], name: str) -> float:
    emulator = _emulator(s3)
    emulator.add_dataset("pets", "TRAIN", lines)
    emulator.add_dataset("pets", "TEST", [_line(i) for i in range(150, 200)])
    arn = _train(emulator, name)["ProjectVersionArn"]
    return emulator._models[arn].trained.noise_scale


def test_a_new_version_is_as_good_as_the_labels_it_was_given(aws: Any) -> None:
    s3 = aws.s3
    s3.create_bucket(Bucket=OUT)
    correct = [_line(i) for i in range(100)]  # 200 true objects, all labeled right
    few = [_line(i) for i in range(10)]
    missing = [_line(i, [(10 + i, 20)]) for i in range(100)]  # every second object left out
    wrong = [_line(i, [(10 + i, 20), (300, 200), (500, 380)]) for i in range(100)]  # one box on nothing
    scales = {
        name: _noise_after_training(s3, lines, name)
        for name, lines in [("correct", correct), ("few", few), ("missing", missing), ("wrong", wrong)]
    }
    print(f"\nnoise scales: {json.dumps(scales)}")
    # more correct labels, a better model (labels_halving_noise 100: 20 vs 200 correct objects)
    assert scales["few"] == 100 / 120 and scales["correct"] == 100 / 300
    # labels that disagree with the truth make it worse than the registered version (1.0): half the
    # objects missing, or a third of the boxes wrong, over the configured miss + false-positive rates
    assert scales["missing"] == 100 / 200 + 0.5 / 0.2
    assert abs(scales["wrong"] - (100 / 300 + (100 / 300) / 0.2)) < 1e-12
