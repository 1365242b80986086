"""The emulated Ground Truth: request validation, lifecycle, built-in box adjustment, custom tasks."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from localcloud.data.truth import Truth, TruthBox
from localcloud.services.base import ServiceError, operation_model
from localcloud.services.groundtruth import GroundTruthConfig, GroundTruthEmulator

BUCKET = "data"
ROLE = "arn:aws:iam::123456789012:role/gt-role"
TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team"
PRE_BOX = "arn:aws:lambda:us-east-1:432418664414:function:PRE-AdjustmentBoundingBox"
ACS_BOX = "arn:aws:lambda:us-east-1:432418664414:function:ACS-AdjustmentBoundingBox"
PRE_CUSTOM = "arn:aws:lambda:us-east-1:123456789012:function:gt-pre"
ACS_CUSTOM = "arn:aws:lambda:us-east-1:123456789012:function:gt-post"


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    """One client per module (creating one costs ~0.1 s); moto's state is still new per test,
    because each test starts its own mock_aws and moto resets its backends then."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_ENV.items():
            patch.setenv(name, value)
        yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, s3_client: Any) -> Iterator[Any]:
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = s3_client
        client.create_bucket(Bucket=BUCKET)
        buffer = io.BytesIO()
        Image.new("RGB", (200, 100)).save(buffer, format="PNG")
        for n in range(4):
            client.put_object(Bucket=BUCKET, Key=f"img/{n}.png", Body=buffer.getvalue())
        client.put_object(Bucket=BUCKET, Key="gt/template.liquid.html", Body=b"<crowd-form></crowd-form>")
        yield client


def put_json(s3: Any, key: str, document: Any) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    return f"s3://{BUCKET}/{key}"


def put_lines(s3: Any, key: str, lines: list[dict[str, Any]]) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body="".join(json.dumps(line) + "\n" for line in lines).encode())
    return f"s3://{BUCKET}/{key}"


def ref(n: int) -> str:
    return f"s3://{BUCKET}/img/{n}.png"


def prediction_line(n: int, boxes: list[tuple[int, int, int, int, int]]) -> dict[str, Any]:
    """data-contracts.md: predictions under `model-predictions` in object-detection format."""
    return {
        "source-ref": ref(n),
        "model-predictions": {
            "image_size": [{"width": 200, "height": 100, "depth": 3}],
            "annotations": [
                {"class_id": c, "left": x, "top": y, "width": w, "height": h} for c, x, y, w, h in boxes
            ],
        },
        "model-predictions-metadata": {
            "objects": [{"confidence": 0.8} for _ in boxes],
            "class-map": {"0": "cat", "1": "dog"},
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": "2024-01-01T00:00:00",
            "job-name": "model-predictions",
        },
    }


TRUTH = {
    ref(0): Truth(ref(0), 200, 100, [TruthBox("cat", 10, 10, 50, 40)], ["cat"]),
    ref(1): Truth(ref(1), 200, 100, [TruthBox("dog", 100, 20, 60, 60)], ["dog"]),
    ref(2): Truth(
        ref(2), 200, 100, [TruthBox("cat", 10, 10, 50, 40), TruthBox("dog", 120, 40, 40, 40)], ["cat", "dog"]
    ),
    ref(3): Truth(ref(3), 200, 100, [], ["outdoor"]),
}


def box_request(
    s3: Any, name: str = "lab-run1-det-000", lines: list[dict[str, Any]] | None = None, **overrides: Any
) -> dict[str, Any]:
    if lines is None:
        lines = [
            prediction_line(0, [(0, 10, 10, 50, 40)]),  # exact: kept
            prediction_line(1, [(1, 95, 25, 60, 60), (0, 0, 60, 30, 30)]),  # off a bit + a false positive
            prediction_line(2, []),  # both objects missed: added
        ]
    request = {
        "LabelingJobName": name,
        "LabelAttributeName": "reviewed-boxes",
        "InputConfig": {
            "DataSource": {
                "S3DataSource": {"ManifestS3Uri": put_lines(s3, f"gt/{name}/input.manifest", lines)}
            }
        },
        "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/gt-output/"},
        "RoleArn": ROLE,
        "LabelCategoryConfigS3Uri": put_json(
            s3,
            f"gt/{name}/labels.json",
            {"document-version": "2018-11-28", "labels": [{"label": "cat"}, {"label": "dog"}]},
        ),
        "HumanTaskConfig": {
            "WorkteamArn": TEAM,
            "UiConfig": {"UiTemplateS3Uri": f"s3://{BUCKET}/gt/template.liquid.html"},
            "PreHumanTaskLambdaArn": PRE_BOX,
            "TaskTitle": "Adjust boxes",
            "TaskDescription": "Fix the boxes",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 600,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_BOX},
        },
    }
    request.update(overrides)
    return request


