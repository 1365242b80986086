"""Paths production walks and the happy-path suite does not: an execution that ends outside its
Catch (a person stops it, the history limit), processes that die between a call and its record,
AWS's error names under throttling, a Map Run that fails with siblings running, a flaky Label
Studio, buckets Rekognition cannot read, uploads too large to read, run ids that could collide.

Each scenario asserts the endings a user relies on: the model STOPPED (or never started), no
labeling job left in progress, every listed image in the manifest or skipped.jsonl (or the run
failed with a clear cause before review), and the run-state table without dead runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import labelstudio_fixtures
import pytest
from labeling_loop.kernel.s3_uri import S3Uri
from run_checks import (
    assert_every_image_accounted_for,
    assert_failed_clearly,
    assert_model_not_left_running,
    assert_no_job_created_twice,
    entered_states,
)

from localcloud.data.dataset import generate
from localcloud.engine.cloud import LocalCloud
from localcloud.engine.faults import Faults
from localcloud.engine.lambda_runtime import FunctionSpec
from localcloud.runner import (
    IMAGES_PREFIX,
    default_config,
    execute,
    local_cloud,
    prepare,
    run_id_of,
    run_local,
    run_prefix_of,
    run_state_table,
    settle,
    wait_for_model_stopped,
)
from localcloud.services.labelstudio.backend import deploy_parameters
from localcloud.services.labelstudio.outage import OutageProxy
from localcloud.services.labelstudio.reviewers import annotate_project, tasks_of
from localcloud.services.labelstudio.server import LabelStudioServer

pytestmark = pytest.mark.e2e

IMAGES = 12
RUN_INPUT = {"incremental": True}
labelstudio = labelstudio_fixtures.labelstudio
moto_s3_endpoint = labelstudio_fixtures.moto_s3_endpoint


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("production-paths")
    manifest = generate(folder, IMAGES, task="detection", seed=31)
    return folder, manifest


# Helpers ----------------------------------------------------------------------------------------------


def _input(stack: Any, arn: str, **extra: Any) -> dict[str, Any]:
    return {
        "projectVersionArn": arn,
        "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
        **RUN_INPUT,
        **extra,
    }


def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _job_statuses(cloud: LocalCloud) -> dict[str, str]:
    """Every labeling job's status, as DescribeLabelingJob answers now."""
    sagemaker = boto3.client("sagemaker", region_name=cloud.config.region)
    return {
        name: sagemaker.describe_labeling_job(LabelingJobName=name)["LabelingJobStatus"]
        for name in cloud.groundtruth.created_job_names
    }


def assert_nothing_left_behind(cloud: LocalCloud, stack: Any, model_arn: str) -> None:
    """No labeling job in progress, the model not running, no lease held and no run registered
    as active (every execution of the stack has ended by now)."""
    in_progress = {n: s for n, s in _job_statuses(cloud).items() if s in ("Initializing", "InProgress")}
    assert not in_progress, f"labeling jobs left in progress: {in_progress}"
    assert wait_for_model_stopped(cloud, model_arn) == "STOPPED"
    table = run_state_table(cloud, stack)
    assert all(not lease["users"] for lease in table["leases"].values()), table
    assert table["activeRuns"] == [], table


class Gate:
    """Holds every invocation of one function until opened: the test knows a call is in flight."""

    def __init__(self, logical_id: str) -> None:
        self.logical_id = logical_id
        self.opened = threading.Event()
        self.waiting = 0
        self.lock = threading.Lock()

    def __call__(self, spec: FunctionSpec, payload: dict[str, Any], count: int) -> None:
        if spec.logical_id == self.logical_id:
            with self.lock:
                self.waiting += 1
            self.opened.wait(60)

    def holding(self) -> bool:
        with self.lock:
            return self.waiting > 0


def _cleanup_deliveries(cloud: LocalCloud, execution_arn: str) -> list[Any]:
    return [
        d
        for d in cloud.events.delivered("CleanUpEndedRunFunction.")
        if d.event["detail"]["executionArn"] == execution_arn
    ]


