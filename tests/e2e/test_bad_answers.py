"""Answers Custom Labels cannot take, in whole runs of both backends, and a run over its image limit.

- A reviewer's (or a script's) answer with a box of negative width, or with 10,000 boxes: the run
  succeeds, the image is skipped with its reason, report.html is written, and no figure counts what
  the manifest does not hold.
- A run over `maxImagesPerRun` (scaled down from Custom Labels' 250,000 lines, a real run setting):
  the manifest holds the limit, the rest are deferred and counted, and the next incremental run
  takes the deferred images first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import labelstudio_fixtures  # tests/e2e is on sys.path (pytest rootdir-relative import)
import pytest
from labeling_loop.kernel.jsonl import read_json, read_jsonl
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.labelstudio.client import LabelStudioClient
from run_checks import assert_every_image_accounted_for, assert_model_not_left_running

from localcloud.data.dataset import generate
from localcloud.engine.cloud import LocalCloud
from localcloud.engine.deployment import Stack
from localcloud.engine.lambda_runtime import FunctionSpec
from localcloud.runner import LocalRunResult, default_config, execute, local_cloud, prepare, run_local
from localcloud.services.labelstudio.server import LabelStudioServer

pytestmark = pytest.mark.e2e

labelstudio = labelstudio_fixtures.labelstudio
moto_s3_endpoint = labelstudio_fixtures.moto_s3_endpoint
MANY = 10_000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("bad-answers")
    return folder, generate(folder, 12, task="detection", seed=23)


def _edit_before_collect(
    logical_id: str, edit: Callable[[LocalCloud, dict[str, Any]], list[str]], edited: list[str]
) -> Callable[[LocalCloud, Stack], None]:
    """A `setup` that edits the reviewers' answers once, when the collect step is first invoked
    (someone editing answers outside the labeling UI, after the review and before collection)."""

    def setup(cloud: LocalCloud, stack: Stack) -> None:
        def hook(spec: FunctionSpec, payload: dict[str, Any], count: int) -> None:
            if spec.logical_id == logical_id and payload.get("action", "collect") == "collect" and not edited:
                edited.extend(edit(cloud, payload))

        cloud.runtime.fault_hooks.append(hook)

    return setup


def _boxes_in_manifest(result: LocalRunResult) -> int:
    return sum(len(line["bounding-box"]["annotations"]) for line in result.manifest)


def assert_bad_answers_skipped_and_uncounted(result: LocalRunResult, edited: list[str]) -> None:
    """The run succeeded with its report; the two edited images are skipped with their reasons; the
    figures count the manifest's images only."""
    assert result.summary["status"] == "SUCCEEDED", result.summary
    assert_model_not_left_running(result)
    negative, many = edited
    reasons = {r["source-ref"]: (r["reason"], r["detail"]) for r in result.skipped}
    assert reasons[negative][0] == "invalid-box" and "positive width and height" in reasons[negative][1]
    assert reasons[many][0] == "too-many-boxes" and "Custom Labels takes at most 50" in reasons[many][1]
    assert {line["source-ref"] for line in result.manifest}.isdisjoint(edited)
    assert_every_image_accounted_for(result, 12)
    counts = result.report["counts"]
    assert counts["boxesKept"] + counts["boxesAdjusted"] + counts["boxesAdded"] == _boxes_in_manifest(result)
    assert counts["boxesAdded"] < 100, counts  # the 10,000 boxes are counted nowhere
    assert result.report["modelQuality"]["f1"] > 0.8, result.report["modelQuality"]
    assert result.report["skippedByReason"] == {"invalid-box": 1, "too-many-boxes": 1}
    assert (
        result.extra["report_html"].startswith("<!DOCTYPE html>")
        and "Labeling run" in result.extra["report_html"]
    )


def test_ground_truth_answers_custom_labels_cannot_take_skip_their_images(dataset: tuple[Path, Path]) -> None:
    images, truth = dataset

    def edit(cloud: LocalCloud, payload: dict[str, Any]) -> list[str]:
        # Two answers of the first labeling job's output: a box of negative width, and 10,000 boxes.
        run = S3Uri.parse(payload["config"]["runPrefix"])
        [job, *_] = read_json(cloud.s3, run.join("review/jobs.json"))
        output = run.join(f"review/groundtruth-output/{job['jobName']}/manifests/output/output.manifest")
        lines = list(read_jsonl(cloud.s3, output))
        attribute = job["labelAttributeName"]
        first, second = lines[0], lines[1]
        box = {"class_id": 0, "left": 100, "top": 50, "width": -40, "height": 30}
        first[attribute]["annotations"] = [*first[attribute]["annotations"], box]
        second[attribute]["annotations"] = [
            {"class_id": 0, "left": i % 200, "top": i % 150, "width": 4, "height": 4} for i in range(MANY)
        ]
        for line in (first, second):
            metadata = line[f"{attribute}-metadata"]
            metadata["adjustment-status"] = "adjusted"
            metadata["objects"] = [{"confidence": 0.0} for _ in line[attribute]["annotations"]]
            metadata["class-map"] = {**metadata.get("class-map", {}), "0": "circle"}
        body = "".join(json.dumps(line) + "\n" for line in lines)
        cloud.s3.put_object(Bucket=output.bucket, Key=output.key, Body=body.encode())
        return [first["source-ref"], second["source-ref"]]

    edited: list[str] = []
    # WHEN people's answers are edited before collection: one box of negative width, one 10,000 boxes
    result = run_local(
        images,
        truth,
        name="bad-answers-gt",
        setup=_edit_before_collect("CollectLabelingJobsFunction", edit, edited),
    )
    # THEN the run succeeds with its report, those images skipped with their reasons, figures unaffected
    assert_bad_answers_skipped_and_uncounted(result, edited)


