"""Ground Truth planning: built-in Lambda ARNs, job names, input manifests, label categories,
worker templates and review job items (docs/data-contracts.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.groundtruth.aws_facts import AWS_TASK_LAMBDA_ACCOUNTS
from labeling_loop.review.groundtruth.jobs import (
    CLASSIFICATION_TEMPLATE,
    DETECTION_TEMPLATE,
    JobSettings,
    builtin_lambda_arns,
    job_name,
    plan_jobs,
)

BUCKET = "out-bucket"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
WORKTEAM = "arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/reviewers"
VERIFY_PRE = "arn:aws:lambda:us-east-1:111122223333:function:lab-VerificationPreAnnotation"
VERIFY_ACS = "arn:aws:lambda:us-east-1:111122223333:function:lab-VerificationConsolidation"


@pytest.fixture
def s3(moto_s3: Any) -> Any:
    moto_s3.create_bucket(Bucket=BUCKET)
    return moto_s3


@pytest.fixture
def layout() -> RunLayout:
    return RunLayout.for_run(S3Uri(BUCKET, "runs"), "run1")


def detection_task(name: str, boxes: int = 1) -> dict[str, Any]:
    return {
        "source-ref": f"s3://images/photos/{name}.jpg",
        "taskType": "detection",
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "predictions": [
            {
                "label": "cat",
                "confidence": 87.5,
                "box": {"left": 64 + i, "top": 96, "width": 192, "height": 120},
            }
            for i in range(boxes)
        ],
    }


def classification_task(name: str, labels: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "source-ref": f"s3://images/photos/{name}.jpg",
        "taskType": "classification",
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "predictions": [{"label": label, "confidence": conf} for label, conf in labels],
    }


def plan(s3: Any, layout: RunLayout, tasks: Any, **overrides: Any) -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {
        "task_type": "detection",
        "labels": ["cat", "dog"],
        "run_id": "run1",
        "job_name_prefix": "lab",
        "max_images_per_job": 2,
        "workteam_arn": WORKTEAM,
        "region": "us-east-1",
        "verification_pre_lambda_arn": VERIFY_PRE,
        "verification_consolidation_lambda_arn": VERIFY_ACS,
        "workers_per_object": 1,
        "task_time_limit_s": 600,
        "task_availability_s": 864000,
        "max_concurrent_tasks": 1000,
        "now": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    arguments.update(overrides)
    now = arguments.pop("now")
    return plan_jobs(s3, layout, tasks, JobSettings(**arguments), now=now)


def read_lines(s3: Any, uri: str) -> list[dict[str, Any]]:
    parsed = S3Uri.parse(uri)
    body = s3.get_object(Bucket=parsed.bucket, Key=parsed.key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines() if line]


def read_text(s3: Any, uri: str) -> str:
    parsed = S3Uri.parse(uri)
    return s3.get_object(Bucket=parsed.bucket, Key=parsed.key)["Body"].read().decode()


# --- built-in Lambdas ------------------------------------------------------------------------------


def test_builtin_adjustment_arns_in_us_east_1() -> None:
    assert builtin_lambda_arns("us-east-1") == (
        "arn:aws:lambda:us-east-1:432418664414:function:PRE-AdjustmentBoundingBox",
        "arn:aws:lambda:us-east-1:432418664414:function:ACS-AdjustmentBoundingBox",
    )


def test_builtin_arns_use_the_region_account_for_every_task_type() -> None:
    pre, acs = builtin_lambda_arns("eu-west-2", "BoundingBox")
    assert pre == "arn:aws:lambda:eu-west-2:487402164563:function:PRE-BoundingBox"
    assert acs == "arn:aws:lambda:eu-west-2:487402164563:function:ACS-BoundingBox"
    assert len(AWS_TASK_LAMBDA_ACCOUNTS) == 12


def test_region_without_builtin_lambdas_is_named_in_the_error() -> None:
    with pytest.raises(InvalidInput, match="sa-east-1"):
        builtin_lambda_arns("sa-east-1")


def test_unknown_builtin_task_type_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="NotATask"):
        builtin_lambda_arns("us-east-1", "NotATask")


# --- job names ---------------------------------------------------------------------------------------


def test_job_name_follows_the_documented_form() -> None:
    assert job_name("lab", "run1", "det", 0) == "lab-run1-det-000"
    assert job_name("lab", "run1", "cls", 7) == "lab-run1-cls-007"


def test_job_name_is_lower_case_and_replaces_invalid_characters() -> None:
    name = job_name("Lab", "My_Run.2024:01", "det", 1)
    assert name == "lab-my-run-2024-01-det-001"
    assert NAME_PATTERN.match(name)


def test_long_job_names_are_cut_to_63_characters_deterministically_and_distinctly() -> None:
    run_a = "execution-" + "a" * 70 + "-one"
    run_b = "execution-" + "a" * 70 + "-two"
    name_a = job_name("labeling-loop", run_a, "det", 12)
    assert len(name_a) <= 63
    assert NAME_PATTERN.match(name_a)
    assert name_a.endswith("-det-012")
    assert name_a == job_name("labeling-loop", run_a, "det", 12)
    assert name_a != job_name("labeling-loop", run_b, "det", 12)


def test_job_name_needs_a_letter_or_digit() -> None:
    with pytest.raises(InvalidInput):
        job_name("--", "__", "det", 0)


# --- detection plan ----------------------------------------------------------------------------------


def test_detection_plan_splits_tasks_into_jobs_and_writes_their_files(s3: Any, layout: RunLayout) -> None:
    tasks = (detection_task(name) for name in ["a", "b", "c", "d", "e"])  # a stream, not a list

    jobs = plan(s3, layout, tasks)

    assert [job["jobName"] for job in jobs] == ["lab-run1-det-000", "lab-run1-det-001", "lab-run1-det-002"]
    assert [job["objectCount"] for job in jobs] == [2, 2, 1]
    first = jobs[0]
    prefix = "s3://out-bucket/runs/run1/review/groundtruth/lab-run1-det-000/"
    assert first["inputManifestUri"] == prefix + "input.manifest"
    assert first["labelCategoriesUri"] == prefix + "label-categories.json"
    assert first["uiTemplateUri"] == prefix + "template.liquid.html"
    assert first["outputUri"] == "s3://out-bucket/runs/run1/review/groundtruth-output/"
    assert first["labelAttributeName"] == "reviewed-boxes"
    assert first["taskType"] == "detection"
    assert first["preLambdaArn"] == "arn:aws:lambda:us-east-1:432418664414:function:PRE-AdjustmentBoundingBox"
    assert first["consolidationLambdaArn"] == (
        "arn:aws:lambda:us-east-1:432418664414:function:ACS-AdjustmentBoundingBox"
    )
    assert first["workteamArn"] == WORKTEAM
    assert first["workersPerObject"] == 1
    assert first["taskTimeLimitSeconds"] == 600
    assert first["taskAvailabilityLifetimeSeconds"] == 864000
    assert first["maxConcurrentTaskCount"] == 1000
    assert 1 <= len(first["taskTitle"]) <= 128
    assert 1 <= len(first["taskDescription"]) <= 255
    assert 1 <= len(first["taskKeywords"]) <= 5
    # The item list the Distributed Map reads is exactly what was returned.
    assert json.loads(read_text(s3, "s3://out-bucket/runs/run1/review/jobs.json")) == jobs
    assert [line["source-ref"] for line in read_lines(s3, jobs[2]["inputManifestUri"])] == [
        "s3://images/photos/e.jpg"
    ]


def test_detection_manifest_line_is_ground_truth_object_detection_format(s3: Any, layout: RunLayout) -> None:
    task = detection_task("a")
    task["predictions"].append(
        {"label": "dog", "confidence": 50.0, "box": {"left": 1, "top": 2, "width": 30, "height": 40}}
    )
    task["predictions"].append({"label": "cat", "confidence": 99.0})  # image-level: not a box

    jobs = plan(s3, layout, [task])

    assert read_lines(s3, jobs[0]["inputManifestUri"]) == [
        {
            "source-ref": "s3://images/photos/a.jpg",
            "model-predictions": {
                "image_size": [{"width": 640, "height": 480, "depth": 3}],
                "annotations": [
                    {"class_id": 0, "left": 64, "top": 96, "width": 192, "height": 120},
                    {"class_id": 1, "left": 1, "top": 2, "width": 30, "height": 40},
                ],
            },
            "model-predictions-metadata": {
                "objects": [{"confidence": 0.875}, {"confidence": 0.5}],
                "class-map": {"0": "cat", "1": "dog"},
                "type": "groundtruth/object-detection",
                "human-annotated": "no",
                "creation-date": "2024-01-02T03:04:05.000000",
                "job-name": "model-predictions",
            },
        }
    ]


def test_images_without_predictions_are_reviewed_too(s3: Any, layout: RunLayout) -> None:
    jobs = plan(s3, layout, [detection_task("empty", boxes=0)])

    (line,) = read_lines(s3, jobs[0]["inputManifestUri"])
    assert line["model-predictions"]["annotations"] == []
    assert line["model-predictions-metadata"]["objects"] == []


def test_label_categories_file(s3: Any, layout: RunLayout) -> None:
    jobs = plan(s3, layout, [detection_task("a")])

    assert json.loads(read_text(s3, jobs[0]["labelCategoriesUri"])) == {
        "document-version": "2018-11-28",
        "labels": [{"label": "cat"}, {"label": "dog"}],
    }


class _Attributes(HTMLParser):
    """Collects each element's attributes, the way a browser splits them."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def test_detection_template_is_the_adjustment_template_with_prior_boxes(s3: Any, layout: RunLayout) -> None:
    jobs = plan(s3, layout, [detection_task("a")])
    template = read_text(s3, jobs[0]["uiTemplateUri"])
    assert template == DETECTION_TEMPLATE

    parser = _Attributes()
    parser.feed(template)
    (box,) = [attrs for tag, attrs in parser.elements if tag == "crowd-bounding-box"]
    assert box["src"] == "{{ task.input.taskObject | grant_read_access }}"
    assert box["labels"] == "{{ task.input.labels | to_json | escape }}"
    initial = box["initial-value"] or ""
    # The whole Liquid loop stays inside the one attribute (no raw quote ends it early).
    assert initial.startswith("[{% for box in task.input.manifestLine['model-predictions'].annotations %}")
    assert "task.input.manifestLine['model-predictions-metadata']['class-map'][class_id]" in initial
    assert '{"label": {{ label | to_json | escape }}, "left": {{ box.left }}' in initial
    assert initial.endswith("{% endfor %}]")
    assert "<full-instructions" in template and "<short-instructions>" in template


