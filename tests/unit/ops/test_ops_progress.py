"""`follow`'s display, rendered from recorded executions (tests/unit/ops/fixtures, recorded in the
local cloud by record_fixtures.py) cut at the moment a user would look: inference half done, review
waiting, failed with cleanup, done. No clock is read: `now` is given."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fixtures_aws import make_config
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.run_config import state_payload
from rich.console import Console

from labeling_ops.fetch import batch_progress
from labeling_ops.progress import INFERENCE_MAP, REVIEW_MAP, ReviewJob, progress, timestamp
from labeling_ops.render import progress_lines, progress_panel

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def cut(run: dict[str, Any], map_state: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The execution as it was just after `map_state` started its Map Run: still RUNNING."""
    events = run["events"]
    entered = next(
        i for i, e in enumerate(events) if e.get("stateEnteredEventDetails", {}).get("name") == map_state
    )
    started = next(i for i in range(entered, len(events)) if events[i]["type"] == "MapRunStarted")
    description = {k: v for k, v in run["description"].items() if k not in ("stopDate", "output")}
    description["status"] = "RUNNING"
    return description, events[: started + 1]


def text_of(renderable: Any) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_inference_half_done() -> None:
    run = recorded("groundtruth_run.json")
    description, events = cut(run, INFERENCE_MAP)
    map_run = copy.deepcopy(run["mapRuns"][INFERENCE_MAP])
    map_run["itemCounts"].update({"succeeded": 1, "running": 2, "pending": 0, "total": 3})
    now = timestamp(description["startDate"]) + timedelta(seconds=95)

    shown = progress(description, events, now=now, map_runs={INFERENCE_MAP: map_run}, model_status="RUNNING")

    assert shown.status == "RUNNING"
    assert shown.phase == "inference"
    # 30 inference units: three planned batches of 8 images (one per 10 units, inference.plan)
    assert (shown.batches_done, shown.batches_total, shown.batch_sizes) == (1, 3, [8, 8, 8])
    assert (shown.images_inferred, shown.images_to_infer, shown.images_listed) == (8, 24, 24)
    assert shown.model_started_by_run is True
    assert shown.elapsed_seconds == 95
    lines = dict(progress_lines(shown))
    assert lines["phase"] == "inference (Detect Labels)"
    assert lines["inference"] == "1 / 3 batches, images inferred 8 / 24"
    assert lines["model"] == "RUNNING, started by this run"
    assert lines["elapsed"] == "1 min 35 s"
    assert "review" not in lines
    panel = text_of(progress_panel(shown))
    assert "run recorded-run" in panel and "images inferred 8 / 24" in panel


def test_images_inferred_move_while_the_batches_run() -> None:
    # GIVEN inference with no batch finished yet, and the batches' progress objects
    run = recorded("groundtruth_run.json")
    description, events = cut(run, INFERENCE_MAP)
    map_run = copy.deepcopy(run["mapRuns"][INFERENCE_MAP])
    map_run["itemCounts"].update({"succeeded": 0, "running": 3, "pending": 0, "total": 3})
    now = timestamp(description["startDate"]) + timedelta(seconds=60)
    objects = [
        {"batchId": 0, "count": 8, "done": 5, "finished": False},
        {"batchId": 1, "count": 8, "done": 3, "finished": False},
    ]  # the third batch has not written yet

    # WHEN follow reads them
    shown = progress(description, events, now=now, map_runs={INFERENCE_MAP: map_run}, batch_progress=objects)

    # THEN the images count moves before any batch ends (the Map Run alone would say 0)
    assert shown.images_inferred == 8
    assert dict(progress_lines(shown))["inference"] == "0 / 3 batches, images inferred 8 / 24"
    without = progress(description, events, now=now, map_runs={INFERENCE_MAP: map_run})
    assert without.images_inferred == 0


def test_review_waiting_on_people() -> None:
    run = recorded("groundtruth_run.json")
    description, events = cut(run, REVIEW_MAP)
    now = timestamp(description["startDate"]) + timedelta(hours=5)
    jobs = [ReviewJob("lab-recorded-run-det-000", "InProgress", labeled=10, unlabeled=14, failed=0)]

    shown = progress(
        description,
        events,
        now=now,
        map_runs={INFERENCE_MAP: run["mapRuns"][INFERENCE_MAP]},
        model_status="STOPPED",
        review_jobs=jobs,
    )

    assert shown.phase == "human review (Ground Truth)"
    assert (shown.review_done, shown.review_total) == (10, 24)
    assert shown.images_inferred == 24
    # the model's time ends when Release Model stopped it, however long people take
    assert shown.model_stopped_by_run is True
    assert shown.model_seconds is not None and shown.model_seconds < 60
    lines = dict(progress_lines(shown))
    assert lines["review"] == "Ground Truth: 10 / 24 images reviewed"
    assert lines["  lab-recorded-run-det-000"] == "InProgress: 10 labeled, 14 waiting, 0 failed"
    assert lines["model"] == "STOPPED, started by this run, stopped by this run"
    assert lines["elapsed"] == "5 h 00 min"
    assert lines["model time"].endswith("IU-seconds billed so far")


