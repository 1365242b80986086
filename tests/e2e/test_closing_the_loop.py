"""Closing the loop (issue 12), whole executions in the local cloud: `train: true` trains the next
version (the audit, its gate and the thresholds, acted on: test_decisions.py), a failed training
keeps the manifest, report.html renders in Chromium with its thumbnails, the SNS topic receives the
right messages, and coco.json loads in pycocotools.

One successful run (module fixture) is shared by the tests that read it; the failure runs are
their own."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import browser
import pytest
from labeling_loop.evaluation.quality import LabeledBox
from labeling_loop.geometry import PixelBox

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
    project_datasets: bool = True,
) -> Turn:
    images, truth_manifest, held_out, held_out_manifest = datasets
    config = default_config()
    config.parameters = {"NotificationEmail": EMAIL}
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
        if project_datasets:
            cloud.rekognition.add_dataset("shapes", "TRAIN", lines[:10])
            cloud.rekognition.add_dataset("shapes", "TEST", lines[10:])
        else:
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
        truth = load_truth(manifest_lines(truth_manifest), f"s3://{stack.images_bucket}/{IMAGES_PREFIX}")
    return Turn(result, truth, messages)


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


def test_training_reports_two_f1_values_and_the_new_one_is_higher(turn: Turn) -> None:
    result = turn.result
    training = result.output["training"]
    print(f"\ntraining: {training}")
    assert training["status"] == "TRAINING_COMPLETED", training
    assert training["previousF1"] is not None and training["newF1"] is not None
    assert training["newF1"] > training["previousF1"]
    assert training["decision"]["promote"] is True
    assert training["decision"]["nextProjectVersionArn"] == training["newProjectVersionArn"]
    # the report says the same, and the manifest went into the project's training dataset in chunks
    assert result.report["training"]["newF1"] == training["newF1"]
    assert result.extra["training_state"]["chunks"] >= 1
    assert "training" in result.report["cost"]


def test_report_html_renders_in_chromium_with_its_thumbnails(
    turn: Turn, chromium: browser.Chromium, tmp_path: Path
) -> None:
    html = turn.result.extra["report_html"]
    disagreements = turn.result.report["disagreements"]
    assert disagreements, "the run should have images where model and people disagreed"
    page = tmp_path / "report.html"
    page.write_text(html)
    chromium.send("Page.enable", page=True)
    chromium.send("Page.navigate", {"url": page.as_uri()}, page=True)
    images: list[list[int]] = []
    for _ in range(100):
        images = (
            chromium.evaluate(
                "[...document.images].filter(i => i.complete).map(i => [i.naturalWidth, i.naturalHeight])"
            )
            or []
        )
        if len(images) == len(disagreements):
            break
        chromium.evaluate("new Promise(r => setTimeout(r, 100))")
    screenshot = tmp_path / "report.png"
    screenshot.write_bytes(
        base64.b64decode(chromium.send("Page.captureScreenshot", {"format": "png"}, page=True)["data"])
    )
    headings = chromium.evaluate("[...document.querySelectorAll('h2')].map(h => h.innerText)")
    assert len(images) == len(disagreements) and all(w > 0 and h > 0 for w, h in images), (images, screenshot)
    expected = [
        "Model quality",
        "Auto-accept audit and gate",
        "Recommended auto-accept thresholds",
        "Human work",
        "Cost (estimate)",
        "Next model version",
        "Where model and people disagreed most",
    ]
    assert [h for h in expected if h not in headings] == [], headings
    # self-contained: no external resource
    assert "http://" not in html.split("<body>")[0] and 'src="http' not in html


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
        project_datasets=False,
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