def emulator_for(s3: Any, clock: FakeClock, invoker: Any = None, **config: Any) -> GroundTruthEmulator:
    cfg = GroundTruthConfig(
        **{
            "job_latency_s": 10.0,
            "initializing_s": 1.0,
            "known_roles": (ROLE,),
            "known_workteams": (TEAM,),
            **config,
        }
    )

    def no_lambda(arn: str, payload: dict[str, Any]) -> Any:
        raise AssertionError(f"unexpected Lambda call {arn}")

    return GroundTruthEmulator(s3, invoker or no_lambda, TRUTH, "us-east-1", cfg, clock=clock)


def read_manifest(s3: Any, uri: str) -> list[dict[str, Any]]:
    bucket, key = uri[5:].split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines() if line]


def error_of(call: Any) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        call()
    return info.value


def check_output_shape(operation: str, response: dict[str, Any]) -> None:
    shape = operation_model("sagemaker", operation).output_shape
    assert set(shape.required_members) <= set(response), operation
    assert set(response) <= set(shape.members), operation


# ---------------------------------------------------------------- create: validation


def test_create_returns_lowercase_arn_and_rejects_duplicates_case_insensitively(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock)
    response = gt.handle("CreateLabelingJob", box_request(s3, name="Lab-Run1-Det-000"))
    assert response == {
        "LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/lab-run1-det-000"
    }
    error = error_of(lambda: gt.handle("CreateLabelingJob", box_request(s3, name="lab-run1-DET-000")))
    assert error.code == "ResourceInUse"
    assert gt.created_job_names == ["Lab-Run1-Det-000"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"LabelingJobName": "bad_name"}, "regular expression"),
        ({"LabelingJobName": "x" * 64}, "length"),
        ({"LabelAttributeName": "boxes-metadata"}, "-metadata"),
        ({"LabelAttributeName": "boxes-ref"}, "-ref"),
        ({"RoleArn": "arn:aws:iam::123456789012:role/other"}, "assume role"),
        ({"LabelCategoryConfigS3Uri": f"s3://{BUCKET}/missing.json"}, "label category"),
        ({"Unknown": 1}, "Unknown parameter"),
    ],
)
def test_create_validation_errors(s3: Any, change: dict[str, Any], message: str) -> None:
    gt = emulator_for(s3, FakeClock())
    request = box_request(s3)
    request.update(change)
    error = error_of(lambda: gt.handle("CreateLabelingJob", request))
    assert error.code == "ValidationException"
    assert message in error.message
    assert gt.created_job_names == []


def test_create_checks_files_team_and_lambdas(s3: Any) -> None:
    gt = emulator_for(s3, FakeClock())

    def attempt(**changes: Any) -> str:
        request = box_request(s3)
        for path, value in changes.items():
            target = request
            *parents, leaf = path.split("__")
            for parent in parents:
                target = target[parent]
            target[leaf] = value
        return error_of(lambda: gt.handle("CreateLabelingJob", request)).message

    assert "does not exist" in attempt(HumanTaskConfig__WorkteamArn=TEAM + "x")
    assert "template" in attempt(HumanTaskConfig__UiConfig={"UiTemplateS3Uri": f"s3://{BUCKET}/nope.html"})
    assert "input manifest" in attempt(
        InputConfig={"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{BUCKET}/none.manifest"}}}
    )
    no_ref = put_lines(s3, "gt/no-ref.manifest", [{"source-ref": ref(0)}, {"image": "x"}])
    assert "Line 2" in attempt(InputConfig={"DataSource": {"S3DataSource": {"ManifestS3Uri": no_ref}}})
    # Another region's Ground Truth function, a PRE/ACS mismatch, a non-emulated built-in task.
    assert "not a Ground Truth function" in attempt(
        HumanTaskConfig__PreHumanTaskLambdaArn="arn:aws:lambda:us-west-2:081040173940:function:PRE-AdjustmentBoundingBox"
    )
    assert "same task type" in attempt(HumanTaskConfig__PreHumanTaskLambdaArn=PRE_CUSTOM)
    assert "not emulated" in attempt(
        HumanTaskConfig__PreHumanTaskLambdaArn=PRE_BOX.replace("AdjustmentBoundingBox", "ImageMultiClass"),
        HumanTaskConfig__AnnotationConsolidationConfig={
            "AnnotationConsolidationLambdaArn": ACS_BOX.replace("AdjustmentBoundingBox", "ImageMultiClass")
        },
    )