# --- classification plan -----------------------------------------------------------------------------


def test_classification_plan_uses_our_verification_task(s3: Any, layout: RunLayout) -> None:
    tasks = [classification_task("a", [("outdoor", 64.0)]), classification_task("b", [])]

    jobs = plan(
        s3, layout, tasks, task_type="classification", labels=["indoor", "outdoor"], max_images_per_job=10
    )

    (job,) = jobs
    assert job["jobName"] == "lab-run1-cls-000"
    assert job["labelAttributeName"] == "reviewed-labels"
    assert job["preLambdaArn"] == VERIFY_PRE
    assert job["consolidationLambdaArn"] == VERIFY_ACS
    assert job["objectCount"] == 2
    lines = read_lines(s3, job["inputManifestUri"])
    assert lines[0]["source-ref"] == "s3://images/photos/a.jpg"
    assert lines[0]["model-predictions"]["labels"] == [{"label": "outdoor", "confidence": 0.64}]
    assert lines[0]["model-predictions"]["label-set"] == ["indoor", "outdoor"]
    assert lines[1]["model-predictions"]["labels"] == []
    assert json.loads(read_text(s3, job["labelCategoriesUri"]))["labels"] == [
        {"label": "indoor"},
        {"label": "outdoor"},
    ]
    template = read_text(s3, job["uiTemplateUri"])
    assert template == CLASSIFICATION_TEMPLATE
    assert "{% for label in task.input.labels %}" in template
    assert "{% if task.input.predicted contains label %}checked{% endif %}>" in template
    assert '<crowd-checkbox name="labels" value="{{ label | escape }}"' in template
    assert "{{ task.input.taskObject | grant_read_access }}" in template
    assert "<crowd-instructions" in template