# 1. Executions that end outside their Catch -----------------------------------------------------------


def test_an_execution_stopped_during_inference_stops_the_model_in_one_rule_invocation(
    images: tuple[Path, Path],
) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        gate = Gate("DetectLabelsFunction")
        cloud.runtime.fault_hooks.append(gate)
        # GIVEN a run whose inference is in flight
        execution = cloud.start(_input(stack, arn), "stopped-in-inference")
        _until(gate.holding, "a DetectLabels batch in flight")
        assert cloud.rekognition.status(arn) == "RUNNING"
        # WHEN a person presses Stop execution (no Catch runs) and the batches in flight finish
        cloud.stop(execution)
        gate.opened.set()
        settle(cloud)
        # THEN the execution-ended rule ran once, and its one invocation stopped the model
        assert cloud.sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
        [delivery] = _cleanup_deliveries(cloud, execution)
        assert delivery.attempts == 1 and delivery.succeeded, delivery.error
        assert delivery.result["cleanedUp"] is True and delivery.result["modelStopped"] is True
        assert "Clean Up After Failure" not in [
            e["stateEnteredEventDetails"]["name"]
            for e in cloud.history(execution)
            if "stateEnteredEventDetails" in e
        ]
        assert_nothing_left_behind(cloud, stack, arn)
        # AND the next run over the same images starts and stops the model as usual
        cloud.runtime.fault_hooks.remove(gate)
        again = execute(cloud, stack, arn, _input(stack, arn), "after-the-stop", timeout=120)
        again.summary["model_status_at_end"] = wait_for_model_stopped(cloud, arn)
        assert again.summary["status"] == "SUCCEEDED", again.summary
        assert len(again.inventory) == IMAGES, "the stopped run's claims were released"
        assert_every_image_accounted_for(again, IMAGES)
        assert again.model_meter["start_calls"] == 2
        assert_nothing_left_behind(cloud, stack, arn)


def test_an_execution_stopped_while_people_review_stops_its_labeling_jobs(
    images: tuple[Path, Path],
) -> None:
    folder, truth = images
    config = default_config()
    config.groundtruth.job_latency_s = 3600.0  # people take their time
    with local_cloud(config) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        # GIVEN a run waiting for its reviewers (the model already stopped after inference)
        run_input = _input(stack, arn, maxImagesPerJob=5)
        execution = cloud.start(run_input, "stopped-in-review")
        _until(lambda: len(cloud.groundtruth.created_job_names) == 3, "the labeling jobs")
        # WHEN a person stops the execution
        cloud.stop(execution)
        settle(cloud)
        # THEN the rule's one invocation stopped every labeling job of the run and released its claims
        [delivery] = _cleanup_deliveries(cloud, execution)
        assert delivery.succeeded, delivery.error
        assert delivery.result["labelingJobsStopped"] == 3
        assert set(_job_statuses(cloud).values()) == {"Stopped"}
        assert_nothing_left_behind(cloud, stack, arn)
        # AND the next run reviews the same images again, in jobs of its own, and finishes
        cloud.groundtruth.config.job_latency_s = 1.0
        again = execute(cloud, stack, arn, run_input, "after-the-review-stop", timeout=120)
        assert again.summary["status"] == "SUCCEEDED", again.summary
        assert len(again.inventory) == IMAGES
        assert_every_image_accounted_for(again, IMAGES)
        assert_no_job_created_twice(cloud.groundtruth.created_job_names)
        assert_nothing_left_behind(cloud, stack, arn)