@pytest.mark.parametrize(
    "document",
    [
        {"labels": [{"label": "cat"}]},  # no document-version
        {"document-version": "2018-11-28", "labels": []},
        {"document-version": "2018-11-28", "labels": [{"label": "cat"}, {"label": "cat"}]},
        {"document-version": "2018-11-28", "labels": [{"label": "x" * 257}]},
        {"document-version": "2018-11-28", "labels": [{"label": f"l{i}"} for i in range(51)]},
        "not json {",
    ],
)
def test_label_category_file_rules(s3: Any, document: Any) -> None:
    gt = emulator_for(s3, FakeClock())
    if isinstance(document, str):
        s3.put_object(Bucket=BUCKET, Key="gt/bad-labels.json", Body=document.encode())
        uri = f"s3://{BUCKET}/gt/bad-labels.json"
    else:
        uri = put_json(s3, "gt/bad-labels.json", document)
    error = error_of(lambda: gt.handle("CreateLabelingJob", box_request(s3, LabelCategoryConfigS3Uri=uri)))
    assert error.code == "ValidationException"


# ---------------------------------------------------------------- lifecycle and built-in adjustment


def test_lifecycle_and_bounding_box_adjustment_output(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock)
    gt.handle("CreateLabelingJob", box_request(s3))
    describe = {"LabelingJobName": "lab-run1-det-000"}
    first = gt.handle("DescribeLabelingJob", describe)
    assert first["LabelingJobStatus"] == "Initializing"
    assert "LabelingJobOutput" not in first
    check_output_shape("DescribeLabelingJob", first)
    clock.advance(5)
    middle = gt.handle("DescribeLabelingJob", describe)
    assert middle["LabelingJobStatus"] == "InProgress"
    assert middle["LabelCounters"]["TotalLabeled"] + middle["LabelCounters"]["Unlabeled"] == 3
    clock.advance(5)
    done = gt.handle("DescribeLabelingJob", describe)
    check_output_shape("DescribeLabelingJob", done)
    assert done["LabelingJobStatus"] == "Completed"
    assert done["LabelCounters"] == {
        "TotalLabeled": 3,
        "HumanLabeled": 3,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }
    uri = done["LabelingJobOutput"]["OutputDatasetS3Uri"]
    assert uri == f"s3://{BUCKET}/gt-output/lab-run1-det-000/manifests/output/output.manifest"
    lines = {line["source-ref"]: line for line in read_manifest(s3, uri)}
    assert len(lines) == 3

    def boxes(line: dict[str, Any]) -> set[tuple[str, int, int, int, int]]:
        class_map = line["reviewed-boxes-metadata"]["class-map"]
        return {
            (class_map[str(a["class_id"])], a["left"], a["top"], a["width"], a["height"])
            for a in line["reviewed-boxes"]["annotations"]
        }

    kept = lines[ref(0)]
    assert kept["model-predictions"]["annotations"]  # input attributes pass through
    assert boxes(kept) == {("cat", 10, 10, 50, 40)}
    meta = kept["reviewed-boxes-metadata"]
    assert meta["adjustment-status"] == "unadjusted"
    assert meta["type"] == "groundtruth/object-detection" and meta["human-annotated"] == "yes"
    assert meta["job-name"] == "labeling-job/lab-run1-det-000"
    assert len(meta["objects"]) == 1 and "creation-date" in meta
    assert kept["reviewed-boxes"]["image_size"] == [{"width": 200, "height": 100, "depth": 3}]
    moved = lines[ref(1)]
    assert boxes(moved) == {("dog", 100, 20, 60, 60)}  # moved to the truth; false positive removed
    assert moved["reviewed-boxes-metadata"]["adjustment-status"] == "adjusted"
    assert boxes(lines[ref(2)]) == {("cat", 10, 10, 50, 40), ("dog", 120, 40, 40, 40)}
    # class ids follow the label category file
    assert lines[ref(2)]["reviewed-boxes-metadata"]["class-map"] == {"0": "cat", "1": "dog"}
    # Ground Truth's own layout: one worker response per object
    listed = s3.list_objects_v2(
        Bucket=BUCKET, Prefix="gt-output/lab-run1-det-000/annotations/worker-response/"
    )
    assert len(listed["Contents"]) == 3
    assert gt.jobs["lab-run1-det-000"]["status"] == "Completed"
    # the work happened once: a second describe does not rewrite anything
    assert gt.handle("DescribeLabelingJob", describe)["LastModifiedTime"] == done["LastModifiedTime"]


