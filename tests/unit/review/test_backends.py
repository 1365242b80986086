"""The review backends behind one interface (review/backend.py), chosen in one place
(review/backends.py): what each does for the run's steps."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from fixtures_aws import IMAGES_BUCKET, SECRET_ARN, make_config, read_jsonl, stack_settings, write_jsonl
from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.kernel.settings import LabelStudioReviewSettings, load
from labeling_loop.review import backends
from labeling_loop.review.backend import (
    CollectedReview,
    ReviewBackend,
    ReviewBackendName,
    ReviewServices,
    StopResult,
)
from labeling_loop.review.groundtruth import backend as groundtruth
from labeling_loop.review.groundtruth.jobs import AVAILABILITY_MIN_S, CONCURRENT_TASKS, JobSettings
from labeling_loop.review.labelstudio import backend as labelstudio
from labeling_loop.review.labelstudio import project
from labeling_loop.review.labelstudio.client import LabelStudioClient
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


INTERFACE_FACTS = ("name", "title", "has_labeling_jobs", "needs_workteam", "billed_per_object", "self_hosted")


@pytest.mark.parametrize("name", sorted(backends.BACKENDS))
def test_each_backend_implements_the_whole_interface_itself(name: str) -> None:
    # GIVEN a registered backend
    backend = backends.backend_for(name)
    cls = type(backend)
    # THEN it is a ReviewBackend with no step left abstract, each step its own (not inherited)
    assert isinstance(backend, ReviewBackend) and not inspect.isabstract(cls)
    steps = ReviewBackend.__abstractmethods__
    assert {"create_review", "review_progress", "collect_review", "stop_review", "preflight"} <= steps
    assert all(step in vars(cls) for step in steps), sorted(steps - set(vars(cls)))
    # AND it states every fact the run's steps read about a backend, with the interface's signatures
    assert all(fact in vars(cls) for fact in INTERFACE_FACTS)
    for step in steps:
        ours, interface = (
            inspect.signature(getattr(cls, step)),
            inspect.signature(getattr(ReviewBackend, step)),
        )
        assert list(ours.parameters) == list(interface.parameters), step


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
    assert backend.self_hosted is False
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
    assert backend.self_hosted is True
    assert backend.title == "Label Studio"


# The steps after planning: preflight, create, progress, collect, stop --------------------------------


def test_ground_truth_collects_its_jobs_and_keeps_their_failures_out_of_the_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a Ground Truth wave whose jobs list names two jobs, one of them failed
    config = make_config()
    layout = config.layout().for_wave(2)
    jobs = [{"jobName": "a"}, {"jobName": "b"}]
    calls: list[tuple[Any, ...]] = []
    failed = [{"jobName": "b", "failureReason": "workteam gone"}]

    def collect(s3: Any, sagemaker: Any, at: Any, listed: Any) -> dict[str, Any]:
        calls.append((s3, sagemaker, at, listed))
        return {"reviewed": 5, "skipped": 2, "jobs": {"a": "Completed", "b": "Failed"}, "failedJobs": failed}

    monkeypatch.setattr(groundtruth, "collect", collect)
    monkeypatch.setattr(groundtruth, "read_json", lambda s3, uri: jobs if uri == layout.review_jobs else None)
    # WHEN the backend collects the wave
    collected = config.backend.collect_review(ReviewServices("s3", sagemaker="sm"), layout)
    # THEN every job of the wave's list is read with the run's clients
    assert calls == [("s3", "sm", layout, jobs)]
    # AND the step's output counts (the history stays small), the failures go to the log
    assert collected == CollectedReview({"reviewed": 5, "skipped": 2, "failedJobs": 1}, failed=failed)


def test_ground_truth_stops_the_runs_jobs_and_leaves_creating_and_polling_to_the_definition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config()
    backend, services = config.backend, ReviewServices("s3", sagemaker="sm")
    stopped = StopResult(stopped=["a"], unstoppable={"b": "ThrottlingException: slow down"})
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(groundtruth, "stop_run_jobs", lambda *args: calls.append(args) or stopped)
    # WHEN a run ends uncollected THEN its labeling jobs are stopped, and what was found reported
    assert backend.stop_review(services, config.layout()) is stopped
    assert calls == [("s3", "sm", config.layout())]
    assert stopped.to_dict() == {"labelingJobsStopped": 1, "labelingJobsNotStopped": 1}
    # AND nothing needs reaching before the model starts
    assert backend.preflight(services) == {}
    # AND no function creates or polls the jobs: the definition's map does, with SageMaker's API
    with pytest.raises(ReviewBackendError, match=r"Run Labeling Jobs map.*createLabelingJob"):
        backend.create_review(services, config, _plan())
    with pytest.raises(ReviewBackendError, match=r"Run Labeling Jobs map.*describeLabelingJob"):
        backend.review_progress(services, config, config.layout(), now=datetime.now(UTC))


class _Server:
    """Label Studio's contract functions (review/labelstudio/project.py), recording their calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for name, answer in {
            "preflight": {"reachable": True, "authenticated": True},
            "create_review": {"projectId": 7},
            "check_review": {"done": False},
            "collect_review": {"projectId": 7, "reviewed": 3, "skipped": 1},
            "stored_state": {"projectId": 7, "createdAt": "2026-12-01T00:00:00Z"},
        }.items():
            monkeypatch.setattr(project, name, self._recorder(name, answer))

    def _recorder(self, name: str, answer: dict[str, Any]) -> Any:
        def record(*args: Any, **kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, args, kwargs))
            return answer

        return record