def test_an_execution_failed_by_the_history_limit_is_cleaned_up_by_the_rule(
    images: tuple[Path, Path],
) -> None:
    folder, truth = images
    # GIVEN a cloud whose executions keep only 150 history events (AWS: 25,000), and a model that
    # takes 1,500 scaled seconds to start (3 s real), polled every 2 s: the polls cross the limit
    # while it is STARTING
    config = default_config()
    config.history_limit = 150
    config.rekognition.start_latency_s = 3.0
    with local_cloud(config) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        run_input = _input(stack, arn, modelPollSeconds=2, modelStartTimeoutMinutes=60)
        result = execute(cloud, stack, arn, run_input, "history-limit", timeout=120)
        # THEN the execution fails outside any Catch, as on AWS ...
        assert result.summary["status"] == "FAILED"
        assert "maximum number of history events" in (result.summary["cause"] or "")
        assert "Clean Up After Failure" not in entered_states(result)
        # ... and the rule's cleanup released everything; the model, still STARTING, could not be
        # stopped yet (AWS stops running models: docs/aws-facts.md §1.2), so the cleanup waited for
        # it within its invocation and stopped it once it ran, with one call
        [delivery] = result.extra["deliveries"]
        assert delivery.succeeded and delivery.result["cleanedUp"] is True, delivery.error
        assert (delivery.result["modelStopped"], delivery.result["modelStopPending"]) == (True, False)
        assert cloud.rekognition.meter(arn)["stop_calls"] == 1
        assert_nothing_left_behind(cloud, stack, arn)


def test_the_sweep_cleans_up_a_run_whose_ended_event_was_lost(images: tuple[Path, Path]) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        # GIVEN EventBridge losing the ended event (best effort delivery: docs/aws-facts.md §4.10)
        rules, cloud.events.rules = cloud.events.rules, []
        gate = Gate("DetectLabelsFunction")
        cloud.runtime.fault_hooks.append(gate)
        execution = cloud.start(_input(stack, arn), "event-lost")
        _until(gate.holding, "a DetectLabels batch in flight")
        cloud.stop(execution)
        gate.opened.set()
        settle(cloud)
        assert cloud.rekognition.status(arn) == "RUNNING", "nothing cleaned up yet"
        cloud.events.rules = rules
        # WHEN the sweep's schedule comes
        [sweep] = cloud.events.fire("SweepModelsFunction.")
        # THEN it cleaned up after the dead run and stopped the model nobody needs
        assert sweep.error is None, sweep.error
        assert (sweep.result["runsCleanedUp"], sweep.result["modelsStopped"]) == (1, [arn])
        assert_nothing_left_behind(cloud, stack, arn)