def test_annotator_with_zero_accuracy_leaves_predictions(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, annotator_accuracy=0.0)
    gt.handle("CreateLabelingJob", box_request(s3))
    clock.advance(20)
    uri = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-000"})["LabelingJobOutput"][
        "OutputDatasetS3Uri"
    ]
    lines = {line["source-ref"]: line for line in read_manifest(s3, uri)}
    assert len(lines[ref(1)]["reviewed-boxes"]["annotations"]) == 2
    assert lines[ref(1)]["reviewed-boxes-metadata"]["adjustment-status"] == "unadjusted"
    assert lines[ref(2)]["reviewed-boxes"]["annotations"] == []


def test_jitter_keeps_boxes_inside_the_image(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, annotator_jitter_px=30)
    gt.handle("CreateLabelingJob", box_request(s3))
    clock.advance(20)
    uri = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-000"})["LabelingJobOutput"][
        "OutputDatasetS3Uri"
    ]
    for line in read_manifest(s3, uri):
        for a in line["reviewed-boxes"]["annotations"]:
            assert a["left"] >= 0 and a["top"] >= 0 and a["width"] >= 1 and a["height"] >= 1
            assert a["left"] + a["width"] <= 200 and a["top"] + a["height"] <= 100


def test_plain_bounding_box_task_reads_image_size_from_s3(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, job_latency_s=0.0, initializing_s=0.0)
    request = box_request(s3, lines=[{"source-ref": ref(2)}])
    request["HumanTaskConfig"]["PreHumanTaskLambdaArn"] = PRE_BOX.replace("Adjustment", "")
    request["HumanTaskConfig"]["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"] = (
        ACS_BOX.replace("Adjustment", "")
    )
    gt.handle("CreateLabelingJob", request)
    uri = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-000"})["LabelingJobOutput"][
        "OutputDatasetS3Uri"
    ]
    (line,) = read_manifest(s3, uri)
    assert line["reviewed-boxes"]["image_size"][0]["width"] == 200
    assert len(line["reviewed-boxes"]["annotations"]) == 2
    assert "adjustment-status" not in line["reviewed-boxes-metadata"]


# ---------------------------------------------------------------- faults: fail, stop, unlabeled


def test_fail_job_by_name_pattern(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, fail_job="det-001$")
    gt.handle("CreateLabelingJob", box_request(s3, name="lab-run1-det-000"))
    gt.handle("CreateLabelingJob", box_request(s3, name="lab-run1-det-001"))
    clock.advance(20)
    ok = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-000"})
    failed = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-001"})
    assert ok["LabelingJobStatus"] == "Completed"
    assert failed["LabelingJobStatus"] == "Failed" and failed["FailureReason"]
    assert "LabelingJobOutput" not in failed
    check_output_shape("DescribeLabelingJob", failed)


def test_stop_labeling_job_gives_partial_output(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, job_latency_s=10.0, initializing_s=0.0, stop_latency_s=1.0)
    gt.handle("CreateLabelingJob", box_request(s3))
    clock.advance(7)  # 70 % done
    assert gt.handle("StopLabelingJob", {"LabelingJobName": "lab-run1-det-000"}) == {}
    assert (
        gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-000"})["LabelingJobStatus"]
        == "Stopping"
    )
    clock.advance(1)
    stopped = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-000"})
    assert stopped["LabelingJobStatus"] == "Stopped"
    assert stopped["LabelCounters"]["TotalLabeled"] == 2 and stopped["LabelCounters"]["Unlabeled"] == 1
    assert len(read_manifest(s3, stopped["LabelingJobOutput"]["OutputDatasetS3Uri"])) == 2
    assert gt.handle("StopLabelingJob", {"LabelingJobName": "lab-run1-det-000"}) == {}  # no-op when ended


