"""What CreateLabelingJob checks before it accepts a job (docs/aws-facts.md §3.1 request rules,
§3.2 HumanTaskConfig, §3.3 AWS-owned PRE-/ACS- Lambdas), beyond botocore's model, which
`EmulatedService.handle` has checked already: the label attribute name, the role and workteam the
stack created, the task type its Lambda ARNs name, the input manifest, the label category file, the
worker task template and the output bucket.

AWS's published values (the PRE-/ACS- accounts per region, the bounding-box label quota) are read
from labeling_loop.review.groundtruth.aws_facts, the one copy the loop builds its jobs with: both
stand for what AWS publishes, and tests/contract/test_groundtruth_facts.py checks that copy against
docs/aws-facts.md. What the emulator checks with them is its own (AWS's behaviour), so a job the loop
builds wrongly (another region's account, a PRE- Lambda as the ACS- one, another task type) still
fails here as it would on AWS.

Emulator choice where AWS documents nothing: both Lambda ARNs are required (omitting them is
undocumented for built-in tasks, §3.2, §8), and only input from S3 is emulated (no streaming jobs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from labeling_loop.review.groundtruth.aws_facts import AWS_TASK_LAMBDA_ACCOUNTS, MAX_DETECTION_LABELS

from localcloud.services.base import ServiceError

EMULATED_BUILTINS = {"BoundingBox", "AdjustmentBoundingBox"}
_BUILTIN_RE = re.compile(
    r"arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:(?P<kind>PRE|ACS)-(?P<type>[A-Za-z0-9]+)"
)
MAX_LINE_CHARS = 100_000  # input manifest line (§3.1)


@dataclass(frozen=True)
class CheckedRequest:
    """What a valid request gives the job: its built-in task type (None for a custom task), the
    input manifest's lines, the label categories and the output folder (bucket, "<prefix>/<name>/")."""

    builtin_type: str | None
    lines: list[dict[str, Any]]
    labels: list[str] | None
    output_prefix: tuple[str, str]


def check_create_request(
    s3: Any,
    params: dict[str, Any],
    region: str,
    known_roles: tuple[str, ...] | None,
    known_workteams: tuple[str, ...] | None,
) -> CheckedRequest:
    """Raise ServiceError("ValidationException") where CreateLabelingJob would refuse `params`."""
    attribute = params["LabelAttributeName"]
    if attribute.endswith("-metadata"):
        raise ServiceError("ValidationException", "LabelAttributeName cannot end with '-metadata'.")
    if attribute.endswith("-ref"):
        # Only semantic segmentation, video frame and 3D point cloud jobs (not emulated) may end in -ref.
        raise ServiceError(
            "ValidationException",
            "LabelAttributeName can end with '-ref' only for "
            "semantic segmentation, video frame and 3D point cloud labeling jobs.",
        )
    if known_roles is not None and params["RoleArn"] not in known_roles:
        raise ServiceError("ValidationException", f"Could not assume role {params['RoleArn']}.")
    task = params["HumanTaskConfig"]
    if known_workteams is not None and task["WorkteamArn"] not in known_workteams:
        raise ServiceError("ValidationException", f"Workteam {task['WorkteamArn']} does not exist.")
    builtin_type = _task_type(task, region)
    lines = _read_manifest(s3, params["InputConfig"])
    labels = _read_label_categories(s3, params.get("LabelCategoryConfigS3Uri"), builtin_type)
    _check_template(s3, task.get("UiConfig", {}))
    output_prefix = _output_prefix(s3, params["OutputConfig"]["S3OutputPath"], params["LabelingJobName"])
    return CheckedRequest(builtin_type, lines, labels, output_prefix)


def split_s3(uri: str, what: str, allow_empty_key: bool = False) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ServiceError("ValidationException", f"The {what} {uri} is not an s3:// URI.")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or (not key and not allow_empty_key):
        raise ServiceError("ValidationException", f"The {what} {uri} is not a valid S3 URI.")
    return bucket, key


def _task_type(task: dict[str, Any], region: str) -> str | None:
    """The emulated built-in task type, or None for a custom task (both Lambdas ours)."""
    pre = task.get("PreHumanTaskLambdaArn")
    acs = (task.get("AnnotationConsolidationConfig") or {}).get("AnnotationConsolidationLambdaArn")
    if not pre or not acs:
        raise ServiceError(
            "ValidationException",
            "The emulator needs PreHumanTaskLambdaArn and AnnotationConsolidationLambdaArn "
            "(omitting them is undocumented for built-in tasks).",
        )
    pre_builtin, acs_builtin = _builtin(pre, "PRE", region), _builtin(acs, "ACS", region)
    if pre_builtin is None and acs_builtin is None:
        return None
    if pre_builtin != acs_builtin:
        raise ServiceError(
            "ValidationException",
            f"PreHumanTaskLambdaArn {pre} and AnnotationConsolidationLambdaArn {acs} "
            "are not the same task type.",
        )
    if pre_builtin not in EMULATED_BUILTINS:
        raise ServiceError("ValidationException", f"Built-in task type {pre_builtin} is not emulated.")
    return pre_builtin