class CallGate:
    """Holds one emulated service call (e.g. rekognition.StartProjectVersion) until opened: the test
    acts while the call is on its way to the service."""

    def __init__(self, call: str) -> None:
        self.call = call
        self.opened = threading.Event()
        self.held = threading.Event()

    def before(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if f"{service}.{operation}" == self.call:
            self.held.set()
            self.opened.wait(60)

    def after(self, service: str, operation: str, params: dict[str, Any]) -> None:
        return None


def test_an_execution_stopped_during_the_start_call_leaves_no_model_running(
    images: tuple[Path, Path],
) -> None:
    folder, truth = images
    config = default_config()
    config.rekognition.start_latency_s = 3.0  # long enough for a sweep to find it STARTING
    with local_cloud(config) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        gate = CallGate("rekognition.StartProjectVersion")
        cloud.call_faults.append(gate)
        # GIVEN Acquire Model recorded its stop duty and its StartProjectVersion call is on its way
        execution = cloud.start(_input(stack, arn), "stopped-in-start-call")
        assert gate.held.wait(60), "the start call was never made"
        # WHEN a person stops the execution then: the execution-ended cleanup runs at once
        cloud.stop(execution)
        cloud.events.wait_idle(60)
        [delivery] = _cleanup_deliveries(cloud, execution)
        assert delivery.succeeded, delivery.error
        # THEN it finds the model still STOPPED but does not clear the duty: the start may still come
        assert (delivery.result["modelStopped"], delivery.result["modelStatus"]) == (False, "STOPPED")
        assert delivery.result["modelStopPending"] is True
        assert run_state_table(cloud, stack)["leases"][arn]["startedByWorkflow"] is True
        # WHEN the call reaches Rekognition after all: the model starts with no live holder
        gate.opened.set()
        settle(cloud)
        assert cloud.rekognition.status(arn) == "STARTING"
        # THEN the next sweep cannot stop a starting model (AWS stops running ones), keeps the duty ...
        [first] = cloud.events.fire("SweepModelsFunction.")
        assert first.error is None, first.error
        assert (first.result["modelsStopped"], first.result["modelsLeftRunning"]) == ([], [])
        # ... and the sweep after it stops the model once it runs
        _until(lambda: cloud.rekognition.status(arn) == "RUNNING", "the model running", timeout=30)
        [second] = cloud.events.fire("SweepModelsFunction.")
        assert second.error is None, second.error
        assert second.result["modelsStopped"] == [arn]
        assert_nothing_left_behind(cloud, stack, arn)
        assert cloud.rekognition.meter(arn)["start_calls"] == 1


class HoldWhenRunning:
    """Holds DetectLabels invocations while the model is RUNNING, until opened (a batch is then
    surely inferring with the model)."""

    def __init__(self, cloud: LocalCloud, arn: str) -> None:
        self.cloud, self.arn = cloud, arn
        self.opened = threading.Event()
        self.held = threading.Event()

    def __call__(self, spec: FunctionSpec, payload: dict[str, Any], count: int) -> None:
        if spec.logical_id == "DetectLabelsFunction" and self.cloud.rekognition.status(self.arn) == "RUNNING":
            self.held.set()
            self.opened.wait(60)


def test_a_run_redriven_after_an_abort_takes_its_model_back_and_finishes(images: tuple[Path, Path]) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        # GIVEN a run stopped by a person during inference, cleaned up by the execution-ended rule
        # (model stopped, claims released, run record cleaned up)
        gate = Gate("DetectLabelsFunction")
        cloud.runtime.fault_hooks.append(gate)
        execution = cloud.start(_input(stack, arn), "redriven")
        _until(gate.holding, "a DetectLabels batch in flight")
        cloud.stop(execution)
        gate.opened.set()
        settle(cloud)
        cloud.runtime.fault_hooks.remove(gate)
        [cleanup] = _cleanup_deliveries(cloud, execution)
        assert cleanup.succeeded and cleanup.result["modelStopped"] is True, cleanup.error
        assert run_state_table(cloud, stack)["activeRuns"] == []
        # WHEN a person redrives it (Step Functions continues the Map Run: its batches resume)
        during = HoldWhenRunning(cloud, arn)
        cloud.runtime.fault_hooks.append(during)
        cloud.redrive(execution)
        # THEN the resumed batches take the run back and start the model again, holding it: a sweep
        # while they infer prunes nothing and stops nothing under the live run
        assert during.held.wait(60), "the redriven run never got its model running"
        table = run_state_table(cloud, stack)
        assert table["leases"][arn]["users"] == [execution] and table["activeRuns"] == [execution]
        [sweep] = cloud.events.fire("SweepModelsFunction.")
        assert sweep.error is None, sweep.error
        assert (sweep.result["modelsStopped"], sweep.result["runsCleanedUp"]) == ([], 0)
        assert cloud.rekognition.status(arn) == "RUNNING"
        during.opened.set()
        outcome = cloud.wait(execution, 120)
        settle(cloud)
        # AND the redriven run finishes: every image accounted for, its model stopped by its release
        assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
        described = cloud.sfn.describe_execution(executionArn=execution)
        assert described["redriveCount"] == 1
        prefix = run_prefix_of(stack, run_id_of("redriven", execution))
        manifest = {line["source-ref"] for line in _jsonl(cloud, prefix + "output.manifest")}
        skipped = {line["source-ref"] for line in _jsonl(cloud, prefix + "skipped.jsonl")}
        assert len(manifest) + len(skipped) == IMAGES and not manifest & skipped
        released = [
            json.loads(e["stateExitedEventDetails"]["output"])["modelRelease"]
            for e in cloud.history(execution)
            if e.get("stateExitedEventDetails", {}).get("name") == "Release Model"
        ]
        assert [r["stopped"] for r in released] == [True]
        meter = cloud.rekognition.meter(arn)
        assert (meter["start_calls"], meter["status"]) == (2, wait_for_model_stopped(cloud, arn))
        assert len(meter["intervals"]) == 2 and all(end is not None for _, end in meter["intervals"])
        assert_nothing_left_behind(cloud, stack, arn)


# 2. Processes that die between a call and its record --------------------------------------------------


@pytest.mark.parametrize(
    "crash",
    [
        {"crashAfter": ["rekognition.StartProjectVersion"]},
        {"crashBefore": ["rekognition.StopProjectVersion"]},
        {"crashAfter": ["rekognition.StopProjectVersion"]},
    ],
    ids=["after-start-before-record", "after-release-before-stop", "after-stop-before-record"],
)
def test_a_process_dying_between_a_model_call_and_its_record_still_stops_the_model(
    images: tuple[Path, Path], crash: dict[str, list[str]]
) -> None:
    folder, truth = images
    with local_cloud(default_config(), Faults.from_dict({"services": crash})) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        result = execute(cloud, stack, arn, _input(stack, arn), "process-dies", timeout=120)
        # THEN the crash happened, the Task's retry finished the job, and the run succeeded
        assert sum(cloud.call_faults[0].injected.values()) == 1
        assert result.summary["status"] == "SUCCEEDED", result.summary
        assert result.lambda_invocations["ModelControlFunction"] >= 3  # acquire, release + the retry
        assert_every_image_accounted_for(result, IMAGES)
        assert_nothing_left_behind(cloud, stack, arn)


# 3. AWS's error names, Map Runs that fail -------------------------------------------------------------


def test_a_throttling_storm_on_labeling_job_polls_is_retried(images: tuple[Path, Path]) -> None:
    # GIVEN SageMaker throttling 8 DescribeLabelingJob calls in a row. An aws-sdk Task makes one
    # call per attempt, and SageMaker's model declares no ThrottlingException: each throttle reaches
    # the state machine as SageMaker.SageMakerException (docs/aws-facts.md §4.4), and only a Retry
    # naming that error (8 retries, about 15 minutes on AWS) keeps the poller alive.
    faults = {"services": {"throttle": {"sagemaker.DescribeLabelingJob": [0, 8]}}}
    folder, truth = images
    with local_cloud(default_config(), Faults.from_dict(faults)) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        result = execute(cloud, stack, arn, _input(stack, arn), "throttled-polls", timeout=120)
        assert cloud.call_faults[0].injected == {"throttled": 8}
        assert result.summary["status"] == "SUCCEEDED", result.summary
        assert_every_image_accounted_for(result, IMAGES)
        assert_nothing_left_behind(cloud, stack, arn)


def test_a_failed_map_run_stops_the_sibling_labeling_jobs(images: tuple[Path, Path]) -> None:
    folder, truth = images
    config = default_config()
    config.groundtruth.job_latency_s = 3600.0  # the siblings are still being reviewed
    # GIVEN the polls of one of three labeling jobs throttled longer than its poller retries
    throttled = {"sagemaker.DescribeLabelingJob": {"pattern": '-001"', "calls": 9}}
    faults = Faults.from_dict({"services": {"throttleMatching": throttled}})
    with local_cloud(config, faults) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        result = execute(cloud, stack, arn, _input(stack, arn, maxImagesPerJob=5), "map-fails", timeout=180)
        # THEN the Map Run fails at once (its running pollers aborted, as on AWS), the Catch cleans
        # up, and the cleanup stops the siblings' jobs that nobody polls any more
        assert_failed_clearly(result, "StatesExceedToleratedFailureThresholdError")
        assert len(cloud.groundtruth.created_job_names) == 3
        assert_nothing_left_behind(cloud, stack, arn)
        [cleanup] = [
            json.loads(e["stateExitedEventDetails"]["output"])["cleanup"]
            for e in result.history
            if e.get("stateExitedEventDetails", {}).get("name") == "Clean Up After Failure"
        ]
        assert cleanup["labelingJobsStopped"] >= 2, cleanup


# 4. Label Studio: outages and skipped tasks ---------------------------------------------------------


@pytest.mark.labelstudio
def test_a_labelstudio_outage_of_several_polls_is_survived(
    images: tuple[Path, Path], labelstudio: LabelStudioServer
) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud, OutageProxy(labelstudio.url) as proxy:
        parameters = {**deploy_parameters(cloud, labelstudio), "LabelStudioUrl": proxy.url}
        stack, arn, _ = prepare(cloud, folder, truth, parameters=parameters)
        run_input = _input(
            stack, arn, reviewBackend="labelstudio", reviewPollSeconds=60, reviewDeadlineHours=24
        )
        execution = cloud.start(run_input, "ls-outage")
        state_uri = run_prefix_of(stack, run_id_of("ls-outage", execution)) + "review/labelstudio.json"
        _until(lambda: _exists(cloud, state_uri), "the run's Label Studio project", timeout=120)
        project = int(_read(cloud, state_uri)["projectId"])
        # WHEN Label Studio goes away for several polls (502 from its load balancer) ...
        proxy.down()
        polls = lambda: cloud.runtime.invocations.get("LabelStudioReviewFunction", 0)  # noqa: E731
        before = polls()
        _until(lambda: polls() >= before + 3, "three polls during the outage", timeout=120)
        # ... while reviewers answer every task (they reach the server; the workflow does not) ...
        stats = annotate_project(labelstudio_client(labelstudio), project, truth_of(cloud))
        _until(lambda: polls() >= before + 5, "two more polls during the outage", timeout=120)
        proxy.up()
        outcome = cloud.wait(execution, 120)
        settle(cloud)
        # THEN the run waited it out and collected every answer
        assert proxy.counters.refused >= 5
        assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
        assert stats.annotated == IMAGES
        assert_nothing_left_behind(cloud, stack, arn)


@pytest.mark.labelstudio
def test_a_skipped_task_does_not_hold_the_run(
    images: tuple[Path, Path], labelstudio: LabelStudioServer
) -> None:
    # GIVEN reviewers who press Skip on a quarter of the tasks and a deadline of 240 h (the run
    # would wait 30 minutes on the test's clock if skipped tasks did not count as answered)
    result = run_local(
        *images,
        run_input={**RUN_INPUT, "reviewBackend": "labelstudio", "reviewDeadlineHours": 240},
        labelstudio=labelstudio,
        skipped_fraction=0.25,
        timeout=120,
    )
    assert result.summary["status"] == "SUCCEEDED", result.summary
    stats = result.extra["reviewers"]
    assert stats.skipped >= 1
    # AND each skipped image is reported as not reviewed, with the reason
    not_reviewed = {r["source-ref"]: r for r in result.skipped if r["reason"] == "not-reviewed"}
    assert set(stats.skipped_refs) <= set(not_reviewed)
    assert all("skip" in not_reviewed[ref]["detail"].lower() for ref in stats.skipped_refs)
    assert_every_image_accounted_for(result, IMAGES)
    assert_model_not_left_running(result)


def _rectangle(**value: Any) -> dict[str, Any]:
    """A submitted rectangle with the given `value` fields (as a broken client or an edit might)."""
    return {
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": 640,
        "original_height": 480,
        "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["circle"], **value},
    }


# Answers Label Studio 1.23 stores as given (measured; it refuses only bodies that are not JSON,
# such as 1e400 or Infinity, which the unit tests of the converter cover).
MALFORMED_ANSWERS = {
    "x-is-text": [_rectangle(x="nan")],
    "x-out-of-range": [_rectangle(x=-1e300)],
    "y-missing": [
        {**_rectangle(), "value": {"x": 1, "width": 2, "height": 3, "rectanglelabels": ["circle"]}}
    ],
    "labels-nested": [_rectangle(rectanglelabels=[["circle"]])],
    "labels-a-dict": [_rectangle(rectanglelabels={"0": "circle"})],
}


@pytest.mark.labelstudio
def test_malformed_labelstudio_answers_and_deleted_tasks_are_each_accounted_for(
    images: tuple[Path, Path], labelstudio: LabelStudioServer
) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth, parameters=deploy_parameters(cloud, labelstudio))
        run_input = _input(
            stack, arn, reviewBackend="labelstudio", reviewPollSeconds=60, reviewDeadlineHours=24
        )
        execution = cloud.start(run_input, "malformed-answers")
        state_uri = (
            run_prefix_of(stack, run_id_of("malformed-answers", execution)) + "review/labelstudio.json"
        )
        _until(lambda: _exists(cloud, state_uri), "the run's Label Studio project", timeout=120)
        client = labelstudio_client(labelstudio)
        project = int(_read(cloud, state_uri)["projectId"])
        tasks = sorted(tasks_of(client, project), key=lambda t: t["id"])
        # GIVEN four answers no reviewer's UI would send, and one task deleted in Label Studio ...
        malformed = dict(zip(MALFORMED_ANSWERS, tasks, strict=False))
        for case, task in malformed.items():
            client.post(f"/api/tasks/{task['id']}/annotations/", {"result": MALFORMED_ANSWERS[case]})
        deleted = tasks[len(MALFORMED_ANSWERS)]
        client.request("DELETE", f"/api/tasks/{deleted['id']}/")
        # ... and proper answers for the rest
        left_alone = frozenset(t["id"] for t in [*malformed.values(), deleted])
        annotate_project(client, project, truth_of(cloud), leave_alone=left_alone)
        outcome = cloud.wait(execution, 120)
        settle(cloud)
        result_refs = {t["data"]["source_ref"]: case for case, t in malformed.items()}
        prefix = run_prefix_of(stack, run_id_of("malformed-answers", execution))
        skipped = {r["source-ref"]: r for r in _jsonl(cloud, prefix + "skipped.jsonl")}
        manifest = {line["source-ref"] for line in _jsonl(cloud, prefix + "output.manifest")}
    # THEN the run succeeds; each malformed answer is that image's skip (invalid-annotation, or
    # invalid-box for a box wholly off the image), the deleted task's image is not-reviewed, and
    # every other image is in the manifest
    assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
    for ref, case in result_refs.items():
        expected = "invalid-box" if case == "x-out-of-range" else "invalid-annotation"
        assert skipped[ref]["reason"] == expected, (case, skipped.get(ref))
    assert skipped[deleted["data"]["source_ref"]]["reason"] == "not-reviewed"
    assert len(manifest) + len(skipped) == IMAGES and not manifest & set(skipped)


