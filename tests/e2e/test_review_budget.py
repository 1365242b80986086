"""A review budget in whole runs: people review the images most likely to need a correction, the
audit included; the rest are deferred, counted and listed, and the next incremental runs take them
first, as many runs as the report said.

- 200 images, a budget of 30 with auto-accept on (an audit of 10): 30 reviewed, 170 deferred; what
  people reviewed needed more corrections, by the ground truth, than what waits; the report, the
  notification and the execution's output (what `labeling-loop show` prints) say so; the next
  incremental run, without a budget, reviews the deferred images before 10 new ones and finishes them.
- 40 images, a budget of 15: the report says the 25 deferred need two more runs at this pace, and
  two more runs with the same budget finish them, though new images arrive in between.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from labeling_loop.evaluation.quality import LabeledBox
from labeling_loop.evaluation.verdict import detection_verdict
from labeling_loop.kernel.geometry import PixelBox, round_half_up
from labeling_loop.kernel.jsonl import read_jsonl
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.selection import to_task
from run_checks import assert_every_image_accounted_for, assert_model_not_left_running

from labeling_ops.render import budget_lines
from localcloud.data.dataset import generate
from localcloud.data.truth import Truth, load_truth, manifest_lines
from localcloud.engine.cloud import LocalCloud
from localcloud.engine.deployment import Stack
from localcloud.runner import IMAGES_PREFIX, LocalRunResult, default_config, execute, local_cloud, prepare

pytestmark = pytest.mark.e2e

EMAIL = "owner@example.com"
MIN_CONFIDENCE = 50.0


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    images = tmp_path_factory.mktemp("budget-shapes")
    return images, generate(images, 210, task="detection", seed=41)


def _hide(cloud: LocalCloud, stack: Stack, names: list[str]) -> list[tuple[str, str]]:
    """Move images out of the prefix (they arrive later): [(hidden key, key under the prefix)]."""
    moved = []
    for key in names:
        hidden = "later/" + key.removeprefix(IMAGES_PREFIX)
        cloud.s3.copy_object(
            Bucket=stack.images_bucket, Key=hidden, CopySource={"Bucket": stack.images_bucket, "Key": key}
        )
        cloud.s3.delete_object(Bucket=stack.images_bucket, Key=key)
        moved.append((hidden, key))
    return moved


def _arrive(cloud: LocalCloud, stack: Stack, moved: list[tuple[str, str]]) -> None:
    for hidden, key in moved:
        cloud.s3.copy_object(
            Bucket=stack.images_bucket, Key=key, CopySource={"Bucket": stack.images_bucket, "Key": hidden}
        )


def _order(cloud: LocalCloud, result: LocalRunResult) -> list[dict[str, Any]]:
    return list(read_jsonl(cloud.s3, S3Uri.parse(result.run_prefix + "review/order.jsonl")))


def _claims(cloud: LocalCloud, stack: Stack) -> dict[str, str]:
    return {
        item["pk"]["S"].removeprefix("image#"): item["state"]["S"]
        for page in cloud.dynamodb.get_paginator("scan").paginate(TableName=stack.table)
        for item in page["Items"]
        if item["pk"]["S"].startswith("image#")
    }


def _true_corrections(result: LocalRunResult, truth: dict[str, Truth]) -> dict[str, int]:
    """Per inferred image: the corrections it needed, by the ground truth (the product's verdict
    on what reviewers were shown)."""
    needed = {}
    for record in result.extra["predictions"]:
        task = to_task(record, "detection", MIN_CONFIDENCE)
        shown = [LabeledBox(p["label"], PixelBox(**p["box"])) for p in task["predictions"]]
        boxes = truth[record["source-ref"]].boxes
        real = [LabeledBox(b.label, PixelBox(*(round_half_up(v) for v in (b.left, b.top, b.width, b.height))))
                for b in boxes]  # fmt: skip
        needed[record["source-ref"]] = detection_verdict(shown, real).corrections
    return needed


def test_a_budget_of_30_reviews_the_likely_wrong_and_the_next_run_finishes_the_rest(
    shapes: tuple[Path, Path],
) -> None:
    images, truth_manifest = shapes
    config = default_config()
    config.parameters = {"NotificationEmail": EMAIL}
    with local_cloud(config) as cloud:
        stack, arn, refs = prepare(cloud, images, truth_manifest)
        truth = load_truth(manifest_lines(truth_manifest), f"s3://{stack.images_bucket}/{IMAGES_PREFIX}")
        # 10 of the 210 images arrive only before the second run
        late = _hide(cloud, stack, [S3Uri.parse(r).key for r in sorted(refs)[-10:]])
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "incremental": True,
            "autoAcceptConfidence": 95,
            "auditMinImages": 10,
            "auditFraction": 0,
        }
        # GIVEN 200 images and a review budget of 30, the audit of auto-accept included
        first = execute(cloud, stack, arn, {**run_input, "reviewBudget": 30}, "budget-1")
        order = _order(cloud, first)
        claims = _claims(cloud, stack)
        topic = stack.functions["NotifyFunction"].environment["NOTIFICATION_TOPIC_ARN"]
        messages = cloud.sns_messages(topic)

        # THEN people reviewed exactly 30 images: the 10 audited and 20 the order put first
        assert first.summary["status"] == "SUCCEEDED", first.summary
        report, counts = first.report, first.report["counts"]
        print(f"\nbudget: {report['budget']}\ngate: {report['gate']}")
        assert counts["imagesReviewed"] == 30 and counts["imagesInManifest"] == 30
        sent = sum(job["objectCount"] for job in first.extra["review_jobs"])
        second_wave = [j for j in first.labeling_jobs if "-w2-" in j]
        assert sent == 30 and not second_wave, "the gate held the rest, but the budget had nothing left"
        budget = report["budget"]
        assert budget["reviewBudget"] == 30 and budget["sentToPeople"] == 30 and budget["audited"] == 10
        assert budget["reviewedByPriority"]["audit"] == 10
        assert [line["priority"] for line in order[:10]] == ["audit"] * 10
        assert [line["rank"] for line in order if line["review"]] == list(range(1, 31))
        # AND the other 170 are deferred with the reason, counted, and their claims wait
        assert counts["imagesDeferred"] == 170 and counts["imagesAutoAccepted"] == 0
        assert report["deferredByReason"] == {"over-review-budget": 170}
        assert_every_image_accounted_for(first, 200)
        assert_model_not_left_running(first)
        deferred = {r["source-ref"] for r in first.deferred}
        assert {claims[r] for r in deferred} == {"deferred"}
        assert {claims[line["source-ref"]] for line in first.manifest} == {"labeled"}
        # AND what people reviewed needed more corrections than what waits (ground truth)
        needed = _true_corrections(first, truth)
        chosen = [line["source-ref"] for line in order if line["review"] and line["priority"] != "audit"]
        waiting = [line["source-ref"] for line in order if not line["review"]]
        chosen_rate = sum(needed[r] for r in chosen) / len(chosen)
        waiting_rate = sum(needed[r] for r in waiting) / len(waiting)
        print(f"true corrections per image: reviewed {chosen_rate:.2f}, deferred {waiting_rate:.2f}")
        assert chosen_rate >= 1.5 * waiting_rate
        # AND the report, the notification and the execution's output (what `show` prints) say it
        assert budget["correctionsFound"] > 0 and budget["backlog"] == 170
        assert budget["pace"] == 20 and budget["runsForBacklog"] == math.ceil(170 / 20)
        assert "<h2>Review budget</h2>" in first.extra["report_html"]
        ended = next(m["message"] for m in messages if m["subject"].startswith("Run ended"))
        assert (
            f"Review budget 30: 30 images sent to people, {budget['correctionsFound']} corrections found."
            in ended
        )
        assert "170 images: about 9 runs at this run's pace (20 a run)" in ended
        waiting_note = next(m["message"] for m in messages if m["subject"].startswith("Review waiting"))
        assert "more wait for the next run" in waiting_note
        assert first.output is not None
        shown = dict(budget_lines(first.output["budget"]))
        assert shown["review budget"] == "30 images: 30 sent to people"
        assert shown["backlog"].startswith("170 images wait for the next runs")

        # WHEN 10 new images arrive and the next incremental run goes, without a budget
        _arrive(cloud, stack, late)
        second = execute(cloud, stack, arn, {**run_input, "reviewBudget": "none"}, "budget-2")
        second_order = _order(cloud, second)
        claims = _claims(cloud, stack)

    # THEN it takes the deferred images, reviewing them before the new ones, and finishes them
    assert second.summary["status"] == "SUCCEEDED", second.summary
    assert {line["source-ref"] for line in second.inventory} == deferred | {
        f"s3://{stack.images_bucket}/{key}" for _, key in late
    }
    waited = [line["rank"] for line in second_order if line["priority"] == "waited"]
    new = [line["rank"] for line in second_order if line["priority"] == "uncertainty"]
    assert waited and new and max(waited) < min(new)
    assert second.deferred == [] and second.report["budget"]["backlog"] == 0
    assert_every_image_accounted_for(second, 180)
    assert {claims[r] for r in deferred} == {"labeled"}
    assert len({line["source-ref"] for line in first.manifest + second.manifest}) == 210


def test_the_backlog_is_cleared_in_the_runs_the_report_promised(shapes: tuple[Path, Path]) -> None:
    images, truth_manifest = shapes
    with local_cloud(default_config()) as cloud:
        stack, arn, refs = prepare(cloud, images, truth_manifest)
        # 40 images now, 5 more before each later run (the rest of the folder never arrives)
        hidden = _hide(cloud, stack, sorted(S3Uri.parse(r).key for r in refs)[40:])
        arrivals = [hidden[:5], hidden[5:10]]
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "incremental": True,
            "reviewBudget": 15,
        }
        # GIVEN a run over 40 images with a budget of 15
        first = execute(cloud, stack, arn, run_input, "pace-1")
        assert first.summary["status"] == "SUCCEEDED", first.summary
        backlog = {r["source-ref"] for r in first.deferred}
        promised = first.report["budget"]["runsForBacklog"]
        # THEN it reviews 15 and says the 25 deferred need two more runs at this pace
        assert len(first.manifest) == 15 and len(backlog) == 25 and promised == 2
        # WHEN that many runs go with the same budget, new images arriving before each
        labeled: set[str] = set()
        runs = []
        for i in range(promised):
            _arrive(cloud, stack, arrivals[i])
            run = execute(cloud, stack, arn, run_input, f"pace-{i + 2}")
            assert run.summary["status"] == "SUCCEEDED", run.summary
            assert_every_image_accounted_for(run, run.report["counts"]["imagesListed"])
            labeled |= {line["source-ref"] for line in run.manifest}
            runs.append(run)
    # THEN the first run's backlog is labeled within them, as promised, before any new image
    assert backlog <= labeled, sorted(backlog - labeled)
    assert len(runs[0].manifest) == 15 and {line["source-ref"] for line in runs[0].manifest} <= backlog
    assert runs[0].report["budget"]["runsForBacklog"] == 1  # 10 left of it, and the 5 new ones
