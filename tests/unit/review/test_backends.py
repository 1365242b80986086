"""The review backends behind one interface (review/backend.py), chosen in one place
(review/backends.py): what each does for the run's steps."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from fixtures_aws import IMAGES_BUCKET, SECRET_ARN, make_config, read_jsonl, stack_settings, write_jsonl
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review import backends
from labeling_loop.review.backend import ReviewBackendName
from labeling_loop.review.groundtruth import backend as groundtruth
from labeling_loop.review.groundtruth.jobs import AVAILABILITY_MIN_S, CONCURRENT_TASKS, JobSettings
from labeling_loop.review.labelstudio import backend as labelstudio
from labeling_loop.review.selection import PlanSummary

LS_STACK = {"LabelStudioUrl": "https://labelstudio.example.com", "LabelStudioTokenSecretArn": SECRET_ARN}


def _plan(wave: int = 1) -> PlanSummary:
    return PlanSummary(task_type="detection", labels=["bird"], images_to_review=3, wave=wave)


def test_the_registry_has_one_backend_per_name_a_run_may_give() -> None:
    # GIVEN the names RunConfig.reviewBackend accepts
    names = set(get_args(ReviewBackendName))
    # THEN each has exactly one implementation, under its own name
    assert set(backends.BACKENDS) == names
    assert all(backends.backend_for(name).name == name for name in names)


def test_an_unknown_backend_name_is_refused_by_name_and_found_as_none() -> None:
    with pytest.raises(KeyError, match=r"'mechanicalturk'.*groundtruth, labelstudio"):
        backends.backend_for("mechanicalturk")
    assert backends.find_backend("mechanicalturk") is None
    assert backends.find_backend(None) is None


def test_a_run_config_gives_the_backend_its_review_backend_names() -> None:
    assert isinstance(make_config().backend, groundtruth.GroundTruthBackend)
    ls = make_config(stack=LS_STACK, reviewBackend="labelstudio")
    assert isinstance(ls.backend, labelstudio.LabelStudioBackend)


def test_ground_truth_writes_the_waves_labeling_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a Ground Truth run whose second-wave plan has images to review
    config, plan = make_config(), _plan(wave=2)
    layout = config.layout().for_wave(2)
    calls: list[tuple[Any, ...]] = []

    def plan_jobs(s3: Any, at: Any, tasks: Any, settings: JobSettings) -> list[dict[str, Any]]:
        calls.append((s3, at, tasks, settings))
        return [{"jobName": "a"}, {"jobName": "b"}]

    monkeypatch.setattr(groundtruth, "plan_jobs", plan_jobs)
    monkeypatch.setattr(groundtruth, "read_jsonl", lambda s3, uri: f"tasks at {uri}")
    # WHEN the backend prepares the review
    extra = config.backend.prepare_review(
        "s3", config, plan, region="us-east-1", verification_lambdas=("p", "c")
    )
    # THEN the wave's tasks become its jobs, with the run's settings, counted in the plan
    settings = JobSettings.from_config(config, plan, region="us-east-1", verification_lambdas=("p", "c"))
    assert calls == [("s3", layout, f"tasks at {layout.review_tasks}", settings)]
    assert plan.jobs == 2
    assert extra == {}


def test_job_settings_take_the_plans_labels_and_the_runs_settings() -> None:
    config = make_config(reviewDeadlineHours=0.001, maxImagesPerJob=7, workersPerObject=3)
    settings = JobSettings.from_config(config, _plan(), region="eu-west-1", verification_lambdas=("p", "c"))
    assert settings == JobSettings(
        task_type="detection",
        labels=["bird"],
        run_id=config.runId,
        job_name_prefix=config.jobNamePrefix,
        max_images_per_job=7,
        workteam_arn=config.workteamArn or "",
        region="eu-west-1",
        verification_pre_lambda_arn="p",
        verification_consolidation_lambda_arn="c",
        workers_per_object=3,
        task_time_limit_s=config.taskTimeLimitSeconds,
        task_availability_s=AVAILABILITY_MIN_S,  # a deadline shorter than Ground Truth's least
        max_concurrent_tasks=CONCURRENT_TASKS,
    )


def test_ground_truth_names_its_jobs_for_reviewers_and_needs_a_workteam_type_the_stack_allows() -> None:
    backend = backends.backend_for("groundtruth")
    layout = make_config().layout()
    stored = {layout.review_jobs: [{"jobName": f"job-{i}"} for i in range(22)]}
    lines = backend.where_to_review(stored.get, layout)
    assert lines[0] == (
        "Ground Truth labeling jobs (22): " + ", ".join(f"job-{i}" for i in range(20)) + " and 2 more"
    )
    assert lines[1] == "Reviewers find them in the private workforce's labeling portal."
    assert backend.where_to_review(lambda _uri: None, layout)[0] == "Ground Truth labeling jobs (0): "
    config = make_config()
    assert backend.check_stack(config, stack_settings()) is None
    vendor_only = stack_settings(WorkteamTypes="vendor-crowd")
    assert backend.check_stack(config, vendor_only) == (
        "workteamArn: a private-crowd workteam; this stack lets runs use vendor-crowd workteams only "
        "(WorkteamTypes)"
    )
    assert (backend.needs_workteam, backend.has_labeling_jobs, backend.billed_per_object) == (
        True,
        True,
        True,
    )
    assert backend.title == "Ground Truth"


@pytest.mark.parametrize("wave", [1, 2])
def test_label_studio_copies_each_waves_unloadable_images(aws: Any, wave: int) -> None:
    # GIVEN a Label Studio run whose review wave has a task Label Studio cannot load by its key
    # (the second wave is the audit gate's: the auto-accepted images it sent to people)
    config = make_config(stack=LS_STACK, reviewBackend="labelstudio")
    layout = config.layout().for_wave(wave)
    odd, plain = "photos/a/../b.jpg", "photos/c.jpg"
    for key in (odd, plain):
        aws.s3.put_object(Bucket=IMAGES_BUCKET, Key=key, Body=b"image")
    write_jsonl(
        aws.s3, layout.review_tasks, [{"source-ref": f"s3://{IMAGES_BUCKET}/{k}"} for k in (odd, plain)]
    )
    kwargs: dict[str, Any] = {"region": "us-east-1", "verification_lambdas": ("p", "c")}
    # WHEN it prepares the wave
    extra = config.backend.prepare_review(aws.s3, config, _plan(wave=wave), **kwargs)
    # THEN that wave's task shows reviewers a copy in the run's folder, holding the same image,
    # and keeps its source-ref (the answers belong to the original); the plain key is left as it is
    assert extra == {"imagesCopiedForReview": 1}
    tasks = {t["source-ref"]: t for t in read_jsonl(aws.s3, layout.review_tasks)}
    copy = S3Uri.parse(tasks[f"s3://{IMAGES_BUCKET}/{odd}"]["reviewImage"])
    assert copy.key.startswith(config.layout().labelstudio_images.key)
    assert aws.s3.get_object(Bucket=copy.bucket, Key=copy.key)["Body"].read() == b"image"
    assert "reviewImage" not in tasks[f"s3://{IMAGES_BUCKET}/{plain}"]


def test_label_studio_records_no_copies_when_every_image_loads(aws: Any) -> None:
    config = make_config(stack=LS_STACK, reviewBackend="labelstudio")
    write_jsonl(aws.s3, config.layout().review_tasks, [{"source-ref": f"s3://{IMAGES_BUCKET}/photos/c.jpg"}])
    kwargs: dict[str, Any] = {"region": "us-east-1", "verification_lambdas": ("p", "c")}
    assert config.backend.prepare_review(aws.s3, config, _plan(), **kwargs) == {}


def test_label_studio_points_at_its_project_and_needs_the_stacks_label_studio() -> None:
    backend = backends.backend_for("labelstudio")
    config = make_config(stack=LS_STACK, reviewBackend="labelstudio")
    layout = config.layout()
    url = "https://labelstudio.example.com/projects/7"
    stored: dict[S3Uri, Any] = {layout.labelstudio_state: {"url": url}}
    assert backend.where_to_review(stored.get, layout) == [f"Label Studio project: {url}"]
    assert backend.where_to_review(lambda _uri: None, layout) == ["Label Studio project: (not found)"]
    assert backend.check_stack(config, stack_settings(**LS_STACK)) is None
    assert backend.check_stack(config, stack_settings()) == (
        "reviewBackend: labelstudio needs the stack's Label Studio, but the stack sets no LabelStudioUrl"
    )
    assert (backend.needs_workteam, backend.has_labeling_jobs, backend.billed_per_object) == (
        False,
        False,
        False,
    )
    assert backend.title == "Label Studio"