# 5. Images Rekognition cannot read, uploads too large to read ----------------------------------------


def test_an_unreadable_images_bucket_fails_the_run_naming_it(images: tuple[Path, Path]) -> None:
    result = run_local(*images, faults=Faults.from_dict({"images": {"unreadable": True}}), timeout=120)
    # THEN the run fails before review with a cause that names the bucket, the region and the fix
    assert_failed_clearly(result, "InferenceFailedError", result.stack.images_bucket, "us-east-1", "kms")
    assert result.summary["labeling_jobs"] == []
    assert_model_not_left_running(result)


def test_a_2_gib_upload_is_skipped_without_being_read(images: tuple[Path, Path]) -> None:
    result = run_local(*images, faults=Faults.from_dict({"images": {"huge": 1}}), timeout=120)
    assert result.summary["status"] == "SUCCEEDED", result.summary
    [(huge, reads)] = result.extra["huge_objects"].items()
    assert reads == 0, "not a byte of the 2 GiB object was downloaded"
    [record] = [r for r in result.skipped if r["source-ref"] == huge]
    assert record["reason"] == "image-too-large"
    assert_every_image_accounted_for(result, IMAGES + 1)


def test_a_model_someone_else_scaled_out_is_used_at_the_capacity_in_service(
    images: tuple[Path, Path],
) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack = cloud.deploy()
        cloud.upload_folder(folder, IMAGES_PREFIX)
        from localcloud.data.truth import load_truth, manifest_lines

        cloud.add_truth(load_truth(manifest_lines(truth), f"s3://{stack.images_bucket}/{IMAGES_PREFIX}"))
        # GIVEN a model someone started with auto-scaling (Min 1, Max 4), with 3 units in service
        arn = cloud.add_model(status="RUNNING", units=(1, 4, 3))
        result = execute(cloud, stack, arn, _input(stack, arn), "scaled", timeout=120)
    # THEN the run planned its fan-out for the 3 units CloudWatch reports, not for Min or Max: its
    # batch starts from 3 units' share of the rate prior (inference.plan, 5 calls/s per unit)
    [model] = [
        json.loads(e["stateExitedEventDetails"]["output"])["model"]
        for e in result.history
        if e.get("stateExitedEventDetails", {}).get("name") == "Acquire Model"
    ]
    assert (model["inferenceUnits"], model["startedByRun"]) == (3, False)
    assert [batch["callsPerSecond"] for batch in model["batches"]] == [15.0]
    assert result.summary["status"] == "SUCCEEDED", result.summary
    # AND the model it did not start is left running
    assert result.model_meter["start_calls"] == 0 and result.model_meter["stop_calls"] == 0