def test_stop_after_fraction_and_unlabeled_fraction(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, stop_after_fraction=0.34)
    gt.handle("CreateLabelingJob", box_request(s3))
    clock.advance(20)
    stopped = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-det-000"})
    assert stopped["LabelingJobStatus"] == "Stopped" and stopped["LabelCounters"]["TotalLabeled"] == 1

    gt2 = emulator_for(s3, clock, unlabeled_fraction=0.34)
    gt2.handle("CreateLabelingJob", box_request(s3, name="other"))
    clock.advance(20)
    done = gt2.handle("DescribeLabelingJob", {"LabelingJobName": "other"})
    assert done["LabelingJobStatus"] == "Completed"
    assert (
        done["LabelCounters"]["TotalLabeled"] == 2 and done["LabelCounters"]["FailedNonRetryableError"] == 1
    )
    lines = read_manifest(s3, done["LabelingJobOutput"]["OutputDatasetS3Uri"])
    failed = [line for line in lines if "reviewed-boxes" not in line]
    assert len(failed) == 1 and "failure-reason" in failed[0]["reviewed-boxes-metadata"]


def test_unknown_job_and_list(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock)
    assert error_of(lambda: gt.handle("DescribeLabelingJob", {"LabelingJobName": "nope"})).code == (
        "ValidationException"
    )
    gt.handle("CreateLabelingJob", box_request(s3, name="a-job"))
    gt.handle("CreateLabelingJob", box_request(s3, name="b-job"))
    listed = gt.handle(
        "ListLabelingJobs", {"NameContains": "job", "SortBy": "Name", "SortOrder": "Descending"}
    )
    assert [s["LabelingJobName"] for s in listed["LabelingJobSummaryList"]] == ["b-job", "a-job"]
    check_output_shape("ListLabelingJobs", listed)
    page = gt.handle("ListLabelingJobs", {"MaxResults": 1})
    assert len(page["LabelingJobSummaryList"]) == 1 and page["NextToken"]


# ---------------------------------------------------------------- custom task (label verification)


def verification_line(n: int, predicted: list[str]) -> dict[str, Any]:
    return {
        "source-ref": ref(n),
        "model-predictions": {
            "labels": [{"label": p, "confidence": 0.6} for p in predicted],
            "label-set": ["cat", "dog", "outdoor"],
        },
    }


class FakeLambdas:
    """Stand-ins for our pre-annotation and consolidation Lambdas (data-contracts.md shapes)."""

    def __init__(self, s3: Any, fail_pre_times: int = 0) -> None:
        self.s3 = s3
        self.fail_pre_times = fail_pre_times
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, arn: str, payload: dict[str, Any]) -> Any:
        self.events.append((arn, payload))
        if arn == PRE_CUSTOM:
            if self.fail_pre_times:
                self.fail_pre_times -= 1
                raise RuntimeError("crash once")
            data = payload["dataObject"]
            return {
                "taskInput": {
                    "taskObject": data["source-ref"],
                    "predicted": [p["label"] for p in data["model-predictions"]["labels"]],
                    "labels": data["model-predictions"]["label-set"],
                },
                "isHumanAnnotationRequired": True,
            }
        if arn == ACS_CUSTOM:
            bucket, key = payload["payload"]["s3Uri"][5:].split("/", 1)
            items = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            out = []
            for item in items:
                answer = json.loads(item["annotations"][0]["annotationData"]["content"])
                on = sorted(label for label, v in answer["labels"].items() if v["on"])
                out.append(
                    {
                        "datasetObjectId": item["datasetObjectId"],
                        "consolidatedAnnotation": {
                            "content": {
                                payload["labelAttributeName"]: {
                                    "labels": on,
                                    "workers": len(item["annotations"]),
                                }
                            }
                        },
                    }
                )
            return out
        raise KeyError(arn)


def custom_request(s3: Any, name: str = "lab-run1-cls-000") -> dict[str, Any]:
    lines = [verification_line(0, ["cat", "dog"]), verification_line(3, []), verification_line(1, ["dog"])]
    request = box_request(s3, name=name, lines=lines, LabelAttributeName="reviewed-labels")
    request["LabelCategoryConfigS3Uri"] = put_json(
        s3,
        f"gt/{name}/labels.json",
        {
            "document-version": "2018-11-28",
            "labels": [{"label": "cat"}, {"label": "dog"}, {"label": "outdoor"}],
        },
    )
    request["HumanTaskConfig"]["PreHumanTaskLambdaArn"] = PRE_CUSTOM
    request["HumanTaskConfig"]["AnnotationConsolidationConfig"] = {
        "AnnotationConsolidationLambdaArn": ACS_CUSTOM
    }
    return request