def _builtin(arn: str, kind: str, region: str) -> str | None:
    match = _BUILTIN_RE.fullmatch(arn)
    if match is None or match["account"] not in AWS_TASK_LAMBDA_ACCOUNTS.values():
        return None  # a customer Lambda
    if match["kind"] != kind:
        raise ServiceError("ValidationException", f"{arn} is not a {kind} Lambda function.")
    if match["region"] != region or AWS_TASK_LAMBDA_ACCOUNTS.get(match["region"]) != match["account"]:
        raise ServiceError("ValidationException", f"{arn} is not a Ground Truth function of {region}.")
    return match["type"]


def _get_s3(s3: Any, uri: str, what: str) -> bytes:
    bucket, key = split_s3(uri, what)
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        raise ServiceError("ValidationException", f"Could not read the {what} {uri}: {error}") from error


def _read_manifest(s3: Any, input_config: dict[str, Any]) -> list[dict[str, Any]]:
    source = input_config["DataSource"].get("S3DataSource")
    if source is None:
        raise ServiceError("ValidationException", "Only S3DataSource input is emulated (no streaming jobs).")
    uri = source["ManifestS3Uri"]
    text = _get_s3(s3, uri, "input manifest").decode("utf-8")
    lines: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_CHARS:
            raise ServiceError(
                "ValidationException", f"Line {number} of {uri} exceeds {MAX_LINE_CHARS} characters."
            )
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ServiceError("ValidationException", f"Line {number} of {uri} is not valid JSON.") from error
        if not isinstance(line, dict) or not ("source-ref" in line or "source" in line):
            raise ServiceError(
                "ValidationException", f"Line {number} of {uri} has neither 'source-ref' nor 'source'."
            )
        lines.append(line)
    if not lines:
        raise ServiceError("ValidationException", f"The input manifest {uri} has no data objects.")
    return lines


def _read_label_categories(s3: Any, uri: str | None, builtin_type: str | None) -> list[str] | None:
    if uri is None:
        if builtin_type is not None:
            raise ServiceError(
                "ValidationException", "LabelCategoryConfigS3Uri is required for this task type."
            )
        return None
    try:
        document = json.loads(_get_s3(s3, uri, "label category configuration file"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ServiceError("ValidationException", f"{uri} is not valid JSON.") from error
    # §3.1: {"document-version": "2018-11-28", "labels": [{"label": ...}, ...]}
    if not isinstance(document, dict) or document.get("document-version") != "2018-11-28":
        raise ServiceError("ValidationException", f"{uri}: document-version must be 2018-11-28.")
    entries = document.get("labels")
    if not isinstance(entries, list) or not entries:
        raise ServiceError("ValidationException", f"{uri}: 'labels' must be a non-empty list.")
    labels: list[str] = []
    for entry in entries:
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(label, str) or not 1 <= len(label) <= 256:
            raise ServiceError(
                "ValidationException", f"{uri}: every label needs a 'label' of 1-256 characters."
            )
        if label in labels:
            raise ServiceError("ValidationException", f"{uri}: duplicate label {label!r}.")
        labels.append(label)
    if builtin_type in EMULATED_BUILTINS and len(labels) > MAX_DETECTION_LABELS:
        raise ServiceError(
            "ValidationException", f"Bounding box jobs accept at most {MAX_DETECTION_LABELS} labels."
        )
    return labels


def _check_template(s3: Any, ui_config: dict[str, Any]) -> None:
    uri = ui_config.get("UiTemplateS3Uri")
    if uri is None:
        raise ServiceError("ValidationException", "UiConfig.UiTemplateS3Uri is required for this task type.")
    _get_s3(s3, uri, "worker task template")


def _output_prefix(s3: Any, s3_output_path: str, name: str) -> tuple[str, str]:
    bucket, key = split_s3(s3_output_path, "output path", allow_empty_key=True)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        raise ServiceError("ValidationException", f"Cannot access the output bucket {bucket}.") from error
    prefix = f"{key.rstrip('/')}/" if key else ""
    return bucket, f"{prefix}{name}/"
