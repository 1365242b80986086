"""Training the next version (training/next_version.py) against the emulated Custom Labels service,
one step at a time: the manifest goes into the training dataset in whole-line chunks under the
limit, one chunk per step while the dataset is busy in between, then CreateProjectVersion, then the
evaluation beside the current version's, recorded in the report."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from fixtures_aws import IMAGES_BUCKET, OUTPUT_BUCKET, REGION, ServiceError, answer_with, make_config
from labeling_loop.kernel.jsonl import read_json, write_json
from labeling_loop.training import next_version

from localcloud.data.truth import load_truth
from localcloud.services.base import ServiceError as EmulatedError
from localcloud.services.custom_labels import CustomLabelsConfig, CustomLabelsEmulator


def _line(i: int) -> dict[str, Any]:
    return {
        "source-ref": f"s3://{IMAGES_BUCKET}/photos/img-{i:03d}.jpg",
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [{"class_id": 0, "left": 10 + i, "top": 20, "width": 100, "height": 80}],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 0}],
            "class-map": {"0": "cat"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-01-01T00:00:00.000000",
        },
    }


@pytest.fixture
def service(moto_s3: Any) -> tuple[CustomLabelsEmulator, Any, list[tuple[str, dict[str, Any]]]]:
    emulator = CustomLabelsEmulator(
        moto_s3, CustomLabelsConfig(dataset_latency_s=0.0, training_latency_s=0.0), clock=lambda: 0.0
    )
    truth = load_truth([_line(i) for i in range(40)], "s3://unused/")
    emulator.add_model("birds", "v1", "detection", truth)
    emulator.add_dataset("birds", "TRAIN", [_line(i) for i in range(30, 40)])
    emulator.add_dataset("birds", "TEST", [_line(i) for i in range(20, 30)])

    def respond(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "UpdateDatasetEntries":  # the wire carries blobs in base64
            blob = params["Changes"]["GroundTruth"]
            params = {**params, "Changes": {"GroundTruth": base64.b64encode(blob).decode()}}
        try:
            return emulator.handle(operation, params)
        except EmulatedError as error:
            raise ServiceError(error.code, error.message) from None

    rekognition = boto3.client("rekognition", region_name=REGION)
    calls = answer_with(rekognition, respond)
    return emulator, rekognition, calls


def test_the_manifest_goes_in_by_whole_line_chunks_then_the_new_version_is_trained_and_compared(
    moto_s3: Any,
    service: tuple[CustomLabelsEmulator, Any, list[tuple[str, dict[str, Any]]]],
    monkeypatch: Any,
) -> None:
    emulator, rekognition, calls = service
    moto_s3.create_bucket(Bucket=OUTPUT_BUCKET)
    model_arn = next(iter(emulator._models))
    config = make_config(projectVersionArn=model_arn, train=True, promoteIfBetter=True)
    layout = config.layout()
    manifest = "".join(json.dumps(_line(i)) + "\n" for i in range(20))
    moto_s3.put_object(Bucket=OUTPUT_BUCKET, Key=layout.manifest.key, Body=manifest.encode())
    write_json(
        moto_s3, layout.report, {"runId": config.runId, "counts": {"imagesInManifest": 20}, "warnings": []}
    )
    monkeypatch.setattr(next_version, "CHUNK_BYTES", 1500)  # a few lines per call

    # WHEN the state machine starts training and advances it until it says done
    summary = next_version.start(moto_s3, rekognition, config, images_in_manifest=20, now=0.0)
    for _ in range(40):
        if summary["done"]:
            break
        summary = next_version.advance(moto_s3, rekognition, config, now=0.0)

    # THEN every chunk was whole lines under the limit, and together they are the manifest
    updates = [p["Changes"]["GroundTruth"] for op, p in calls if op == "UpdateDatasetEntries"]
    assert len(updates) > 1 and all(len(u) <= 1500 and u.endswith(b"\n") for u in updates)
    assert b"".join(updates).decode() == manifest
    (train,) = [d for d in emulator._datasets.values() if d.kind == "TRAIN"]
    assert len(train.entries) == 30  # 10 already there + 20 from the run
    # AND the new version trained, was compared with the current one and recorded
    assert summary["status"] == "TRAINING_COMPLETED", summary
    assert summary["previousF1"] is not None and summary["newF1"] is not None
    report = read_json(moto_s3, layout.report)
    # AND the two were compared on the project's 10 TEST images, from their testing snapshots: the
    # snapshots' F1 is the F1 DescribeProjectVersions gives, and the decision follows the interval
    comparison = report["training"]["comparison"]
    assert comparison["possible"] and comparison["testImages"] == 10, comparison
    assert comparison["f1Before"]["estimate"] == summary["previousF1"]
    assert comparison["f1After"]["estimate"] == summary["newF1"]
    low = comparison["difference"]["interval95"][0]
    assert summary["decision"]["promote"] is (low > 0)
    assert summary["comparison"] == {k: comparison[k] for k in ("possible", "testImages", "difference")}
    assert report["training"]["newProjectVersionArn"] == summary["newProjectVersionArn"]
    assert report["training"]["chunksSent"] == len(updates)
    created = [p for op, p in calls if op == "CreateProjectVersion"]
    assert len(created) == 1 and created[0]["VersionName"] == f"lab-{config.runId}"
    assert created[0]["OutputConfig"] == {
        "S3Bucket": OUTPUT_BUCKET,
        "S3KeyPrefix": layout.training_output.key,
    }


def test_an_empty_manifest_trains_nothing_and_says_so(moto_s3: Any, service: Any) -> None:
    emulator, rekognition, calls = service
    moto_s3.create_bucket(Bucket=OUTPUT_BUCKET)
    config = make_config(projectVersionArn=next(iter(emulator._models)), train=True)
    write_json(moto_s3, config.layout().report, {"runId": config.runId, "warnings": []})
    summary = next_version.start(moto_s3, rekognition, config, images_in_manifest=0, now=0.0)
    assert summary["done"] and summary["status"] == "SKIPPED" and "empty" in summary["error"]
    assert calls == []
