"""Issue 14's reproduction as a whole execution: a model at 5 TPS per inference unit with 200 ms per
DetectCustomLabels call, 1,500 images. Before flow control this run SUCCEEDED with 1,116 images
skipped as `service-error` (1,332 of 1,716 calls throttled): the calls in flight were fixed at Map
slots x threads, 8x what the model serves, botocore's retry quota drained and images were given up.

The same run at 5 inference units, time-scaled 2x so the test takes seconds: 10 TPS per unit and
100 ms per call keep the calls in flight the model serves (TPS x latency = 1 per unit, 5 in all), which
is what the flow control has to match, and the model's 50 calls/s stay under the ~90 images/s the
one-process local cloud serves, so the model, not the machine, is the limit. (Measured on the code
before flow control: 2x scaled, this test failed with images skipped as service errors.)
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from labeling_loop.inference.batch import RESERVE_S
from PIL import Image

from localcloud.data.truth import Truth, TruthBox
from localcloud.engine.cloud import LocalCloud, LocalCloudConfig
from localcloud.engine.deployment import Stack
from localcloud.runner import IMAGES_PREFIX, execute, local_cloud, wait_for_model_stopped
from localcloud.services.custom_labels import CustomLabelsConfig
from localcloud.services.groundtruth import GroundTruthConfig

pytestmark = pytest.mark.e2e

IMAGES = 1_500
UNITS = 5
SCALE = 2.0
TPS_PER_UNIT = 5.0 * SCALE
LATENCY_S = 0.2 / SCALE


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 80, 40)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _upload_images(cloud: LocalCloud, stack: Stack, count: int) -> list[str]:
    """`count` small JPEGs under the images prefix, each holding one object (whatever the model
    misses, the reviewers add); their S3 refs in order."""
    data = _jpeg()
    refs = []
    for i in range(count):
        key = f"{IMAGES_PREFIX}img-{i:05d}.jpg"
        cloud.s3.put_object(Bucket=stack.images_bucket, Key=key, Body=data, ContentType="image/jpeg")
        refs.append(f"s3://{stack.images_bucket}/{key}")
    cloud.add_truth({ref: Truth(ref, 64, 64, [TruthBox("box", 12, 12, 30, 30)], ["box"]) for ref in refs})
    return refs


def test_a_model_at_5_tps_per_unit_and_200_ms_per_call_labels_every_image_at_5_units(tmp_path: Path) -> None:
    config = LocalCloudConfig(
        time_scale=0.002,
        rekognition=CustomLabelsConfig(
            start_latency_s=1.0,
            stop_latency_s=0.2,
            tps_per_inference_unit=TPS_PER_UNIT,
            detect_latency_s=LATENCY_S,
        ),
        groundtruth=GroundTruthConfig(job_latency_s=1.0, annotator_accuracy=1.0),
    )
    with local_cloud(config) as cloud:
        stack = cloud.deploy()
        refs = _upload_images(cloud, stack, IMAGES)
        arn = cloud.add_model("detection")
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "minInferenceUnits": UNITS,
            "minConfidence": 1,
            "autoAcceptConfidence": 1,
        }
        # WHEN one turn of the loop runs over the 1,500 images
        result = execute(cloud, stack, arn, run_input, "flow-control", timeout=600)
        result.summary["model_status_at_end"] = wait_for_model_stopped(cloud, arn)
        meter = cloud.rekognition.meter(arn)

    # THEN the run succeeds with every image in the manifest: none skipped, none given up as a
    # service error, each predicted once
    summary = result.summary
    assert summary["status"] == "SUCCEEDED", summary
    assert sorted(line["source-ref"] for line in result.manifest) == refs
    assert result.skipped == [], result.skipped[:3]
    assert meter["detect_answered"] == IMAGES
    # AND the model was asked at its pace: throttled calls are a small fraction of all calls
    assert meter["detect_calls"] >= IMAGES
    assert meter["throttled_calls"] < 0.05 * meter["detect_calls"], meter
    # AND the model is stopped
    assert summary["model_status_at_end"] == "STOPPED"


def test_a_batch_longer_than_one_invocation_continues_where_it_stopped(tmp_path: Path) -> None:
    # GIVEN a run whose inference function may run only ~1 s past the time it keeps in reserve, so
    # its one batch (1 inference unit) needs several invocations
    config = LocalCloudConfig(
        time_scale=0.002,
        rekognition=CustomLabelsConfig(
            start_latency_s=1.0, stop_latency_s=0.2, tps_per_inference_unit=50.0, detect_latency_s=0.02
        ),
        groundtruth=GroundTruthConfig(job_latency_s=1.0, annotator_accuracy=1.0),
    )
    images = 400
    with local_cloud(config) as cloud:
        stack = cloud.deploy()
        stack.functions["DetectLabelsFunction"].timeout = int(RESERVE_S) + 1
        refs = _upload_images(cloud, stack, images)
        arn = cloud.add_model("detection")
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "minConfidence": 1,
            "autoAcceptConfidence": 1,
        }
        # WHEN the run infers its images
        result = execute(cloud, stack, arn, run_input, "continued", timeout=600)
        meter = cloud.rekognition.meter(arn)
        parts = cloud.s3.list_objects_v2(
            Bucket=stack.output_bucket, Prefix=result.run_prefix.split("/", 3)[3] + "predictions/"
        )
    # THEN the child called the function again and again, each invocation continuing after the last
    invocations = result.lambda_invocations["DetectLabelsFunction"]
    assert invocations >= 3, invocations
    assert len(parts["Contents"]) == invocations  # one predictions part per invocation
    # AND every image was inferred exactly once and is in the manifest
    assert result.summary["status"] == "SUCCEEDED", result.summary
    assert meter["detect_answered"] == images
    assert sorted(line["source-ref"] for line in result.manifest) == refs
    # AND the learned rate went along: the later invocations did not start over from the priors
    assert meter["throttled_calls"] < 0.05 * meter["detect_calls"], meter


def test_the_batches_of_a_run_above_10_units_share_the_capacity_they_learn(tmp_path: Path) -> None:
    # GIVEN 20 inference units of a model slower than the flow control's prior (2 TPS per unit,
    # time-scaled x1.25: 50 calls/s, 160 ms): the run has two batches, each starting from half the
    # 5 TPS/unit prior, 2.5x what the model serves
    config = LocalCloudConfig(
        time_scale=0.002,
        rekognition=CustomLabelsConfig(
            start_latency_s=1.0, stop_latency_s=0.2, tps_per_inference_unit=2.5, detect_latency_s=0.16
        ),
        groundtruth=GroundTruthConfig(job_latency_s=1.0, annotator_accuracy=1.0),
    )
    images, units = 1_000, 20
    with local_cloud(config) as cloud:
        stack = cloud.deploy({"InferenceUnitsLimit": str(units)})
        refs = _upload_images(cloud, stack, images)
        arn = cloud.add_model("detection")
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "minInferenceUnits": units,
            "minConfidence": 1,
            "autoAcceptConfidence": 1,
        }
        # WHEN the run infers its images
        result = execute(cloud, stack, arn, run_input, "shared", timeout=600)
        meter = cloud.rekognition.meter(arn)
        item = cloud.dynamodb.get_item(
            TableName=stack.table, Key={"pk": {"S": f"flow#{result.summary['execution_arn']}"}}
        )["Item"]
    # THEN both batches posted their estimates to the run's item, the last time with nothing left
    reports = {
        name: {k: float(v["N"]) for k, v in value["M"].items()}
        for name, value in item.items()
        if name != "pk"
    }
    assert sorted(reports) == ["b0", "b1"], reports
    assert [report["left"] for report in reports.values()] == [0, 0]
    # AND every image was inferred once, with few throttled calls
    assert result.summary["status"] == "SUCCEEDED", result.summary
    assert meter["detect_answered"] == images
    assert sorted(line["source-ref"] for line in result.manifest) == refs
    assert meter["throttled_calls"] < 0.05 * meter["detect_calls"], meter
