"""Helpers shared by the unit tests of the workflow's modules and handlers (fixtures: conftest.py).

Names follow the stack: the images bucket, the output bucket and the run-state table are what the
template creates; the model ARN is in the test region, as ValidateInput requires.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import deployed_stack
from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.kernel.run_input import validate_input
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.kernel.settings import StackSettings
from lambda_harness import FakeLambdaContext, load_event, load_handler  # noqa: F401 (re-exported)
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
IMAGES_BUCKET = "images-bucket"
OUTPUT_BUCKET = "output-bucket"
RUN_STATE_TABLE = "labeling-loop-RunStateTable-TEST"
PROJECT = "birds"
VERSION = "birds.2024-05-01"
PROJECT_ARN = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{PROJECT}/1714521600000"
DATASET_ARN = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{PROJECT}/dataset/train/1714521600000"
MODEL_ARN = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{PROJECT}/version/{VERSION}/1714521600000"
WORKTEAM_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/bird-reviewers"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:labelstudio/token-AbCdEf"
EXECUTION = "run-1"
execution_arn = deployed_stack.execution_arn


def make_config(
    execution: str = EXECUTION, stack: dict[str, str] | None = None, **overrides: Any
) -> RunConfig:
    """A valid run configuration (Ground Truth backend, the template's defaults) with `overrides`,
    for an execution of that name, on a stack deployed with the `stack` parameter overrides."""
    raw: dict[str, Any] = {
        "images": f"s3://{IMAGES_BUCKET}/photos/",
        "output": f"s3://{OUTPUT_BUCKET}/labeling-runs/",
        **overrides,
    }
    return validate_input(
        raw,
        execution_name=execution,
        execution_arn=execution_arn(execution),
        stack=stack_settings(**(stack or {})),
    )


def stack_settings(**parameters: str) -> StackSettings:
    """What ValidateInput reads, for a stack deployed with the template's defaults, the test
    buckets, model and workteam, and `parameters` (template parameter overrides)."""
    return deployed_stack.stack_settings(stack_parameters(**parameters))


def create_run_state_table(dynamodb: Any, name: str = RUN_STATE_TABLE) -> None:
    """The template's RunStateTable: one string hash key `pk`."""
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


# Images -------------------------------------------------------------------------------------------


def image_bytes(
    fmt: str = "JPEG",
    size: tuple[int, int] = (640, 480),
    *,
    mode: str = "RGB",
    orientation: int | None = None,
    **save_args: Any,
) -> bytes:
    """An image whose DISPLAYED size is `size`: for EXIF orientations 5-8 the pixels are stored
    turned a quarter (height x width), as a camera held upright writes them."""
    width, height = size
    stored = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    image = Image.new("RGB", stored, (90, 140, 200)).convert(mode)
    buffer = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save_args["exif"] = exif.tobytes()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (640, 480), **kwargs: Any) -> bytes:
    return image_bytes("JPEG", size, **kwargs)


def png(size: tuple[int, int] = (640, 480), **kwargs: Any) -> bytes:
    return image_bytes("PNG", size, **kwargs)


def put_object(s3: Any, bucket: str, key: str, body: bytes, content_type: str | None = None) -> str:
    """Upload and return the object's source-ref (key as S3 stores it)."""
    extra = {"ContentType": content_type} if content_type else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return f"s3://{bucket}/{key}"


# Reading what a run wrote -------------------------------------------------------------------------


def read_jsonl(s3: Any, uri: S3Uri) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read().decode("utf-8")
    return [json.loads(line) for line in body.split("\n") if line]


def read_json(s3: Any, uri: S3Uri) -> Any:
    return json.loads(s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())


def write_jsonl(s3: Any, uri: S3Uri, records: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=body.encode("utf-8"))


def exists(s3: Any, uri: S3Uri) -> bool:
    return "Contents" in s3.list_objects_v2(Bucket=uri.bucket, Prefix=uri.key)


# A fake AWS service behind a real client ----------------------------------------------------------


