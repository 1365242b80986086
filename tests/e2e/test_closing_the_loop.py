"""Closing the loop (issue 12), whole executions in the local cloud: `train: true` trains the next
version and compares it with the current one on the project's frozen TEST set (promoted only on a
proven improvement; a version trained on careless reviews comes out worse and stays out; without a
TEST dataset the run says why it cannot compare and how to get one), a failed training keeps the
manifest, report.html renders in Chromium with its thumbnails, the SNS topic receives the right
messages, and coco.json loads in pycocotools. The audit, its gate and the thresholds, acted on:
test_decisions.py.

One successful run (module fixture) is shared by the tests that read it; the failure runs are
their own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import browser
import pytest
import report_page
from labeling_loop.evaluation.quality import LabeledBox
from labeling_loop.kernel.geometry import PixelBox

from localcloud.data.dataset import DETECTION_CLASSES, generate
from localcloud.data.truth import Truth, load_truth, manifest_lines
from localcloud.engine import faults as faults_module
from localcloud.runner import IMAGES_PREFIX, LocalRunResult, default_config, execute, local_cloud, prepare

pytestmark = pytest.mark.e2e
chromium = browser.chromium

EMAIL = "labeling-team@example.com"
HELD_OUT = "heldout/"
INPUT = {
    "autoAcceptConfidence": 80,
    "auditFraction": 0.5,
    "auditMinImages": 8,
    "auditErrorTarget": 0.3,
    "train": True,
    "promoteIfBetter": True,
    "trainingPollSeconds": 60,
}


@dataclass
class Turn:
    result: LocalRunResult
    truth: dict[str, Truth]
    messages: list[dict[str, Any]]
    dataset_types: list[str]  # the project's datasets after the run


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    images = tmp_path_factory.mktemp("loop-images")
    held_out = tmp_path_factory.mktemp("held-out")
    return (
        images,
        generate(images, 48, task="detection", seed=21),
        held_out,
        generate(held_out, 30, task="detection", seed=22),
    )


def _run(
    datasets: tuple[Path, Path, Path, Path],
    name: str,
    run_input: dict[str, Any],
    *,
    faults: dict[str, Any] | None = None,
    project_datasets: str = "train+test",
    annotator_accuracy: float | None = None,
) -> Turn:
    """One execution; the project has a TRAIN and a TEST dataset of held-out images ("train+test"),
    only the TRAIN one ("train") or none ("none")."""
    images, truth_manifest, held_out, held_out_manifest = datasets
    config = default_config()
    config.parameters = {"NotificationEmail": EMAIL}
    if annotator_accuracy is not None:
        config.groundtruth.annotator_accuracy = annotator_accuracy
    with local_cloud(config, faults_module.Faults.from_dict(faults) if faults else None) as cloud:
        stack, arn, _ = prepare(cloud, images, truth_manifest)
        # The project as an earlier turn left it: a training dataset and a test dataset of other images.
        cloud.upload_folder(held_out, HELD_OUT)
        base = f"s3://{stack.images_bucket}/{HELD_OUT}"
        held = load_truth(manifest_lines(held_out_manifest), base)
        cloud.add_truth(held)
        lines = [
            {**line, "source-ref": base + line["source-ref"]} for line in manifest_lines(held_out_manifest)
        ]
        if project_datasets != "none":
            cloud.rekognition.add_dataset("shapes", "TRAIN", lines[:10])
        if project_datasets == "train+test":
            cloud.rekognition.add_dataset("shapes", "TEST", lines[10:])
        if project_datasets == "none":
            # A project without datasets: the input names the labels the first state cannot read there.
            cloud.rekognition.remove_datasets("shapes")
            run_input = {"labels": list(DETECTION_CLASSES), **run_input}
        full_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            **run_input,
        }
        result = execute(cloud, stack, arn, full_input, name, timeout=300)
        topic = stack.functions["NotifyFunction"].environment["NOTIFICATION_TOPIC_ARN"]
        messages = cloud.sns_messages(topic) if topic else []
        dataset_types = sorted(d["DatasetType"] for d in cloud.rekognition.project_datasets("shapes"))
        truth = load_truth(manifest_lines(truth_manifest), f"s3://{stack.images_bucket}/{IMAGES_PREFIX}")
    return Turn(result, truth, messages, dataset_types)


@pytest.fixture(scope="module")
def turn(datasets: tuple[Path, Path, Path, Path]) -> Turn:
    return _run(datasets, "closing-the-loop", INPUT)


def _truth_boxes(truth: Truth) -> list[LabeledBox]:
    return [
        LabeledBox(b.label, PixelBox(int(b.left), int(b.top), int(b.width), int(b.height)))
        for b in truth.boxes
    ]


def _record_boxes(record: dict[str, Any]) -> list[LabeledBox]:
    return [LabeledBox.from_dict(b) for b in record["boxes"]]


def test_the_run_succeeds_and_accounts_for_every_image(turn: Turn) -> None:
    result = turn.result
    assert result.summary["status"] == "SUCCEEDED", result.summary
    counts = result.report["counts"]
    ended = counts["imagesInManifest"] + counts["imagesSkipped"] + counts["imagesDeferred"]
    assert counts["imagesListed"] == ended == 48
    assert result.summary["model_status_at_end"] == "STOPPED"


def test_training_compares_both_versions_on_the_frozen_test_set_and_decides_on_the_interval(
    turn: Turn,
) -> None:
    result = turn.result
    training = result.output["training"]
    comparison = result.report["training"]["comparison"]
    print(f"\ntraining: {training}\ncomparison: {comparison}")
    assert training["status"] == "TRAINING_COMPLETED", training
    # GIVEN the two versions' testing snapshots, on the project's 20 TEST images
    assert comparison["possible"] and comparison["testImages"] == 20, comparison
    assert all(
        uri.startswith("s3://")
        for uri in comparison["testResults"]["current"] + comparison["testResults"]["new"]
    )
    # the F1 each version was described with is the F1 of its snapshot
    assert comparison["f1Before"]["estimate"] == training["previousF1"]
    assert comparison["f1After"]["estimate"] == training["newF1"]
    difference = comparison["difference"]
    low, high = difference["interval95"]
    assert low <= difference["estimate"] <= high
    assert abs(difference["estimate"] - (training["newF1"] - training["previousF1"])) <= 0.0001  # rounding
    # THEN the decision follows the interval, not the point estimate
    assert training["decision"]["promote"] is (low > 0)
    expected_next = training["newProjectVersionArn"] if low > 0 else result.model_arn
    assert training["decision"]["nextProjectVersionArn"] == expected_next
    assert f"{difference['estimate']:+.4f}" in training["decision"]["reason"]
    # the state machine carries the figures, not the images
    assert training["comparison"] == {k: comparison[k] for k in ("possible", "testImages", "difference")}
    # the report says the same, and the manifest went into the project's training dataset in chunks
    assert result.report["training"]["newF1"] == training["newF1"]
    assert result.extra["training_state"]["chunks"] >= 1
    assert "training" in result.report["cost"]
    assert "Paired F1 difference" in result.extra["report_html"]


def test_a_version_trained_on_careless_reviews_comes_out_worse_and_is_not_promoted(
    datasets: tuple[Path, Path, Path, Path],
) -> None:
    # GIVEN reviewers who fix none of the model's mistakes: the labels carry its misses and its
    # false positives, and the next version is trained on them
    turn = _run(datasets, "careless-reviews", INPUT, annotator_accuracy=0.0)
    training = turn.result.output["training"]
    comparison = turn.result.report["training"]["comparison"]
    print(f"\ntraining: {training}\ncomparison: {comparison}")
    assert turn.result.summary["status"] == "SUCCEEDED"
    # THEN on the frozen TEST set it is worse than the version it was meant to replace, and stays out
    assert comparison["possible"] and comparison["testImages"] == 20, comparison
    assert training["newF1"] < training["previousF1"]
    assert comparison["difference"]["estimate"] < 0
    assert training["decision"]["promote"] is False
    assert training["decision"]["nextProjectVersionArn"] == turn.result.model_arn


def test_without_a_test_dataset_the_run_says_it_cannot_compare_and_how_to_get_one(
    datasets: tuple[Path, Path, Path, Path],
) -> None:
    # GIVEN a project with a TRAIN dataset only: Custom Labels tests each version on its own split
    turn = _run(datasets, "no-test-dataset", INPUT, project_datasets="train")
    training = turn.result.output["training"]
    report = turn.result.report["training"]
    assert training["status"] == "TRAINING_COMPLETED", training
    # THEN no comparison, no promotion, and the reason says how to get a TEST dataset
    assert report["comparison"]["possible"] is False
    reason = report["comparison"]["reason"]
    assert "no TEST dataset" in reason and "CreateDataset" in reason and "DistributeDatasetEntries" in reason
    assert training["decision"]["promote"] is False
    assert training["decision"]["reason"] == f"not compared: {reason}"
    assert training["decision"]["nextProjectVersionArn"] == turn.result.model_arn
    # AND the run created no TEST dataset on its own; report.html says why there is no comparison
    assert turn.dataset_types == ["TRAIN"]
    assert "no TEST dataset" in turn.result.extra["report_html"]


def test_report_html_renders_in_chromium_with_its_thumbnails_and_charts(
    turn: Turn, chromium: browser.Chromium, tmp_path: Path
) -> None:
    # GIVEN the training run's report.html, as the run wrote it to S3
    html = turn.result.extra["report_html"]
    report = turn.result.report
    disagreements = report["disagreements"]
    assert disagreements, "the run should have images where model and people disagreed"
    # WHEN it is opened with the network off and painted
    report_page.open_offline(chromium, html, tmp_path / "report.html")
    images = chromium.evaluate("[...document.images].map(i => [i.naturalWidth, i.naturalHeight])") or []
    screenshot = tmp_path / "report.png"
    image = chromium.screenshot(screenshot)
    headings = chromium.evaluate("[...document.querySelectorAll('h2')].map(h => h.innerText)")
    # THEN its thumbnails and sections are there ...
    assert len(images) == len(disagreements) and all(w > 0 and h > 0 for w, h in images), (images, screenshot)
    expected = [
        "Model quality",
        "Auto-accept audit and gate",
        "Recommended auto-accept thresholds",
        "What people kept and corrected, by confidence",
        "Human work",
        "Cost (estimate)",
        "Next model version",
        "Where model and people disagreed most",
    ]
    assert [h for h in expected if h not in headings] == [], headings
    # ... every chart of its figures, the comparison of the two versions included ...
    kinds = {c["kind"] for c in report_page.check_charts(chromium, report)}
    assert kinds == {"quality", "audit", "threshold", "histogram", "cost", "comparison"}, kinds
    assert image.height > 3000, image.size
    # ... and it is self-contained: nothing fetched, no script
    assert report_page.requests_made(chromium) == [] and "<script" not in html


def test_sns_messages_say_what_waits_and_how_the_run_ended(turn: Turn) -> None:
    subjects = [m["subject"] for m in turn.messages]
    assert len(turn.messages) == 2, subjects
    review, ended = turn.messages
    run_id = turn.result.report["runId"]
    jobs = turn.result.summary["labeling_jobs"]
    assert review["subject"].startswith("Review waiting:") and run_id in review["subject"]
    images = turn.result.report["counts"]["imagesReviewed"]
    assert f"{images} images wait for review" in review["message"]
    assert all(job in review["message"] for job in jobs) and "Review deadline:" in review["message"]
    assert ended["subject"].startswith("Run ended:")
    assert (
        turn.result.report["report"] in ended["message"] and "s3.console.aws.amazon.com" in ended["message"]
    )
    assert "Auto-accept error rate, 95 % interval" in ended["message"]
    assert "TRAINING_COMPLETED" in ended["message"]


def test_coco_export_loads_in_pycocotools_and_matches_the_manifest(turn: Turn, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    path = tmp_path / "coco.json"
    path.write_text(json.dumps(turn.result.extra["coco"]))
    coco = COCO(str(path))
    manifest = turn.result.manifest
    assert len(coco.getImgIds()) == len(manifest)
    boxes = sum(len(line["bounding-box"]["annotations"]) for line in manifest)
    assert len(coco.getAnnIds()) == boxes
    names = {c["name"] for c in coco.loadCats(coco.getCatIds())}
    # a line's class-map names the classes of its own boxes (none for an image without boxes)
    classes = {name for line in manifest for name in line["bounding-box-metadata"]["class-map"].values()}
    assert names == classes
    # the image with the most boxes, box by box
    line = max(manifest, key=lambda line: (len(line["bounding-box"]["annotations"]), line["source-ref"]))
    assert line["bounding-box"]["annotations"]
    image = next(i for i in coco.loadImgs(coco.getImgIds()) if i["coco_url"] == line["source-ref"])
    got = sorted(tuple(a["bbox"]) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])))
    want = sorted((a["left"], a["top"], a["width"], a["height"]) for a in line["bounding-box"]["annotations"])
    assert got == want


def test_a_failed_training_keeps_the_manifest_and_states_the_error(
    datasets: tuple[Path, Path, Path, Path],
) -> None:
    # GIVEN a project without datasets (the run creates the training dataset) whose training fails
    message = "The manifest file contains too many invalid rows."
    turn = _run(
        datasets,
        "training-fails",
        {"train": True, "trainingPollSeconds": 60},
        faults={"model": {"failTraining": message}},
        project_datasets="none",
    )
    result = turn.result
    # THEN the run succeeds with its manifest, and the result and the report state the error
    assert result.summary["status"] == "SUCCEEDED", result.summary
    assert result.manifest and result.report["counts"]["imagesInManifest"] == len(result.manifest)
    training = result.output["training"]
    assert training["status"] == "TRAINING_FAILED" and message in training["error"]
    assert result.report["training"]["status"] == "TRAINING_FAILED"
    assert any(message in w for w in result.report["warnings"])
    assert result.output["manifest"].endswith("output.manifest")


def test_a_failed_run_notifies_the_error_and_the_model_state(datasets: tuple[Path, Path, Path, Path]) -> None:
    turn = _run(datasets, "fails-to-start", {}, faults={"model": {"failStart": True}})
    assert turn.result.summary["status"] == "FAILED"
    (failed,) = turn.messages
    assert failed["subject"].startswith("Run failed: ModelStartFailedError")
    assert "Cause:" in failed["message"] and "FAILED" in failed["message"]
    assert turn.result.model_arn in failed["message"]
