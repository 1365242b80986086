"""Two incremental runs over the same prefix at the same time: image claims keep their work apart,
model leases keep the model running until the last of them has finished inferring."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from localcloud.data.dataset import generate
from localcloud.engine import hooks
from localcloud.engine.lambda_runtime import FunctionSpec
from localcloud.runner import (
    IMAGES_PREFIX,
    LocalRunResult,
    collect,
    default_config,
    local_cloud,
    prepare,
    run_id_of,
    wait_for_model_stopped,
)

pytestmark = pytest.mark.e2e

IMAGES = 20


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("overlap-images")
    return folder, generate(folder, IMAGES, task="detection", seed=31)


def _listings_meet() -> Any:
    """A fault hook that holds each ListImages call until the other run's has arrived, so that the
    two runs claim images at the same moment (the race the claims exist for)."""
    barrier = threading.Barrier(2, timeout=20)

    def hook(spec: FunctionSpec, payload: dict[str, Any], count: int) -> None:
        if spec.logical_id == "ListImagesFunction" and count <= 2:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # the other run never came: let this one go on (the test then says why)
        return None

    return hook


def _jittered_claims(count: int) -> Any:
    rng = random.Random(7)
    left = {"puts": count}
    lock = threading.Lock()

    def intercept(operation: str, params: dict[str, Any]) -> None:
        if operation == "PutItem":
            with lock:
                left["puts"] -= 1
                delay = rng.uniform(0.0, 0.04) if left["puts"] >= 0 else 0.0
            time.sleep(delay)
        return None  # moto answers

    return intercept


def _finish(
    cloud: Any, stack: Any, arn: str, execution_arn: str, run_input: dict[str, Any], name: str
) -> LocalRunResult:
    outcome = cloud.wait(execution_arn, 120)
    return collect(cloud, outcome, stack, arn, run_id_of(name, execution_arn), 0, 0.0)


def _refs(records: list[dict[str, Any]]) -> set[str]:
    return {r["source-ref"] for r in records}


def test_two_overlapping_incremental_runs_share_the_images_and_the_model(images: tuple[Path, Path]) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, refs = prepare(cloud, folder, truth)
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "incremental": True,
        }
        cloud.runtime.fault_hooks.append(_listings_meet())
        # The claims (conditional writes) take a random few milliseconds each, as on DynamoDB, so
        # that the two runs' claims interleave instead of one run finishing before the other begins.
        hooks.intercept("dynamodb", _jittered_claims(2 * IMAGES))
        # WHEN two runs over the same prefix start together
        first = cloud.start(run_input, "overlap-a")
        second = cloud.start(run_input, "overlap-b")
        a = _finish(cloud, stack, arn, first, run_input, "overlap-a")
        b = _finish(cloud, stack, arn, second, run_input, "overlap-b")
        status_after_both = wait_for_model_stopped(cloud, arn)
        meter_after_both = cloud.rekognition.meter(arn)
        # AND a third run comes later
        third_execution = cloud.start(run_input, "overlap-c")
        c = _finish(cloud, stack, arn, third_execution, run_input, "overlap-c")
        meter_at_end = cloud.rekognition.meter(arn)
        job_names = list(cloud.groundtruth.created_job_names)

    # THEN both succeed
    for result in (a, b):
        assert result.summary["status"] == "SUCCEEDED", result.summary
        counts = result.report["counts"]
        assert counts["imagesListed"] == counts["imagesInManifest"] + counts["imagesSkipped"]
        assert _refs(result.manifest) | _refs(result.skipped) == _refs(result.inventory)
    # AND every image went to exactly one of them: none in both manifests, none lost
    assert not _refs(a.inventory) & _refs(b.inventory), "an image was claimed by both runs"
    assert not _refs(a.manifest) & _refs(b.manifest), "an image is in both manifests"
    done = _refs(a.manifest) | _refs(a.skipped) | _refs(b.manifest) | _refs(b.skipped)
    assert done == set(refs), sorted(set(refs) - done)
    # AND the model was never stopped under a run that still inferred: no DetectCustomLabels call
    # found it not running, and every call was answered
    inferring = [r for r in (a, b) if r.inventory]
    assert meter_after_both["not_ready_calls"] == 0, meter_after_both
    assert meter_after_both["throttled_calls"] == 0, meter_after_both
    assert meter_after_both["detect_answered"] == meter_after_both["detect_calls"] == IMAGES
    # ... one start served both runs (or, if the second came after the first had stopped it, a
    # clean restart): every running interval is closed, one stop per start
    intervals = meter_after_both["intervals"]
    # (start_calls counts StartProjectVersion calls: when both runs find the model stopped at the same
    # moment, both call it and the second is refused with ResourceInUseException, as on AWS)
    assert 1 <= len(intervals) <= meter_after_both["start_calls"] <= 2, meter_after_both
    assert meter_after_both["stop_calls"] == len(intervals)
    assert all(end is not None for _, end in intervals), intervals
    if len(inferring) == 2:
        assert len(intervals) == 1, f"both runs inferred under one start of the model: {intervals}"
    # AND it is stopped at the end
    assert status_after_both == "STOPPED"
    # AND a third incremental run finds nothing new: it lists nothing and never starts the model
    assert c.summary["status"] == "SUCCEEDED", c.summary
    assert c.report["counts"]["imagesListed"] == 0 and c.manifest == []
    assert meter_at_end["start_calls"] == meter_after_both["start_calls"]
    # AND no labeling job was created twice
    assert not [n for n, k in Counter(job_names).items() if k > 1], job_names
    print(
        f"claims: run a {len(a.inventory)}, run b {len(b.inventory)}; model intervals {len(intervals)}; "
        f"starts {meter_after_both['start_calls']}; billed {meter_after_both['billed_seconds']:.2f} s"
    )


def test_a_run_that_starts_while_another_waits_for_the_model_shares_it(
    images: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Deterministic overlap: the second run starts (over the same prefix, where new images have
    just arrived) while the first waits for the model to start, so both infer under one start."""
    folder, truth = images
    late = tmp_path_factory.mktemp("late-images")
    late_truth = generate(late, 8, task="detection", seed=37)
    with local_cloud(default_config()) as cloud:
        stack, arn, refs = prepare(cloud, folder, truth)
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "incremental": True,
        }
        started: dict[str, Any] = {}

        def second_run_when_the_first_acquires(
            spec: FunctionSpec, payload: dict[str, Any], count: int
        ) -> None:
            if (
                spec.logical_id == "ModelControlFunction"
                and payload.get("action") == "acquire"
                and not started
            ):
                # new images arrive under the prefix, and the schedule starts the next run
                late_refs = cloud.upload_folder(late, IMAGES_PREFIX + "late/")
                from localcloud.data.truth import load_truth

                lines = [json.loads(line) for line in late_truth.read_text().splitlines() if line.strip()]
                cloud.add_truth(load_truth(lines, f"s3://{stack.images_bucket}/{IMAGES_PREFIX}late/"))
                started["refs"] = late_refs
                started["execution"] = cloud.start(run_input, "overlap-late")
            return None

        cloud.runtime.fault_hooks.append(second_run_when_the_first_acquires)
        first = cloud.start(run_input, "overlap-first")
        a = _finish(cloud, stack, arn, first, run_input, "overlap-first")
        b = _finish(cloud, stack, arn, started["execution"], run_input, "overlap-late")
        status_at_end = wait_for_model_stopped(cloud, arn)
        meter = cloud.rekognition.meter(arn)
        job_names = list(cloud.groundtruth.created_job_names)

    # THEN both succeed, each with its own images
    assert a.summary["status"] == "SUCCEEDED", a.summary
    assert b.summary["status"] == "SUCCEEDED", b.summary
    assert _refs(a.inventory) == set(refs)
    assert _refs(b.inventory) == set(started["refs"])
    for result in (a, b):
        assert _refs(result.manifest) | _refs(result.skipped) == _refs(result.inventory)
    # AND both inferred under one start of the model, which neither stopped under the other
    assert meter["start_calls"] == 1, meter
    assert len(meter["intervals"]) == 1 and meter["stop_calls"] == 1, meter
    assert meter["not_ready_calls"] == 0, meter
    assert meter["detect_answered"] == len(refs) + len(started["refs"])
    # the first run to finish inference left the model running; the last one stopped it
    releases = sorted(
        (
            json.loads(e["stateExitedEventDetails"]["output"])["modelRelease"]["stopped"],
            r.summary["execution_arn"],
        )
        for r in (a, b)
        for e in r.history
        if e.get("stateExitedEventDetails", {}).get("name") == "Release Model"
    )
    assert [stopped for stopped, _ in releases] == [False, True], releases
    assert status_at_end == "STOPPED"
    assert not [n for n, k in Counter(job_names).items() if k > 1], job_names