def test_failed_with_cleanup() -> None:
    run = recorded("failed_run.json")
    description = run["description"]

    shown = progress(
        description,
        run["events"],
        now=timestamp(description["stopDate"]) + timedelta(days=3),
        map_runs=run["mapRuns"],
        model_status="STOPPED",
    )

    assert shown.status == "FAILED"
    assert shown.phase == "failed"
    assert shown.error == "StatesExceedToleratedFailureThresholdError"
    assert shown.batches_failed == 3 and shown.batches_done == 0
    assert shown.cleanup is not None and shown.cleanup["modelStopped"] is True
    # elapsed stops at the end of the execution, whenever one looks
    assert (
        shown.elapsed_seconds
        == (timestamp(description["stopDate"]) - timestamp(description["startDate"])).total_seconds()
    )
    lines = dict(progress_lines(shown))
    assert lines["cleanup"] == "ran: model stopped"
    assert lines["error"].startswith("StatesExceedToleratedFailureThresholdError: States.ExceedTolerated")
    assert "3 batches failed" in lines["inference"]
    assert "FAILED" in text_of(progress_panel(shown))


def test_a_cleanup_that_could_not_stop_a_starting_model_says_so() -> None:
    run = recorded("failed_run.json")
    description = run["description"]
    shown = progress(
        description, run["events"], now=timestamp(description["stopDate"]), map_runs=run["mapRuns"]
    )
    # GIVEN a cleanup that found the model STARTING (AWS stops running models only)
    shown.cleanup = {**(shown.cleanup or {}), "modelStopped": False, "modelStopPending": True}
    # THEN the user is not told there was nothing to stop
    assert dict(progress_lines(shown))["cleanup"] == (
        "ran: the model could not be stopped yet (starting); it is stopped once it runs"
    )


def test_succeeded_shows_the_result() -> None:
    run = recorded("groundtruth_run.json")
    description = run["description"]

    shown = progress(
        description, run["events"], now=timestamp(description["stopDate"]), map_runs=run["mapRuns"]
    )

    assert shown.phase == "done"
    assert shown.result is not None
    lines = dict(progress_lines(shown))
    assert lines["result"] == "24 images in the manifest, 0 skipped, 0 deferred to the next run"
    assert lines["manifest"].endswith("/output.manifest")
    assert lines["review"] == "Ground Truth: 24 / 24 images reviewed"


def _event(event_id: int, kind: str, seconds: int, **details: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "timestamp": f"2026-01-01T00:{seconds // 60:02d}:{seconds % 60:02d}Z",
        **details,
    }


def _exited(event_id: int, name: str, seconds: int, output: dict[str, Any]) -> dict[str, Any]:
    return _event(
        event_id,
        "TaskStateExited",
        seconds,
        stateExitedEventDetails={"name": name, "output": json.dumps(output)},
    )


@pytest.mark.parametrize(("annotated", "expected"), [(0, "0 / 12"), (7, "7 / 12")])
def test_label_studio_progress_comes_from_the_last_check(annotated: int, expected: str) -> None:
    config = {"reviewBackend": "labelstudio", "projectVersionArn": None}
    state = {"config": config, "plan": {"imagesToReview": 12}}
    events = [
        _event(1, "ExecutionStarted", 0),
        _exited(2, "Plan Review", 10, state),
        _exited(
            3,
            "Check Label Studio Review",
            20,
            {**state, "reviewProgress": {"total": 12, "annotated": annotated}},
        ),
        _event(
            4, "WaitStateEntered", 21, stateEnteredEventDetails={"name": "Wait For Label Studio Reviewers"}
        ),
    ]
    description = {"name": "ls-run", "status": "RUNNING", "startDate": "2026-01-01T00:00:00Z"}

    shown = progress(description, events, now=timestamp("2026-01-01T00:01:00Z"))

    assert shown.phase == "human review (Label Studio)"
    assert dict(progress_lines(shown))["review"] == f"Label Studio: {expected} images reviewed"


def test_follow_reads_the_progress_objects_where_the_batches_write_them(aws: Any) -> None:
    # GIVEN a run whose batches 1 and 2 wrote their progress objects (where RunLayout puts them)
    config = make_config()
    layout = config.layout()
    for batch_id, done in ((1, 8), (2, 3)):
        write_json(aws.s3, layout.batch_progress(batch_id), {"batchId": batch_id, "done": done, "count": 8})
    # WHEN follow reads them from the run's prefix, as the execution's config gives it
    documents = batch_progress(aws.s3, state_payload(config)["runPrefix"])
    # THEN it finds both
    assert sorted((d["batchId"], d["done"]) for d in documents) == [(1, 8), (2, 3)]
