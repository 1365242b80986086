"""The whole workflow with the Label Studio backend: a real server on 127.0.0.1, emulated reviewers
answering through its REST API, the same synthetic dataset as the Ground Truth runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import labelstudio_fixtures  # tests/e2e is on sys.path (pytest rootdir-relative import)
import pytest
from labeling_loop.evaluation.quality import LabeledBox, QualityAccumulator
from labeling_loop.kernel.geometry import PixelBox

from localcloud.data.truth import load_truth
from localcloud.runner import IMAGES_PREFIX, run_local
from localcloud.services.labelstudio.server import LabelStudioServer

pytestmark = [pytest.mark.e2e, pytest.mark.labelstudio]

labelstudio = labelstudio_fixtures.labelstudio
moto_s3_endpoint = labelstudio_fixtures.moto_s3_endpoint


def _agreement(result: Any, truth_manifest: Path) -> dict[str, Any]:
    lines = [json.loads(line) for line in truth_manifest.read_text().splitlines() if line.strip()]
    truth = load_truth(lines, f"s3://{result.stack.images_bucket}/{IMAGES_PREFIX}")
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
        quality.add_detection(got, want)
    return quality.result()


def test_both_backends_agree_on_the_same_dataset(
    detection_data: tuple[Path, Path], labelstudio: LabelStudioServer
) -> None:
    images, truth_manifest = detection_data
    # GIVEN the same images, model and reviewer accuracy, WHEN the loop runs with each backend
    by_gt = run_local(images, truth_manifest, name="same-data-gt")
    by_ls = run_local(
        images,
        truth_manifest,
        run_input={"reviewBackend": "labelstudio"},
        name="same-data-ls",
        labelstudio=labelstudio,
    )
    # THEN both succeed with the same counts in report.json
    for result in (by_gt, by_ls):
        assert result.summary["status"] == "SUCCEEDED", result.summary
        assert result.summary["model_status_at_end"] == "STOPPED"
        assert "reviewers_error" not in result.extra
    keys = ("imagesListed", "imagesInManifest", "imagesSkipped", "imagesAutoAccepted", "imagesReviewed")
    assert {k: by_gt.report["counts"][k] for k in keys} == {k: by_ls.report["counts"][k] for k in keys}
    # AND both manifests agree with the ground truth within the reviewers' accuracy (97 %)
    for result in (by_gt, by_ls):
        agreement = _agreement(result, truth_manifest)
        assert agreement["precision"] >= 0.9 and agreement["recall"] >= 0.9, agreement
    # AND the Label Studio run made no labeling job; its reviewed records say who reviewed
    assert by_ls.summary["labeling_jobs"] == []
    assert {r["reviewer"].split(":")[0] for r in by_ls.extra["reviewed"]} == {"labelstudio"}
    # AND Label Studio's lead_time and Ground Truth's worker responses give the reviewer seconds
    # per image (the emulated reviewers of both take 3-40 s an image)
    work = by_ls.report["work"]
    assert work["timedImages"] == by_ls.report["counts"]["imagesReviewed"]
    assert 3 <= work["reviewerSecondsPerImage"] <= 40
    assert by_gt.report["work"]["timedImages"] == by_gt.report["counts"]["imagesReviewed"]  # < 300 a job
    assert 3 <= by_gt.report["work"]["reviewerSecondsPerImage"] <= 40


def test_a_review_past_its_deadline_is_collected_partially(
    detection_data: tuple[Path, Path], labelstudio: LabelStudioServer
) -> None:
    images, truth_manifest = detection_data
    # GIVEN reviewers who leave 30 % of the tasks unanswered and a deadline of 0.002 h (7 s), who
    # give all their other answers before the run checks (on a loaded machine they would otherwise
    # still be answering when the 7 s pass)
    result = run_local(
        images,
        truth_manifest,
        name="deadline",
        run_input={"reviewBackend": "labelstudio", "reviewDeadlineHours": 0.002, "reviewPollSeconds": 60},
        labelstudio=labelstudio,
        unannotated_fraction=0.3,
        answers_before_checks=True,
    )
    # THEN the run ends SUCCEEDED with what was done, and the rest is reported, never lost
    assert result.summary["status"] == "SUCCEEDED", result.summary
    not_reviewed = [r for r in result.skipped if r["reason"] == "not-reviewed"]
    assert not_reviewed, "unanswered tasks are listed in skipped.jsonl"
    assert len(not_reviewed) == result.extra["reviewers"].unannotated
    counts = result.report["counts"]
    assert counts["imagesListed"] == counts["imagesInManifest"] + counts["imagesSkipped"]
    assert result.summary["model_status_at_end"] == "STOPPED"


@pytest.mark.parametrize("problem", ["unreachable", "bad-token"])
def test_labelstudio_problems_fail_the_run_before_the_model_starts(
    detection_data: tuple[Path, Path], labelstudio: LabelStudioServer, problem: str
) -> None:
    from localcloud.runner import execute, local_cloud, prepare
    from localcloud.services.labelstudio.server import free_port

    images, truth_manifest = detection_data
    with local_cloud() as cloud:
        import boto3

        # GIVEN a stack whose Label Studio is down, or whose secret holds a token it rejects
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        token = "not-a-token" if problem == "bad-token" else labelstudio.token
        secret_arn = secrets.create_secret(Name="ls-token", SecretString=token)["ARN"]
        url = labelstudio.url if problem == "bad-token" else f"http://127.0.0.1:{free_port()}"
        parameters = {
            "ReviewBackend": "labelstudio",
            "LabelStudioUrl": url,
            "LabelStudioHttpHost": "127.0.0.1",
            "LabelStudioTokenSecretArn": secret_arn,
        }
        stack, arn, _ = prepare(cloud, images, truth_manifest, parameters=parameters)
        run_input = {"projectVersionArn": arn, "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}"}
        result = execute(cloud, stack, arn, run_input, f"ls-{problem}", timeout=120)
    # THEN the run fails with a clear error naming the server, and the model was never started
    assert result.summary["status"] == "FAILED"
    expected = {"unreachable": "LabelStudioUnavailableError", "bad-token": "ReviewBackendError"}[problem]
    assert result.summary["error"] == expected
    assert "Label Studio" in result.summary["cause"] and url in result.summary["cause"]
    assert result.model_meter["start_calls"] == 0
    # AND it failed in the preflight, before any state that starts or bills anything
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e
    ]
    assert entered == [
        "Validate Input",
        "Label Studio Review?",
        "Check Label Studio Access",
        "Clean Up After Failure",
        "Notify Run Failed",  # no topic in this stack: nothing is sent
        "Run Failed",
    ]