def test_classification_needs_two_labels(s3: Any, layout: RunLayout) -> None:
    with pytest.raises(InvalidInput, match="at least 2"):
        plan(s3, layout, [], task_type="classification", labels=["outdoor"])


def test_bounding_box_jobs_take_at_most_50_labels(s3: Any, layout: RunLayout) -> None:
    plan(s3, layout, [detection_task("a")], labels=["cat"] + [f"l{i}" for i in range(49)])
    with pytest.raises(InvalidInput, match="50"):
        plan(s3, layout, [], labels=[f"l{i}" for i in range(51)])


def test_predicted_label_outside_the_label_set_is_an_error(s3: Any, layout: RunLayout) -> None:
    with pytest.raises(InvalidInput, match="cat"):
        plan(s3, layout, [detection_task("a")], labels=["dog"])


# workersPerObject, taskTimeLimitSeconds and maxImagesPerJob are bounded once, by RunConfig's field
# types (tests/unit/test_run_config.py::test_numeric_bounds_are_inclusive_and_named); JobSettings.from_config
# takes a validated RunConfig's values. These two depend on the workforce and on constants.
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task_availability_s", 2_592_001),
        ("task_availability_s", 59),
        ("max_concurrent_tasks", 0),
    ],
)
def test_ground_truth_limits_are_checked_before_any_job(
    s3: Any, layout: RunLayout, field: str, value: int
) -> None:
    with pytest.raises(InvalidInput):
        plan(s3, layout, [detection_task("a")], **{field: value})
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_detection_in_a_region_without_builtin_lambdas_fails(s3: Any, layout: RunLayout) -> None:
    with pytest.raises(InvalidInput, match="sa-east-1"):
        plan(s3, layout, [detection_task("a")], region="sa-east-1")