def test_label_studio_creates_polls_and_collects_the_waves_project(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a Label Studio run in its second wave, and the stack's server
    server = _Server(monkeypatch)
    config = make_config(stack=LS_STACK, reviewBackend="labelstudio", reviewDeadlineHours=12)
    plan, layout = _plan(wave=2), config.layout().for_wave(2)
    ls = LabelStudioClient("https://labelstudio.example.com", "0" * 40)
    services = ReviewServices("s3", label_studio=ls, region="eu-west-1")
    backend, now = config.backend, datetime(2026, 12, 2, tzinfo=UTC)
    state = {"projectId": 7, "createdAt": "2026-12-01T00:00:00Z"}
    # WHEN the definition's steps run THEN each calls the project's contract with the stack's server
    assert backend.preflight(services) == {"reachable": True, "authenticated": True}
    assert backend.create_review(services, config, plan) == {"projectId": 7}
    settings = project.ProjectSettings.from_config(config, plan, region="eu-west-1")
    assert backend.review_progress(services, config, layout, now=now) == {"done": False}
    assert backend.collect_review(services, layout) == CollectedReview(
        {"projectId": 7, "reviewed": 3, "skipped": 1}
    )
    assert server.calls == [
        ("preflight", (ls,), {}),
        ("create_review", ("s3", ls, layout, settings), {}),
        ("stored_state", ("s3", layout), {}),
        ("check_review", (ls, state), {"deadline_hours": 12, "now": now}),
        ("stored_state", ("s3", layout), {}),
        ("collect_review", ("s3", ls, layout, state), {}),
    ]
    # AND a run that ends uncollected has nothing to stop: the project hands out no work itself
    assert backend.stop_review(services, config.layout()) == StopResult()
    assert StopResult().to_dict() == {"labelingJobsStopped": 0, "labelingJobsNotStopped": 0}


def test_label_studio_keeps_an_answer_it_cannot_read_out_of_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a server whose project answers break the code reading them
    _Server(monkeypatch)

    def unreadable(*args: Any) -> dict[str, Any]:
        raise KeyError("SERVER-SIDE-DATA")

    monkeypatch.setattr(project, "collect_review", unreadable)
    config = make_config(stack=LS_STACK, reviewBackend="labelstudio")
    ls = LabelStudioClient("https://labelstudio.example.com", "0" * 40)
    # WHEN the backend collects THEN the error names the server, the step and the kind, not the data
    with pytest.raises(ReviewBackendError) as raised:
        config.backend.collect_review(ReviewServices("s3", label_studio=ls), config.layout())
    assert str(raised.value) == (
        "Label Studio at https://labelstudio.example.com answered 'collect' with data this function "
        "cannot read (KeyError; details in the function's log)"
    )
    # AND without the stack's server no step reaches any other
    with pytest.raises(ReviewBackendError, match="need the stack's Label Studio"):
        config.backend.preflight(ReviewServices("s3"))


class _Secrets:
    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        assert SecretId == SECRET_ARN
        return {"SecretString": '{"token": "' + "0" * 40 + '"}'}


def test_label_studio_services_are_the_stacks_server_and_region() -> None:
    environment = {
        "AWS_REGION": "eu-west-1",
        "LABEL_STUDIO_URL": "https://labelstudio.example.com/",
        "LABEL_STUDIO_HTTP_HOST": "",
        "LABEL_STUDIO_TOKEN_SECRET_ARN": SECRET_ARN,
    }
    services = labelstudio.services_for("s3", _Secrets(), load(LabelStudioReviewSettings, environment))
    assert services.s3 == "s3" and services.region == "eu-west-1" and services.sagemaker is None
    assert (
        services.label_studio is not None and services.label_studio.url == "https://labelstudio.example.com"
    )
    unset = load(LabelStudioReviewSettings, {**environment, "LABEL_STUDIO_URL": ""})
    with pytest.raises(ReviewBackendError, match=r"^Label Studio: the stack sets no LabelStudioUrl$"):
        labelstudio.services_for("s3", _Secrets(), unset)
