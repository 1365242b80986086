"""Whole executions that should succeed, asserting what a user would check afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from labeling_loop.evaluation.quality import LabeledBox, QualityAccumulator
from labeling_loop.finishing.manifest.rules import errors_only, validate_line
from labeling_loop.kernel.geometry import PixelBox
from labeling_loop.review.groundtruth.jobs import builtin_lambda_arns

from localcloud.data.truth import load_truth
from localcloud.runner import IMAGES_PREFIX, run_local

pytestmark = pytest.mark.e2e


def _truth(manifest: Path, bucket: str):
    lines = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return load_truth(lines, f"s3://{bucket}/{IMAGES_PREFIX}")


def _accounted_for(result) -> None:
    listed = {r["source-ref"] for r in result.inventory}
    in_manifest = {line["source-ref"] for line in result.manifest}
    skipped = {r["source-ref"] for r in result.skipped}
    assert in_manifest | skipped == listed, "every listed image ends in the manifest or skipped.jsonl"
    assert not in_manifest & skipped, "no image is both labeled and skipped"
    counts = result.report["counts"]
    assert counts["imagesListed"] == counts["imagesInManifest"] + counts["imagesSkipped"] == len(listed)


def test_detection_run_with_ground_truth_review(detection_data: tuple[Path, Path]) -> None:
    # GIVEN 30 synthetic images (some EXIF-rotated, some empty) and a stopped detection model
    images, truth_manifest = detection_data
    # WHEN one turn of the loop runs with the default (Ground Truth) review
    result = run_local(images, truth_manifest, name="happy-detection")
    # THEN it succeeds and every image is accounted for
    summary = result.summary
    assert summary["status"] == "SUCCEEDED", summary
    assert summary["images_listed"] == 30
    _accounted_for(result)
    # AND the manifest's lines are valid Custom Labels lines
    assert result.manifest, "the manifest has lines"
    for line in result.manifest:
        assert not errors_only(validate_line(line)), line
        assert line["bounding-box-metadata"]["type"] == "groundtruth/object-detection"
    # AND its boxes agree with the ground truth within the annotators' accuracy (97 %, 1 px jitter)
    truth = _truth(truth_manifest, result.stack.images_bucket)
    quality = QualityAccumulator(iou_threshold=0.5)
    for line in result.manifest:
        class_map = line["bounding-box-metadata"]["class-map"]
        got = [
            LabeledBox(class_map[str(a["class_id"])], PixelBox(a["left"], a["top"], a["width"], a["height"]))
            for a in line["bounding-box"]["annotations"]
        ]
        want = [
            LabeledBox(b.label, PixelBox(b.left, b.top, b.width, b.height))
            for b in truth[line["source-ref"]].boxes
        ]
        size = line["bounding-box"]["image_size"][0]
        assert (size["width"], size["height"]) == (
            truth[line["source-ref"]].width,
            truth[line["source-ref"]].height,
        )
        quality.add_detection(got, want)
    agreement = quality.result()
    assert agreement["precision"] >= 0.9 and agreement["recall"] >= 0.9, agreement
    # AND the model was started by this run, ran only during inference, and is stopped at the end
    assert summary["model_started_by_run"] is True
    assert summary["model_status_at_end"] == "STOPPED"
    intervals = result.model_meter["intervals"]
    assert len(intervals) == 1 and intervals[0][1] is not None
    first_job_created = min(job["created_at"] for job in result.labeling_jobs.values())
    assert intervals[0][1] <= first_job_created, "the model stopped before people started reviewing"
    # AND the labeling jobs were created exactly as the plan says
    plan = result.extra["review_jobs"]
    assert sorted(job["jobName"] for job in plan) == summary["labeling_jobs"]
    pre, acs = builtin_lambda_arns("us-east-1", "AdjustmentBoundingBox")
    for item in plan:
        request = result.labeling_jobs[item["jobName"]]["request"]
        task = request["HumanTaskConfig"]
        assert task["UiConfig"]["UiTemplateS3Uri"] == item["uiTemplateUri"]
        assert task["PreHumanTaskLambdaArn"] == item["preLambdaArn"] == pre
        assert task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"] == acs
        assert request["RoleArn"] == result.stack.ground_truth_role_arn
        assert (
            request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"] == item["inputManifestUri"]
        )
    # AND the report tells the user how good the model was
    assert 0.5 < result.report["modelQuality"]["f1"] <= 1.0


def test_classification_run_uses_our_verification_lambdas(classification_data: tuple[Path, Path]) -> None:
    # GIVEN an image-classification model
    images, truth_manifest = classification_data
    # WHEN the loop runs
    result = run_local(images, truth_manifest, task_type="classification", name="happy-classification")
    # THEN it succeeds with a classification manifest
    assert result.summary["status"] == "SUCCEEDED", result.summary
    _accounted_for(result)
    truth = _truth(truth_manifest, result.stack.images_bucket)
    agree = total = 0
    for line in result.manifest:
        labels = {v["class-name"] for k, v in line.items() if k.endswith("-metadata")}
        assert all(
            v["type"] == "groundtruth/image-classification"
            for k, v in line.items()
            if k.endswith("-metadata")
        )
        agree += labels == set(truth[line["source-ref"]].labels)
        total += 1
    assert total and agree / total >= 0.9
    # AND the verification jobs ran our own pre-annotation and consolidation Lambdas
    functions = result.stack.functions
    for job in result.labeling_jobs.values():
        task = job["request"]["HumanTaskConfig"]
        assert task["PreHumanTaskLambdaArn"] == functions["VerificationPreAnnotationFunction"].arn
        assert (
            task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"]
            == functions["VerificationConsolidationFunction"].arn
        )
    assert result.lambda_invocations["VerificationPreAnnotationFunction"] >= len(result.manifest)
    assert result.lambda_invocations["VerificationConsolidationFunction"] >= 1


def test_auto_accept_on_a_run_too_small_to_vouch_for_it_reviews_in_a_second_wave(
    detection_data: tuple[Path, Path],
) -> None:
    # GIVEN a threshold at which some images have only confident predictions, on 30 images: no audit
    # of so few can show that the auto-accepted ones are at most 5 % wrong
    images, truth_manifest = detection_data
    run_input = {"autoAcceptConfidence": 80, "auditFraction": 0, "auditMinImages": 2}
    result = run_local(images, truth_manifest, run_input=run_input, name="auto-accept")
    assert result.summary["status"] == "SUCCEEDED", result.summary
    _accounted_for(result)
    # THEN the confident images skipped the first review, two of them reviewed anyway as the audit
    audit = result.report["audit"]
    assert audit["audited"] == 2 and audit["autoAcceptedImages"] > 0
    # AND the gate, unable to vouch for them, sent them to people in a second wave: none shipped unchecked
    assert result.report["gate"]["decision"] == "review"
    counts = result.report["counts"]
    assert counts["imagesAutoAccepted"] == 0
    assert counts["imagesReviewed"] == counts["imagesInManifest"]
    assert any("-w2-" in job for job in result.summary["labeling_jobs"])


def test_a_model_already_running_is_left_running(detection_data: tuple[Path, Path]) -> None:
    from localcloud.runner import execute, local_cloud, prepare

    images, truth_manifest = detection_data
    with local_cloud() as cloud:
        # GIVEN a model someone started by hand
        stack, arn, _ = prepare(cloud, images, truth_manifest, model_status="RUNNING")
        # WHEN a run uses it
        result = execute(
            cloud,
            stack,
            arn,
            {"projectVersionArn": arn, "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}"},
            "pre-running",
        )
        # THEN the run succeeds and leaves the model running: it did not start it, so it does not stop it
        assert result.summary["status"] == "SUCCEEDED", result.summary
        assert result.summary["model_started_by_run"] is False
        assert cloud.rekognition.status(arn) == "RUNNING"
        assert result.model_meter["stop_calls"] == 0


def test_an_empty_prefix_is_refused_without_starting_the_model(
    detection_data: tuple[Path, Path],
) -> None:
    # An images prefix with nothing to label is a wrong input (issue 20: it used to succeed with 0
    # images and F1 0.000): List Images refuses it in one line, before the model is started.
    images, truth_manifest = detection_data
    result = run_local(
        images,
        truth_manifest,
        run_input={"images": "s3://labeling-images/nothing-here/"},
        name="empty-prefix",
    )
    assert result.summary["status"] == "FAILED", result.summary
    assert result.summary["error"] == "InvalidInput"
    assert result.summary["cause"] == (
        "images: s3://labeling-images/nothing-here/: no JPEG or PNG image: no object under this prefix"
    )
    assert result.manifest == []
    assert result.model_meter["start_calls"] == 0
    assert result.summary["labeling_jobs"] == []


def test_a_run_without_labels_whose_model_predicts_nothing_offers_the_projects_labels(
    detection_data: tuple[Path, Path],
) -> None:
    # GIVEN a model that misses every object, and an input that names no labels (a console run)
    from localcloud.runner import default_config

    images, truth_manifest = detection_data
    config = default_config()
    config.rekognition.miss_rate, config.rekognition.false_positive_rate = 1.0, 0.0
    # WHEN one turn of the loop runs
    result = run_local(images, truth_manifest, config=config, name="predicts-nothing")
    # THEN the first state settled the label set from the model's project, before the model started,
    # and the review offered it: the run succeeds (it used to fail at Plan Review, model billed)
    assert result.summary["status"] == "SUCCEEDED", result.summary
    truth_labels = sorted(
        {label for t in _truth(truth_manifest, result.stack.images_bucket).values() for label in t.labels}
    )
    entered = [
        e
        for e in result.history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "Validate Input"
    ]
    assert json.loads(entered[0]["stateExitedEventDetails"]["output"])["config"]["labels"] == truth_labels
    # AND people drew the boxes the model missed: they are in the manifest
    assert sum(len(line["bounding-box"]["annotations"]) for line in result.manifest) > 0
    _accounted_for(result)
