"""FinishSettings built from a run's config, plan and what its earlier states recorded in S3, and
the review's duration read from when the plan was written (finishing/recorded.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from fixtures_aws import make_config
from labeling_loop.finishing import recorded
from labeling_loop.finishing.settings import FinishSettings, RunTotals
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.selection import PlanSummary

NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
FIRST = PlanSummary(
    "detection", ["cat", "dog"], images_to_review=30, images_auto_accepted=50, images_audited=10,
    by_priority={"uncertain": 20, "audit": 10},
)  # fmt: skip


def test_a_first_wave_run_without_a_recorded_gate_holds_the_auto_accepted_images(
    aws: SimpleNamespace,
) -> None:
    # GIVEN a run whose gate decision and labeling jobs were never recorded
    config = make_config(jobNamePrefix="lab", minConfidence=40.0)
    # WHEN its settings are built
    settings = FinishSettings.from_run(
        aws.s3, config, FIRST, RunTotals(images_listed=90, batches=3, model_usage={"hours": 1}), NOW
    )
    # THEN the plan gives the task type, labels and strata, and nothing auto-accepted ships unchecked
    assert (settings.task_type, settings.labels, settings.images_listed) == ("detection", ("cat", "dog"), 90)
    assert settings.layout == config.layout() and settings.run_id == config.runId
    assert settings.job_name == f"lab-{config.runId}" and settings.labeling_jobs == ()
    assert settings.backend == config.reviewBackend
    assert settings.creation_date == "2026-03-04T05:06:07.890000"
    context = settings.context
    assert context.gate == {
        "decision": "defer",
        "reason": "no audit gate decision was recorded (review/gate.json)",
    }
    assert (context.images_to_review, context.images_audited, context.images_auto_accepted) == (30, 10, 50)
    assert context.images_second_wave == 0 and context.reviewed_by_priority == {"uncertain": 20, "audit": 10}
    assert (context.min_confidence, context.batches, context.model_usage) == (40.0, 3, {"hours": 1})
    assert context.order == str(config.layout().review_order)


def test_a_second_wave_run_reads_the_first_waves_plan_and_both_waves_jobs(aws: SimpleNamespace) -> None:
    # GIVEN a run whose gate sent 20 auto-accepted images to people in a second wave
    config = make_config()
    layout = config.layout()
    second = PlanSummary("detection", ["cat", "dog"], images_to_review=20, wave=2)
    write_json(aws.s3, layout.review_plan, FIRST.to_dict())
    write_json(aws.s3, layout.for_wave(2).review_plan, second.to_dict())
    write_json(aws.s3, layout.review_jobs, [{"jobName": "job-1"}])
    write_json(aws.s3, layout.for_wave(2).review_jobs, [{"jobName": "job-2"}])
    write_json(aws.s3, layout.gate, {"decision": "review", "reason": "too many wrong"})
    # WHEN the settings are built from the plan the state machine carries (the second wave's)
    settings = FinishSettings.from_run(aws.s3, config, second, RunTotals(images_listed=90), NOW)
    # THEN the strata are the first wave's, the second wave is counted apart, and both waves' jobs listed
    context = settings.context
    assert (context.images_to_review, context.images_auto_accepted, context.images_second_wave) == (
        30,
        50,
        20,
    )
    assert context.reviewed_by_priority == {"uncertain": 20, "audit": 10, "second-wave": 20}
    assert context.gate_decision == "review" and settings.labeling_jobs == ("job-1", "job-2")


def test_a_gate_that_sent_images_to_people_without_a_second_plan_counts_them_all(
    aws: SimpleNamespace,
) -> None:
    config = make_config()
    write_json(aws.s3, config.layout().gate, {"decision": "review", "reason": ""})
    settings = FinishSettings.from_run(aws.s3, config, FIRST, RunTotals(images_listed=90), NOW)
    assert settings.context.images_second_wave == FIRST.images_auto_accepted


def test_an_unknown_task_type_is_refused() -> None:
    layout = RunLayout.for_run(S3Uri("out", "runs"), "run1")
    with pytest.raises(ValueError, match="unknown task type 'segmentation'"):
        FinishSettings(layout, "segmentation", ("cat",), 1, "run1", "groundtruth", (), "job", NOW)


def test_review_hours_run_from_the_plan_being_written(aws: SimpleNamespace) -> None:
    # GIVEN a run whose review plan was written
    layout = make_config().layout()
    write_json(aws.s3, layout.review_plan, FIRST.to_dict())
    written = aws.s3.head_object(Bucket=layout.review_plan.bucket, Key=layout.review_plan.key)["LastModified"]
    # THEN the people's time is from then to now, in hours
    assert recorded.review_hours(aws.s3, layout, FIRST, written + timedelta(minutes=90)) == 1.5
    # AND a clock behind the plan's gives no negative time
    assert recorded.review_hours(aws.s3, layout, FIRST, written - timedelta(minutes=5)) == 0.0


def test_no_review_hours_without_a_review_or_its_plan(aws: SimpleNamespace) -> None:
    layout = make_config().layout()
    nothing_to_review = PlanSummary("detection", ["cat"], images_auto_accepted=5)
    assert recorded.review_hours(aws.s3, layout, nothing_to_review, NOW) is None
    assert recorded.review_hours(aws.s3, layout, FIRST, NOW) is None  # the plan was never written