def test_no_tasks_means_no_jobs(s3: Any, layout: RunLayout) -> None:
    assert plan(s3, layout, iter([])) == []
    assert json.loads(read_text(s3, "s3://out-bucket/runs/run1/review/jobs.json")) == []


def test_replanning_makes_the_same_job_names(s3: Any, layout: RunLayout) -> None:
    first = plan(s3, layout, [detection_task(n) for n in "abc"])
    again = plan(s3, layout, [detection_task(n) for n in "abc"])
    assert [j["jobName"] for j in first] == [j["jobName"] for j in again]


def _check_patterns(shape: Any, value: Any, path: str) -> None:
    """botocore's validator checks types and lengths; also check the model's regex patterns."""
    pattern = shape.metadata.get("pattern")
    if pattern and isinstance(value, str):
        assert re.fullmatch(pattern, value), f"{path}={value!r} breaks {pattern}"
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                _check_patterns(member, value[name], f"{path}.{name}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            _check_patterns(shape.member, item, f"{path}[{i}]")


@pytest.mark.parametrize("task_type", ["detection", "classification"])
def test_job_items_make_valid_create_labeling_job_requests(
    s3: Any, layout: RunLayout, task_type: str
) -> None:
    # The state machine's CreateLabelingJob task maps job item fields one to one (statemachine/).
    task = detection_task("a") if task_type == "detection" else classification_task("a", [("dog", 80.0)])
    (job,) = plan(s3, layout, [task], task_type=task_type)
    request = {
        "LabelingJobName": job["jobName"],
        "LabelAttributeName": job["labelAttributeName"],
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": job["inputManifestUri"]}}},
        "OutputConfig": {"S3OutputPath": job["outputUri"]},
        "RoleArn": "arn:aws:iam::111122223333:role/GroundTruth",
        "LabelCategoryConfigS3Uri": job["labelCategoriesUri"],
        "HumanTaskConfig": {
            "WorkteamArn": job["workteamArn"],
            "UiConfig": {"UiTemplateS3Uri": job["uiTemplateUri"]},
            "PreHumanTaskLambdaArn": job["preLambdaArn"],
            "TaskKeywords": job["taskKeywords"],
            "TaskTitle": job["taskTitle"],
            "TaskDescription": job["taskDescription"],
            "NumberOfHumanWorkersPerDataObject": job["workersPerObject"],
            "TaskTimeLimitInSeconds": job["taskTimeLimitSeconds"],
            "TaskAvailabilityLifetimeInSeconds": job["taskAvailabilityLifetimeSeconds"],
            "MaxConcurrentTaskCount": job["maxConcurrentTaskCount"],
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": job["consolidationLambdaArn"]
            },
        },
    }
    shape = get_session().get_service_model("sagemaker").operation_model("CreateLabelingJob").input_shape

    report = ParamValidator().validate(request, shape)

    assert not report.has_errors(), report.generate_report()
    _check_patterns(shape, request, "CreateLabelingJob")
    assert not job["labelAttributeName"].endswith(("-ref", "-metadata"))