@pytest.mark.labelstudio
def test_label_studio_answers_custom_labels_cannot_take_skip_their_images(
    dataset: tuple[Path, Path], labelstudio: LabelStudioServer
) -> None:
    images, truth = dataset
    ls = LabelStudioClient(labelstudio.url, labelstudio.token)

    def edit(cloud: LocalCloud, payload: dict[str, Any]) -> list[str]:
        run = S3Uri.parse(payload["config"]["runPrefix"])
        project = read_json(cloud.s3, run.join("review/labelstudio.json"))["projectId"]
        refs = {
            int(r["id"]): r["source-ref"]
            for r in read_jsonl(cloud.s3, run.join("review/labelstudio-tasks.jsonl"))
        }
        tasks = ls.get("/api/tasks/", {"project": project, "fields": "all", "page_size": 100})["tasks"]
        answered = [t for t in tasks if t.get("annotations")][:2]
        rectangle = {"from_name": "label", "to_name": "image", "type": "rectanglelabels",
                     "original_width": 100, "original_height": 100}  # fmt: skip
        negative = {**rectangle, "value": {"x": 30, "y": 20, "width": -10, "height": 10,
                                           "rotation": 0, "rectanglelabels": ["circle"]}}  # fmt: skip
        many = [
            {**rectangle, "value": {"x": i % 90, "y": i % 90, "width": 2, "height": 2, "rotation": 0,
                                    "rectanglelabels": ["circle"]}}
            for i in range(MANY)
        ]  # fmt: skip
        for task, result in zip(answered, ([negative], many), strict=True):
            ls.patch(f"/api/annotations/{task['annotations'][0]['id']}/", {"result": result})
        return [refs[int(t["id"])] for t in answered]

    edited: list[str] = []
    result = run_local(
        images,
        truth,
        run_input={"reviewBackend": "labelstudio"},
        name="bad-answers-ls",
        labelstudio=labelstudio,
        setup=_edit_before_collect("LabelStudioReviewFunction", edit, edited),
    )
    assert "reviewers_error" not in result.extra, result.extra["reviewers_error"]
    assert_bad_answers_skipped_and_uncounted(result, edited)


def test_a_run_over_its_image_limit_defers_the_rest_and_the_next_run_takes_them_first(
    dataset: tuple[Path, Path],
) -> None:
    images, truth = dataset
    with local_cloud(default_config()) as cloud:
        stack, arn, refs = prepare(cloud, images, truth)
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/incoming/",
            "incremental": True,
            "maxImagesPerRun": 5,
        }
        # GIVEN 12 images and runs that take at most 5 (Custom Labels' 250,000 lines, scaled down)
        # WHEN the first incremental run goes
        first = execute(cloud, stack, arn, run_input, "limit-1")
        # THEN its manifest holds 5 images, the 7 others are deferred (over-manifest-limit) and counted
        assert first.summary["status"] == "SUCCEEDED", first.summary
        assert len(first.manifest) == 5 and len(first.inventory) == 5
        assert [r["reason"] for r in first.deferred] == ["over-manifest-limit"] * 7
        assert first.report["deferredByReason"] == {"over-manifest-limit": 7}
        assert_every_image_accounted_for(first, 12)
        assert first.model_meter["detect_calls"] == 5, "nothing is spent on a deferred image"
        deferred_first = {r["source-ref"] for r in first.deferred}
        # WHEN a new image arrives (it lists first) and the next incremental run goes
        source = {"Bucket": stack.images_bucket, "Key": S3Uri.parse(refs[0]).key}
        cloud.s3.copy_object(Bucket=stack.images_bucket, Key="incoming/0-new.jpg", CopySource=source)
        second = execute(cloud, stack, arn, run_input, "limit-2")
        # THEN it takes 5 of the 7 deferred images before the new one, and defers the rest again
        assert second.summary["status"] == "SUCCEEDED", second.summary
        taken = {line["source-ref"] for line in second.inventory}
        assert len(taken) == 5 and taken <= deferred_first, taken - deferred_first
        assert all("deferredSince" in line for line in second.inventory)
        assert {r["source-ref"] for r in second.deferred} == (deferred_first - taken) | {
            f"s3://{stack.images_bucket}/incoming/0-new.jpg"
        }
        assert_every_image_accounted_for(second, 8)
        # AND the run after that takes the last three, and nothing is deferred any more
        third = execute(cloud, stack, arn, run_input, "limit-3")
        assert third.summary["status"] == "SUCCEEDED", third.summary
        assert len(third.manifest) == 3 and third.deferred == []
        labeled = {line["source-ref"] for r in (first, second, third) for line in r.manifest}
        assert len(labeled) == 13
        # AND a scheduled run with nothing new ends quietly: succeeded, no warning, no model started
        starts = third.model_meter["start_calls"]
        quiet = execute(cloud, stack, arn, run_input, "limit-4")
        assert quiet.summary["status"] == "SUCCEEDED", quiet.summary
        assert quiet.report["nothingToDo"] is True and quiet.report["warnings"] == [], quiet.report
        assert quiet.report["counts"]["imagesListed"] == 0 and quiet.manifest == []
        assert quiet.model_meter["start_calls"] == starts
        assert "Nothing to do" in quiet.extra["report_html"]