def test_custom_task_invokes_lambdas_and_writes_groundtruth_layout(s3: Any) -> None:
    clock = FakeClock()
    lambdas = FakeLambdas(s3)
    gt = emulator_for(s3, clock, invoker=lambdas)
    arn = gt.handle("CreateLabelingJob", custom_request(s3))["LabelingJobArn"]
    clock.advance(20)
    done = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-cls-000"})
    assert done["LabelingJobStatus"] == "Completed"
    assert gt.pre_invocations == 3 and gt.consolidation_invocations == 1
    pre_event = lambdas.events[0][1]
    assert pre_event["version"] == "2018-10-16" and pre_event["labelingJobArn"] == arn
    assert pre_event["dataObject"]["source-ref"] == ref(0)
    acs_event = lambdas.events[-1][1]
    assert acs_event["labelAttributeName"] == "reviewed-labels"
    assert acs_event["labelCategories"] == ["cat", "dog", "outdoor"]
    assert acs_event["roleArn"] == ROLE
    assert (
        "/annotations/consolidated-annotation/consolidation-request/iteration-1/"
        in acs_event["payload"]["s3Uri"]
    )
    lines = {
        line["source-ref"]: line
        for line in read_manifest(s3, done["LabelingJobOutput"]["OutputDatasetS3Uri"])
    }
    # perfect annotators: the truth's labels, whatever was predicted
    assert lines[ref(0)]["reviewed-labels"]["labels"] == ["cat"]
    assert lines[ref(3)]["reviewed-labels"]["labels"] == ["outdoor"]
    assert lines[ref(1)]["reviewed-labels"]["labels"] == ["dog"]
    meta = lines[ref(0)]["reviewed-labels-metadata"]
    assert meta["type"] == "groundtruth/custom" and meta["human-annotated"] == "yes"
    assert meta["job-name"] == "labeling-job/lab-run1-cls-000"
    responses = s3.list_objects_v2(
        Bucket=BUCKET, Prefix="gt-output/lab-run1-cls-000/annotations/worker-response/"
    )
    assert responses["KeyCount"] == 3
    one = json.loads(s3.get_object(Bucket=BUCKET, Key=responses["Contents"][0]["Key"])["Body"].read())
    assert one["answers"][0]["answerContent"]["labels"]


def test_custom_task_with_careless_annotators_keeps_predictions(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, invoker=FakeLambdas(s3), annotator_accuracy=0.0)
    gt.handle("CreateLabelingJob", custom_request(s3))
    clock.advance(20)
    done = gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-cls-000"})
    lines = {
        line["source-ref"]: line
        for line in read_manifest(s3, done["LabelingJobOutput"]["OutputDatasetS3Uri"])
    }
    assert lines[ref(0)]["reviewed-labels"]["labels"] == ["cat", "dog"]


def test_lambda_crash_once_is_retried_and_always_failing_lambda_fails_the_job(s3: Any) -> None:
    clock = FakeClock()
    gt = emulator_for(s3, clock, invoker=FakeLambdas(s3, fail_pre_times=1))
    gt.handle("CreateLabelingJob", custom_request(s3))
    clock.advance(20)
    assert gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-cls-000"})["LabelingJobStatus"] == (
        "Completed"
    )
    broken = emulator_for(s3, clock, invoker=FakeLambdas(s3, fail_pre_times=100))
    broken.handle("CreateLabelingJob", custom_request(s3, name="broken"))
    clock.advance(20)
    failed = broken.handle("DescribeLabelingJob", {"LabelingJobName": "broken"})
    assert failed["LabelingJobStatus"] == "Failed"
    assert PRE_CUSTOM in failed["FailureReason"]


def test_concurrent_describes_do_the_work_once(s3: Any) -> None:
    import threading

    clock = FakeClock()
    lambdas = FakeLambdas(s3)
    gt = emulator_for(s3, clock, invoker=lambdas)
    gt.handle("CreateLabelingJob", custom_request(s3))
    clock.advance(20)
    statuses: list[str] = []

    def poll() -> None:
        statuses.append(
            gt.handle("DescribeLabelingJob", {"LabelingJobName": "lab-run1-cls-000"})["LabelingJobStatus"]
        )

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == ["Completed"] * 8
    assert gt.consolidation_invocations == 1 and gt.pre_invocations == 3