# 6. Run ids that could collide ------------------------------------------------------------------------


def test_two_execution_names_that_clean_to_the_same_id_share_nothing(images: tuple[Path, Path]) -> None:
    folder, truth = images
    with local_cloud(default_config()) as cloud:
        stack, arn, _ = prepare(cloud, folder, truth)
        first = execute(cloud, stack, arn, _input(stack, arn, incremental=False), "Run_1", timeout=120)
        jobs_first = set(cloud.groundtruth.created_job_names)
        second = execute(cloud, stack, arn, _input(stack, arn, incremental=False), "run.1", timeout=120)
        jobs_second = set(cloud.groundtruth.created_job_names) - jobs_first
    for result in (first, second):
        assert result.summary["status"] == "SUCCEEDED", result.summary
        assert_every_image_accounted_for(result, IMAGES)
    # THEN each has its own run folder and its own labeling jobs
    assert first.run_prefix != second.run_prefix
    assert jobs_first and jobs_second and not jobs_first & jobs_second


# Small readers ---------------------------------------------------------------------------------------


def _exists(cloud: LocalCloud, uri: str) -> bool:
    location = S3Uri.parse(uri)
    return "Contents" in cloud.s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key)


def _jsonl(cloud: LocalCloud, uri: str) -> list[dict[str, Any]]:
    from labeling_loop.kernel.jsonl import read_jsonl

    return list(read_jsonl(cloud.s3, S3Uri.parse(uri), missing_ok=True))


def _read(cloud: LocalCloud, uri: str) -> dict[str, Any]:
    from labeling_loop.kernel.jsonl import read_json

    return dict(read_json(cloud.s3, S3Uri.parse(uri)))


def labelstudio_client(server: LabelStudioServer) -> Any:
    from labeling_loop.review.labelstudio.client import LabelStudioClient

    return LabelStudioClient(server.url, server.token)


def truth_of(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
    from localcloud.services.labelstudio.backend import truth_for_reviewers

    return truth_for_reviewers(cloud.truth)