class ServiceError(Exception):
    """Raised by a responder: the client raises the modelled ClientError with this code."""

    def __init__(self, code: str, message: str = "", status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message or code
        self.status = status


Responder = Callable[[str, dict[str, Any]], dict[str, Any]]


def answer_with(client: Any, responder: Responder) -> list[tuple[str, dict[str, Any]]]:
    """Answer every call of a real boto3 client with `responder(operation, params)`.

    Like botocore's Stubber, it answers in `before-call`: botocore has already validated the
    request against the API model, and the answer is validated against the output shape, so a
    fake that drifts from the real API fails the test. Unlike the Stubber it is stateful, and it
    does not depend on call order (threads are fine). Returns the list of calls it records."""
    calls: list[tuple[str, dict[str, Any]]] = []
    pending = threading.local()
    lock = threading.Lock()

    def remember(params: dict[str, Any], model: Any, **_: Any) -> None:
        pending.params = dict(params)

    def respond(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = getattr(pending, "params", {})
        with lock:
            calls.append((model.name, params))
        try:
            parsed = responder(model.name, params)
        except ServiceError as error:
            body = {"Error": {"Code": error.code, "Message": error.message}, "ResponseMetadata": {}}
            return AWSResponse("https://fake", error.status, {}, None), body
        if model.output_shape is not None:
            validate_parameters(parsed, model.output_shape)
        return AWSResponse("https://fake", 200, {}, None), {**parsed, "ResponseMetadata": {}}

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"before-parameter-build.{service}", remember)
    client.meta.events.register_first(f"before-call.{service}", respond)
    return calls


@dataclass
class FakeCustomLabels:
    """Rekognition Custom Labels as the model-control code sees it: one project, one model version
    whose status the test moves; start/stop behave as the API documents (docs/aws-facts.md §1.1, §1.2)."""

    status: str = "STOPPED"
    min_units: int = 1
    max_units: int | None = None
    project_name: str = PROJECT
    # The labels of the project's (one) dataset, what ListDatasetLabels answers.
    dataset_labels: list[str] = field(default_factory=lambda: ["robin", "sparrow", "wren"])
    # Error codes the next StartProjectVersion / StopProjectVersion calls raise, in order.
    start_errors: list[str] = field(default_factory=list)
    stop_errors: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    client: Any = None

    def attach(self, client: Any) -> FakeCustomLabels:
        self.client = client
        self.calls = answer_with(client, self.respond)
        return self

    def operations(self, name: str) -> list[dict[str, Any]]:
        return [params for operation, params in self.calls if operation == name]

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "DescribeProjects":
            if self.project_name not in params.get("ProjectNames", []):
                return {"ProjectDescriptions": []}
            dataset = {"DatasetArn": DATASET_ARN, "DatasetType": "TRAIN", "Status": "CREATE_COMPLETE"}
            return {
                "ProjectDescriptions": [
                    {
                        "ProjectArn": PROJECT_ARN,
                        "Status": "CREATED",
                        "Feature": "CUSTOM_LABELS",
                        "Datasets": [dataset],
                    }
                ]
            }
        if operation == "ListDatasetLabels":
            if params["DatasetArn"] != DATASET_ARN:
                raise ServiceError("ResourceNotFoundException", "dataset not found")
            return {
                "DatasetLabelDescriptions": [
                    {"LabelName": label, "LabelStats": {"EntryCount": 1}} for label in self.dataset_labels
                ]
            }
        if operation == "DescribeProjectVersions":
            if params["ProjectArn"] != PROJECT_ARN:
                raise ServiceError("ResourceNotFoundException", "project not found")
            if VERSION not in params.get("VersionNames", [VERSION]):
                return {"ProjectVersionDescriptions": []}
            version: dict[str, Any] = {
                "ProjectVersionArn": MODEL_ARN,
                "Status": self.status,
                "StatusMessage": f"The model is {self.status.lower()}",
                "MinInferenceUnits": self.min_units,
            }
            if self.max_units is not None:
                version["MaxInferenceUnits"] = self.max_units
            return {"ProjectVersionDescriptions": [version]}
        if operation == "StartProjectVersion":
            if self.start_errors:
                raise ServiceError(self.start_errors.pop(0))
            if self.status not in ("STOPPED", "TRAINING_COMPLETED", "COPYING_COMPLETED"):
                raise ServiceError("ResourceInUseException", f"model is {self.status}")
            self.status = "STARTING"
            self.min_units = params["MinInferenceUnits"]
            return {"Status": "STARTING"}
        if operation == "StopProjectVersion":
            if self.stop_errors:
                raise ServiceError(self.stop_errors.pop(0))
            if self.status != "RUNNING":
                raise ServiceError("ResourceInUseException", f"model is {self.status}")
            self.status = "STOPPING"
            return {"Status": "STOPPING"}
        raise AssertionError(f"unexpected Rekognition call {operation}")


# Handlers -----------------------------------------------------------------------------------------


def stack_parameters(**overrides: str) -> dict[str, str]:
    """Template parameters of the unit tests' stack: its buckets, model and workteam."""
    return {
        "ImagesBucketName": IMAGES_BUCKET,
        "OutputBucketName": OUTPUT_BUCKET,
        "ProjectVersionArn": MODEL_ARN,
        "WorkteamArn": WORKTEAM_ARN,
        **overrides,
    }


def validate_input_environment(**parameters: str) -> dict[str, str]:
    """The ValidateInput function's environment (Globals included) for that stack."""
    return deployed_stack.function_environment(
        "ValidateInputFunction", stack_parameters(**parameters), table=RUN_STATE_TABLE
    )


# The stack defaults that name places or identities (the model, buckets, workforce).
IDENTITY_FIELDS = frozenset({"projectVersionArn", "images", "output", "workteamArn"})


def numeric_stack_defaults() -> dict[str, Any]:
    """The template's defaults that are not places or identities: numbers and the backend."""
    return {k: v for k, v in stack_settings().run_defaults.items() if k not in IDENTITY_FIELDS}


@dataclass
class FakeExecutions:
    """Step Functions as lease pruning sees it: every execution RUNNING unless the test ended it."""

    ended: dict[str, str] = field(default_factory=dict)  # execution ARN -> ABORTED, TIMED_OUT, ...
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    client: Any = None

    def attach(self, client: Any) -> FakeExecutions:
        self.client = client
        self.calls = answer_with(client, self.respond)
        return self

    def end(self, arn: str, status: str = "ABORTED") -> None:
        self.ended[arn] = status

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        assert operation == "DescribeExecution", operation
        arn = params["executionArn"]
        machine = arn.split(":execution:", 1)[1].rsplit(":", 1)[0]
        return {
            "executionArn": arn,
            "stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}",
            "status": self.ended.get(arn, "RUNNING"),
            "startDate": datetime(2026, 5, 1, tzinfo=UTC),
        }


@dataclass
class FakeLabelingJobs:
    """Ground Truth as the cleanup sees it: job statuses the test sets; a stop moves a job to Stopping."""

    statuses: dict[str, str] = field(default_factory=dict)
    refuse_stop: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    client: Any = None

    def attach(self, client: Any) -> FakeLabelingJobs:
        self.client = client
        self.calls = answer_with(client, self.respond)
        return self

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params["LabelingJobName"]
        if name not in self.statuses:
            raise ServiceError("ValidationException", f"Could not find labeling job {name}.")
        if operation == "StopLabelingJob":
            if name in self.refuse_stop:
                raise ServiceError("ThrottlingException", "Rate exceeded", 400)
            self.statuses[name] = "Stopping"
            return {}
        assert operation == "DescribeLabelingJob", operation
        return describe_labeling_job(name, self.statuses[name])


GT_LAMBDAS = "arn:aws:lambda:us-east-1:432418664414:function"


def describe_labeling_job(name: str, status: str) -> dict[str, Any]:
    """A DescribeLabelingJob answer with its required members."""
    now = datetime(2026, 5, 1, tzinfo=UTC)
    return {
        "LabelingJobStatus": status,
        "LabelCounters": {},
        "CreationTime": now,
        "LastModifiedTime": now,
        "JobReferenceCode": "ref",
        "LabelingJobName": name,
        "LabelingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/{name}",
        "LabelAttributeName": "reviewed-boxes",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://b/k"}}},
        "OutputConfig": {"S3OutputPath": "s3://b/o"},
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/gt",
        "HumanTaskConfig": {
            "WorkteamArn": WORKTEAM_ARN,
            "UiConfig": {"UiTemplateS3Uri": "s3://b/t"},
            "PreHumanTaskLambdaArn": f"{GT_LAMBDAS}:PRE-AdjustmentBoundingBox",
            "TaskTitle": "t",
            "TaskDescription": "d",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 600,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": f"{GT_LAMBDAS}:ACS-AdjustmentBoundingBox"
            },
        },
    }
