"""The execution input: stack defaults, bounds, field-naming errors, derived values, state payload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures_aws import (
    IMAGES_BUCKET,
    MODEL_ARN,
    OUTPUT_BUCKET,
    REGION,
    SECRET_ARN,
    WORKTEAM_ARN,
    execution_arn,
    stack_settings,
    validate_input_environment,
)
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.run_config import RUN_ID, RunConfig, from_state, state_payload
from labeling_loop.kernel.run_input import (
    FROM_THE_EXECUTION,
    FROM_THE_STACK_ONLY,
    MAX_SETTINGS_BYTES,
    RunInput,
    run_id_for,
    validate_input,
)
from labeling_loop.kernel.settings import StackSettings, load

# A stack deployed with the template's defaults plus the two values the user must give (model and
# workteam), as ValidateInput reads it.
FULL_STACK = stack_settings()
# A stack that gives only the template's defaults that are not locations or identities: no model,
# no images or output default, no workteam, no Label Studio. Inputs bring those themselves.
_IDENTITIES = {"projectVersionArn", "images", "output", "workteamArn"}
BARE_STACK = FULL_STACK.model_copy(
    update={"run_defaults": {k: v for k, v in FULL_STACK.run_defaults.items() if k not in _IDENTITIES}}
)
# The same stack with a Label Studio: where the token may go is the stack's, not the input's.
LABEL_STUDIO = "https://ls.example.com:8443"
LS_STACK = BARE_STACK.model_copy(
    update={"label_studio_url": LABEL_STUDIO + "/", "label_studio_token_secret_arn": SECRET_ARN}
)
# A valid input that needs no defaults at all.
VALID: dict[str, Any] = {
    "projectVersionArn": MODEL_ARN,
    "images": f"s3://{IMAGES_BUCKET}/photos/",
    "output": f"s3://{OUTPUT_BUCKET}/runs/",
    "workteamArn": WORKTEAM_ARN,
}


def validate(raw: Any, stack: StackSettings = BARE_STACK, execution_name: str = "exec-1") -> RunConfig:
    return validate_input(
        raw, execution_name=execution_name, execution_arn=execution_arn(execution_name or "x"), stack=stack
    )


def rejection(raw: Any, stack: StackSettings = BARE_STACK) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate(raw, stack)
    return str(caught.value)


# Defaults -----------------------------------------------------------------------------------------


def test_empty_input_runs_with_the_stack_defaults() -> None:
    # GIVEN a stack deployed with the template's defaults, a model and a workteam
    # WHEN a user starts an execution from the console with `{}`
    config = validate({}, FULL_STACK, execution_name="console-start-42")

    # THEN the run gets every default, typed, and a run id from the execution name
    assert config.projectVersionArn == MODEL_ARN
    assert config.images == f"s3://{IMAGES_BUCKET}/"
    assert config.output == f"s3://{OUTPUT_BUCKET}/labeling-runs/"
    assert config.reviewBackend == "groundtruth"
    assert config.workteamArn == WORKTEAM_ARN
    assert config.minInferenceUnits == 1
    assert config.minConfidence == 50.0
    assert config.autoAcceptConfidence is None  # "off"
    assert config.reviewDeadlineHours == 240
    assert config.reviewPollSeconds == 900
    assert config.incremental is False
    assert config.runId == run_id_for("console-start-42", execution_arn("console-start-42"))
    assert config.runId.startswith("console-start-42-")
    assert config.executionArn == execution_arn("console-start-42")


def test_every_stack_default_is_an_input_field_and_every_field_is_resolved() -> None:
    # GIVEN the stack's defaults as template.yaml builds them (RUN_DEFAULTS)
    # THEN each names an input field (a typo there would be rejected, not silently ignored)
    assert FULL_STACK.run_defaults
    assert set(FULL_STACK.run_defaults) <= set(RunInput.model_fields)
    # AND the resolved configuration has the input's fields (but those the input may only repeat
    # from the stack), and who the run is (from the execution)
    assert set(RunInput.model_fields) - set(FROM_THE_STACK_ONLY) | FROM_THE_EXECUTION == set(
        RunConfig.model_fields
    )


def test_input_values_win_over_stack_defaults_and_null_means_default() -> None:
    # GIVEN stack defaults
    # WHEN the input sets some fields and leaves one null
    config = validate({"minConfidence": 70, "modelPollSeconds": 10, "workteamArn": None}, FULL_STACK)

    # THEN the input wins, and null falls back to the stack's default
    assert config.minConfidence == 70.0
    assert config.modelPollSeconds == 10
    assert config.workteamArn == WORKTEAM_ARN


@pytest.mark.parametrize("field", ["imagesPerBatch", "batchesPerInferenceUnit"])
def test_retired_batch_settings_are_refused_with_the_reason(field: str) -> None:
    # WHEN an input still sets a batch size or batches per unit (settings before runs planned them)
    # THEN it fails by name, saying the run plans its batches itself
    assert rejection({**VALID, field: 100}) == (
        f"{field}: is no longer a setting: each run plans its batches from its images and the model's "
        "inference units"
    )


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (None, False)])
def test_incremental_is_off_unless_the_input_asks(value: bool | None, expected: bool) -> None:
    # GIVEN the stack (which has no incremental parameter: the schedule's input sets it)
    # WHEN a run starts with incremental true, false or absent
    config = validate({"incremental": value}, FULL_STACK)
    # THEN it is what the input says, and off by default
    assert config.incremental is expected


def test_auto_accept_default_is_a_number_unless_off() -> None:
    # GIVEN a stack with AutoAcceptConfidence 95
    config = validate({}, stack_settings(AutoAcceptConfidence="95"))
    # THEN runs auto-accept at 95
    assert config.autoAcceptConfidence == 95.0
    # AND an input may still turn it off for one run
    assert (
        validate(
            {"autoAcceptConfidence": "off"}, stack_settings(AutoAcceptConfidence="95")
        ).autoAcceptConfidence
        is None
    )


def test_missing_required_fields_are_named_with_a_hint() -> None:
    # GIVEN a stack with no model, images or output defaults
    # WHEN a run starts with `{}`
    message = rejection({})

    # THEN the error names each missing field and says no default is configured
    for field in ("projectVersionArn", "images", "output"):
        assert f"{field}: is required (no default is configured in the stack)" in message


@pytest.mark.parametrize("raw", [[], "s3://images-bucket/", 42, None])
def test_input_that_is_not_an_object_is_rejected(raw: Any) -> None:
    # WHEN the execution input is not a JSON object
    message = rejection(raw, FULL_STACK)
    # THEN the error says so
    assert message.startswith("input: must be a JSON object")


# Bounds -------------------------------------------------------------------------------------------

# (field, lowest accepted, highest accepted, just below, just above); None = no such neighbour.
BOUNDS: list[tuple[str, Any, Any, Any, Any]] = [
    ("minInferenceUnits", 1, 100, 0, 101),
    ("minConfidence", 0, 100, -0.1, 100.1),
    ("maxImagesPerJob", 1, 100_000, 0, 100_001),
    ("maxLabelsPerJob", 2, 50, 1, 51),
    ("taskTimeLimitSeconds", 30, 28_800, 29, 28_801),
    ("workersPerObject", 1, 9, 0, 10),
    ("reviewDeadlineHours", 0.001, 720, 0, 721),
    ("modelPollSeconds", 1, 3600, 0, 3601),
    ("reviewPollSeconds", 864, 86_400, None, 86_401),
    ("modelStartTimeoutMinutes", 1, 720, 0, 721),
]


@pytest.mark.parametrize(("field", "low", "high", "below", "above"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_numeric_bounds_are_inclusive_and_named(
    field: str, low: Any, high: Any, below: Any, above: Any
) -> None:
    # GIVEN the documented bounds of a numeric field (inclusive), and polls that keep the
    # execution history within its limit whatever the deadlines (checked on their own below)
    base = {**VALID, "reviewPollSeconds": 86_400, "modelStartTimeoutMinutes": 1}
    base = {k: v for k, v in base.items() if k != field}
    # AND a stack that lets runs start as many inference units as the API does
    stack = BARE_STACK.model_copy(update={"inference_units_limit": 100})
    # WHEN a run uses each limit
    for value in (low, high):
        config = validate({**base, field: value}, stack)
        # THEN the limit itself is accepted
        assert getattr(config, field) == value

    # WHEN a run goes one step past a limit
    for value in (below, above):
        if value is None:
            continue
        # THEN it is rejected, and the error starts with the field's name
        assert rejection({**base, field: value}, stack).startswith(f"{field}: ")


def test_auto_accept_confidence_bounds() -> None:
    # GIVEN minConfidence 0, so only the 0-100 bounds of autoAcceptConfidence apply
    base = {**VALID, "minConfidence": 0}
    # THEN 0 and 100 are accepted, and values outside are rejected naming the field
    assert validate({**base, "autoAcceptConfidence": 0}).autoAcceptConfidence == 0
    assert validate({**base, "autoAcceptConfidence": 100}).autoAcceptConfidence == 100
    assert rejection({**base, "autoAcceptConfidence": 100.5}).startswith("autoAcceptConfidence: ")
    assert rejection({**base, "autoAcceptConfidence": -1}).startswith("autoAcceptConfidence: ")


def test_auto_accept_below_min_confidence_is_rejected() -> None:
    # WHEN auto-accept is set below the confidence predictions are kept at
    message = rejection({**VALID, "minConfidence": 60, "autoAcceptConfidence": 55})
    # THEN the error names both fields
    assert "autoAcceptConfidence" in message and "minConfidence" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("minInferenceUnits", "two"),
        ("minInferenceUnits", 1.5),
        ("minConfidence", "high"),
        ("minConfidence", [50]),
        ("incremental", "sometimes"),
        ("labels", "cat"),
        ("labels", [1, 2]),
        ("reviewBackend", "sagemaker"),
        ("taskType", "segmentation"),
        ("images", 7),
    ],
)
def test_wrong_types_and_values_are_rejected_naming_the_field(field: str, value: Any) -> None:
    # WHEN a field has a value of the wrong type or outside its choices
    message = rejection({**VALID, field: value})
    # THEN the error starts with the field's name
    assert message.startswith(f"{field}"), message


def test_labels_are_trimmed_deduplicated_and_sorted() -> None:
    # WHEN the input lists extra labels with spaces and repeats
    config = validate({**VALID, "labels": [" sparrow", "robin", "sparrow ", "Robin"]})
    # THEN reviewers see each name once, trimmed, in a stable order
    assert config.labels == ["Robin", "robin", "sparrow"]


@pytest.mark.parametrize("labels", [["ok", "   "], ["x" * 257], [f"l{i}" for i in range(251)]])
def test_bad_label_lists_are_rejected(labels: list[str]) -> None:
    # WHEN a label is blank or too long, or there are more than 250
    # THEN the error names the labels field
    assert rejection({**VALID, "labels": labels}).startswith("labels")


def test_unknown_fields_are_rejected_by_name() -> None:
    # WHEN the input has a misspelt field
    message = rejection({**VALID, "minConfidense": 70})
    # THEN the error names it instead of silently ignoring it
    assert message == "minConfidense: is not a known input field"


def test_every_bad_field_is_named_in_one_error() -> None:
    # WHEN several fields are wrong
    message = rejection({**VALID, "minConfidence": 500, "workersPerObject": 0, "colour": "red"})
    # THEN one error names them all, so the user fixes them in one go
    for field in ("minConfidence: ", "workersPerObject: ", "colour: is not a known input field"):
        assert field in message


# Formats ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "not-an-arn",
        "arn:aws:rekognition:us-east-1:123456789012:project/birds/1714521600000",  # a project, not a version
        "arn:aws:rekognition:us-east-1:12345678901:project/birds/version/v1/1",  # 11-digit account
        "arn:aws:rekognition:us-east-1:123456789012:project/bi rds/version/v1/1",
        "arn:aws:rekognition:us-east-1:123456789012:project/birds/version/v1/",
        "arn:aws:s3:::images-bucket",
    ],
)
def test_malformed_model_arn_is_rejected_with_the_expected_form(arn: str) -> None:
    # WHEN the model ARN is not a project version ARN
    # THEN the error names the field and shows the expected form
    message = rejection({**VALID, "projectVersionArn": arn})
    assert message.startswith("projectVersionArn: must be a Custom Labels model version ARN")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("images", "https://images-bucket.s3.amazonaws.com/photos/"),
        ("images", "s3://Images_Bucket/photos/"),
        ("images", "s3://ab/"),
        ("output", "s3://-output/"),
        ("output", "output-bucket/runs/"),
        ("workteamArn", "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/x"),
        ("labelStudioUrl", "ftp://labelstudio.example.com"),
        ("labelStudioUrl", "labelstudio.example.com"),
        ("labelStudioTokenSecretArn", "arn:aws:ssm:us-east-1:123456789012:parameter/token"),
        ("jobNamePrefix", "Lab"),
        ("jobNamePrefix", "labelingjob"),  # 11 characters
    ],
)
def test_malformed_uris_arns_and_names_are_rejected_by_field(field: str, value: str) -> None:
    # WHEN an S3 URI, ARN, URL or name is malformed
    # THEN the error starts with that field's name
    assert rejection({**VALID, field: value}).startswith(f"{field}: ")


def test_s3_locations_are_normalised_to_prefixes() -> None:
    # WHEN images and output are given without a trailing slash (or as a bare bucket)
    config = validate({**VALID, "images": f"s3://{IMAGES_BUCKET}/photos", "output": f"s3://{OUTPUT_BUCKET}"})
    # THEN both are prefixes with exactly one trailing slash
    assert config.images == f"s3://{IMAGES_BUCKET}/photos/"
    assert config.output == f"s3://{OUTPUT_BUCKET}/"


def test_an_input_may_repeat_the_stacks_label_studio_but_not_name_another() -> None:
    # GIVEN a stack whose Label Studio is LABEL_STUDIO (the token goes there, and only there)
    base = {**VALID, "reviewBackend": "labelstudio"}
    # WHEN an input repeats it (with or without a trailing slash) and its secret
    for url in (LABEL_STUDIO, LABEL_STUDIO + "/"):
        config = validate({**base, "labelStudioUrl": url, "labelStudioTokenSecretArn": SECRET_ARN}, LS_STACK)
        # THEN the run is accepted, and the URL is no run setting
        assert config.reviewBackend == "labelstudio"
        assert "labelStudioUrl" not in config.model_dump()
    # WHEN an input names another server, the metadata service, or credentials in the URL
    for url in (
        "https://ls.attacker.example",
        "http://169.254.169.254/",
        "https://user:secret-pw@ls.example.com:8443",
        "http://ls.example.com:8443",
    ):
        message = rejection({**base, "labelStudioUrl": url}, LS_STACK)
        # THEN it is refused naming the field, without repeating what was given
        assert message.startswith("labelStudioUrl: not the stack's LabelStudioUrl"), message
        assert "secret-pw" not in message and "attacker" not in message
    # WHEN an input names another secret
    other = SECRET_ARN.replace("token", "other")
    message = rejection({**base, "labelStudioTokenSecretArn": other}, LS_STACK)
    assert message.startswith("labelStudioTokenSecretArn: not the stack's LabelStudioTokenSecretArn")


# Stack restrictions -------------------------------------------------------------------------------


def test_images_outside_the_stacks_bucket_are_rejected() -> None:
    # GIVEN a stack whose functions may only read the images bucket
    # WHEN a run points at another bucket
    message = rejection({**VALID, "images": "s3://someone-elses-bucket/photos/"}, FULL_STACK)
    # THEN it fails before the model starts, naming both buckets
    assert message == (
        f"images: bucket 'someone-elses-bucket' is not the stack's images bucket '{IMAGES_BUCKET}'"
    )


def test_output_outside_the_stacks_bucket_is_rejected() -> None:
    # GIVEN a stack whose functions may only write the output bucket
    # WHEN a run points its output elsewhere
    # THEN it fails before the model starts, naming both buckets
    message = rejection({**VALID, "output": "s3://other-output/runs/"}, FULL_STACK)
    assert message == f"output: bucket 'other-output' is not the stack's output bucket '{OUTPUT_BUCKET}'"


def test_a_model_in_another_region_is_rejected() -> None:
    # GIVEN a stack in us-east-1
    arn = MODEL_ARN.replace(REGION, "eu-west-1")
    # WHEN the input names a model in eu-west-1
    message = rejection({**VALID, "projectVersionArn": arn}, BARE_STACK)
    # THEN the error names the field and both regions
    assert message == "projectVersionArn: the model is in eu-west-1, the stack in us-east-1"


def test_region_falls_back_to_aws_default_region() -> None:
    # GIVEN only AWS_DEFAULT_REGION set (a script, not the Lambda runtime)
    environment = {k: v for k, v in validate_input_environment().items() if k != "AWS_REGION"}
    stack = load(StackSettings, {**environment, "AWS_DEFAULT_REGION": REGION})
    # WHEN the model is in another region
    # THEN the mismatch is still caught
    arn = MODEL_ARN.replace(REGION, "eu-west-1")
    message = rejection({**VALID, "projectVersionArn": arn, "output": None}, stack)
    assert message.startswith("projectVersionArn: the model is in eu-west-1")


# What the stack grants: models, inference units, workforces, labels, size --------------------------


def test_a_model_of_a_project_the_stack_does_not_allow_is_rejected() -> None:
    # GIVEN a stack that allows the models of project "birds" (its ProjectVersionArn's project)
    assert FULL_STACK.allowed_project_arns == [MODEL_ARN.split("/version/")[0] + "/*"]
    # WHEN a run names a model of another project of the same account and region
    other = MODEL_ARN.replace("project/birds/", "project/birdsong/")
    message = rejection({**VALID, "projectVersionArn": other}, BARE_STACK)
    # THEN it is refused before the model starts, naming the field, the project and what is allowed
    assert message.startswith("projectVersionArn: project 'birdsong' is not one whose models this stack")
    assert "project/birds/*" in message
    # AND a stack that allows no project refuses every model, saying how to allow one
    nothing = BARE_STACK.model_copy(update={"allowed_project_arns": []})
    assert "set AllowedProjectArns or ProjectVersionArn" in rejection(VALID, nothing)


def test_inference_units_above_the_stacks_limit_are_rejected() -> None:
    # GIVEN a stack that lets a run start a model with at most 5 units (the template's default)
    assert BARE_STACK.inference_units_limit == 5
    # THEN 5 are accepted and 6 refused, naming the field and the stack parameter
    assert validate({**VALID, "minInferenceUnits": 5}).minInferenceUnits == 5
    message = rejection({**VALID, "minInferenceUnits": 6})
    assert message.startswith("minInferenceUnits: 6 inference units, more than the 5")
    assert "InferenceUnitsLimit" in message


@pytest.mark.parametrize(
    "workteam",
    [
        "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default",
        f"arn:aws:sagemaker:{REGION}:123456789012:workteam/vendor-crowd/some-vendor",
    ],
)
def test_workforces_other_than_private_need_the_stacks_consent(workteam: str) -> None:
    # GIVEN a stack that allows private workteams only (the default)
    assert BARE_STACK.workteam_types == ["private-crowd"]
    # WHEN a Ground Truth run names a public or vendor workteam
    message = rejection({**VALID, "workteamArn": workteam})
    # THEN it is refused, naming the field and the type
    assert message.startswith("workteamArn: a ") and "WorkteamTypes" in message
    # AND a stack that allows that type accepts it
    kind = workteam.split("workteam/")[1].split("/")[0]
    allowing = BARE_STACK.model_copy(update={"workteam_types": ["private-crowd", kind]})
    assert validate({**VALID, "workteamArn": workteam}, allowing).workteamArn == workteam


def test_more_labels_than_a_review_offers_are_rejected() -> None:
    # WHEN the input names more labels than maxLabelsPerJob
    labels = [f"label-{i}" for i in range(12)]
    message = rejection({**VALID, "labels": labels, "maxLabelsPerJob": 10})
    # THEN it is refused before the model starts (not at Plan Review, after it was billed)
    assert message.startswith("labels: 12 labels, more than maxLabelsPerJob (10)")
    # AND more than any review offers is refused by the field's own bound
    assert rejection({**VALID, "labels": [f"l{i}" for i in range(300)]}).startswith("labels: ")


@pytest.mark.parametrize(
    "label", ["two\nlines", "tab\there", "zero\u200bwidth", "bell\u0007", "nb\u00a0space"]
)
def test_labels_with_invisible_characters_are_rejected(label: str) -> None:
    # WHEN a label holds a control, format or separator character other than a space
    message = rejection({**VALID, "labels": ["cat", label]})
    # THEN it is refused, naming the field and the character
    assert message.startswith("labels: label ") and "U+" in message


def test_an_input_too_large_to_carry_through_the_run_is_rejected() -> None:
    # GIVEN an input of about 250 KB: under Step Functions' 256 KiB, so the execution would start,
    # pass this state and fail a later one with States.DataLimitExceeded (no Catch for it)
    raw = {**VALID, "notes": "x" * 250_000}
    # THEN it is refused first, naming its largest field, before the field names are checked
    message = rejection(raw)
    assert message.startswith("notes: the execution input takes 250,") and "65,536" in message


def test_the_largest_valid_label_set_fits_the_settings_budget() -> None:
    # GIVEN the most labels a review offers, each as long as allowed, in 4-byte characters
    labels = [f"{i:02d}" + "\U0001f426" * 254 for i in range(50)]
    config = validate({**VALID, "labels": labels, "maxLabelsPerJob": 50})
    # THEN the settings the state machine carries stay within their budget
    size = len(json.dumps(state_payload(config), ensure_ascii=False).encode("utf-8"))
    assert size <= MAX_SETTINGS_BYTES


# Review backends ----------------------------------------------------------------------------------


def test_ground_truth_needs_a_workteam() -> None:
    # WHEN the Ground Truth backend has no workteam
    # THEN the error names workteamArn
    message = rejection({k: v for k, v in VALID.items() if k != "workteamArn"})
    assert "workteamArn is required when reviewBackend is groundtruth" in message


def test_labelstudio_needs_the_stacks_url_and_token_secret_but_no_workteam() -> None:
    # GIVEN the Label Studio backend
    base = {k: v for k, v in VALID.items() if k != "workteamArn"} | {"reviewBackend": "labelstudio"}
    # WHEN the stack has no Label Studio URL, or no secret
    no_secret = LS_STACK.model_copy(update={"label_studio_token_secret_arn": ""})
    # THEN the run is refused, naming the backend and the stack parameter
    assert rejection(base, BARE_STACK) == (
        "reviewBackend: labelstudio needs the stack's Label Studio, but the stack sets no LabelStudioUrl"
    )
    assert rejection(base, no_secret).endswith("the stack sets no LabelStudioTokenSecretArn")
    # WHEN the stack has both, no workteam is needed
    config = validate(base, LS_STACK)
    assert config.reviewBackend == "labelstudio"
    assert config.workteamArn is None


@pytest.mark.parametrize(
    ("url", "http_host", "reason"),
    [
        ("http://ls.example.com", "", "uses http://"),
        ("http://ls.example.com", "other.example.com", "uses http://"),
        ("https://user:pw@ls.example.com", "", "must not carry credentials"),
        ("https://ls.example.com/?next=x", "", "must not carry a query"),
        ("https://169.254.169.254/", "", "link-local"),
        ("http://169.254.169.254/", "169.254.169.254", "link-local"),
        ("https://[fe80::1]/", "", "link-local"),
        ("ftp://ls.example.com", "", "must be an https:// URL"),
    ],
)
def test_a_stack_label_studio_url_that_breaks_a_rule_refuses_label_studio_runs(
    url: str, http_host: str, reason: str
) -> None:
    # GIVEN a stack whose LabelStudioUrl is plain http, carries credentials, or is link-local
    stack = LS_STACK.model_copy(update={"label_studio_url": url, "label_studio_http_host": http_host})
    # WHEN a Label Studio run starts
    message = rejection({**VALID, "reviewBackend": "labelstudio"}, stack)
    # THEN it is refused before anything starts, saying which rule, without repeating the URL
    assert message.startswith("reviewBackend: labelstudio needs the stack's Label Studio, but the stack's")
    assert reason in message and "pw@" not in message


def test_plain_http_is_accepted_for_the_host_the_stack_names() -> None:
    # GIVEN a stack whose Label Studio runs inside its VPC without TLS, named in LabelStudioHttpHost
    stack = LS_STACK.model_copy(
        update={"label_studio_url": "http://10.0.3.7:8080", "label_studio_http_host": "10.0.3.7"}
    )
    # THEN Label Studio runs are accepted
    assert validate({**VALID, "reviewBackend": "labelstudio"}, stack).reviewBackend == "labelstudio"


def test_empty_workteam_string_counts_as_missing() -> None:
    # WHEN the workteam is an empty string (an empty stack parameter)
    # THEN it is missing, not malformed
    assert "workteamArn is required" in rejection({**VALID, "workteamArn": ""})


# History guard ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "fastest"),
    [
        # a labeling job's execution: 11 events per poll for 720 h + 2 h to stop, 1,600 for the rest
        ("groundtruth", 1223),
        # the run's own execution: 9 per review poll, plus 61 model polls at the defaults
        ("labelstudio", 1022),
    ],
)
def test_review_polls_that_would_overflow_the_execution_history_are_rejected(
    backend: str, fastest: int
) -> None:
    # GIVEN a 30-day review deadline
    base = {**VALID, "reviewBackend": backend, "reviewDeadlineHours": 720}
    # WHEN polling one second faster than the history allows
    message = rejection({**base, "reviewPollSeconds": fastest - 1}, LS_STACK)
    # THEN the run is refused, naming the field, why, and the interval that works
    assert message.startswith("reviewPollSeconds: polling")
    assert "over the 25,000 an execution keeps" in message and f"at least every {fastest} s" in message
    # AND that interval is fine
    assert validate({**base, "reviewPollSeconds": fastest}, LS_STACK).reviewPollSeconds == fastest


def test_a_possible_second_review_wave_doubles_the_review_polls_counted() -> None:
    # GIVEN a Label Studio run with auto-accept on: the audit gate may send its auto-accepted images
    # to people in a second wave, which polls as long again
    base = {**VALID, "reviewBackend": "labelstudio", "reviewDeadlineHours": 720, "autoAcceptConfidence": 95}
    # THEN the fastest poll allowed is about twice as long as with one wave
    two = validate({**base, "reviewPollSeconds": 86_400}, LS_STACK)
    one = validate({**base, "auditGateAction": "defer", "reviewPollSeconds": 86_400}, LS_STACK)
    assert (two.review_waves, one.review_waves) == (2, 1)
    assert two.fastest_review_poll() > 1.9 * one.fastest_review_poll()
    assert rejection({**base, "reviewPollSeconds": two.fastest_review_poll() - 1}, LS_STACK).startswith(
        "reviewPollSeconds"
    )


def test_model_polls_that_would_overflow_the_execution_history_are_rejected() -> None:
    # WHEN the model is polled every second for 12 hours (43,201 polls)
    message = rejection({**VALID, "modelPollSeconds": 1, "modelStartTimeoutMinutes": 720})
    # THEN the run is refused, naming the field
    assert message.startswith("modelPollSeconds: polling every 1 s")


def test_review_poll_of_zero_seconds_is_rejected() -> None:
    # WHEN reviews are to be polled without any wait
    # THEN the run is refused, naming reviewPollSeconds
    assert "reviewPollSeconds" in rejection({**VALID, "reviewPollSeconds": 0, "reviewDeadlineHours": 1})


# Run id -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("execution_name", "readable"),
    [
        ("exec-1", "exec-1"),
        ("My_Run_2024-05-01T10-00-00Z", "my-run-2024-05-01t10-00-00z"),
        ("--weekly--run--", "weekly-run"),
        ("1f0c6a4e-5b6e-4b8e-9d5c-0c1f6c0e7a11", "1f0c6a4e-5b6e-4b8e-9d5c-0c1f6c0"),  # cut at 31
        ("", "run"),
        ("____", "run"),
        ("日本語", "run"),
        ("a" * 30 + "-" + "b" * 10, "a" * 30),  # cut at 31 characters, no trailing hyphen
    ],
)
def test_run_id_is_the_execution_name_cleaned_plus_a_hash_of_the_execution(
    execution_name: str, readable: str
) -> None:
    # WHEN a run starts
    run_id = validate(VALID, execution_name=execution_name).runId
    # THEN its id reads like the execution's name, is unique to the execution, and fits job names
    digest = run_id_for(execution_name, execution_arn(execution_name or "x")).rsplit("-", 1)[1]
    assert run_id == f"{readable}-{digest}" and len(digest) == 8
    assert RUN_ID.fullmatch(run_id) and len(run_id) <= 40


def test_executions_whose_names_clean_to_the_same_text_get_different_run_ids() -> None:
    # GIVEN two executions whose names clean to the same id ("run-1"), or differ past the cut
    names = ["Run_1", "run.1", "a" * 40 + "x", "a" * 40 + "y"]
    # THEN no two of them share a run id (folder, jobs, Label Studio project, claims)
    ids = {validate(VALID, execution_name=name).runId for name in names}
    assert len(ids) == len(names)


def test_the_run_id_is_not_an_input_field() -> None:
    # WHEN an input tries to choose its run id (it would share another run's folder and jobs)
    # THEN it is rejected by name
    assert rejection({**VALID, "runId": "spring-batch"}) == "runId: is not a known input field"


# Derived values and the state payload -------------------------------------------------------------


def test_derived_values() -> None:
    # GIVEN a run
    # THEN region, project and version follow from the model's ARN
    config = validate({**VALID, "minInferenceUnits": 3})
    assert config.model_region == REGION
    assert config.project_name == "birds"
    assert config.version_name == "birds.2024-05-01"


def test_state_payload_carries_the_keys_the_state_machine_reads() -> None:
    # GIVEN a validated run
    config = validate(VALID, execution_name="exec-7")

    # WHEN it becomes the state machine's payload
    payload = state_payload(config)

    # THEN the labeling jobs' Distributed Map gets a bucket and a key, and the run folder is named
    assert payload["outputBucket"] == OUTPUT_BUCKET
    assert config.runId.startswith("exec-7-")
    assert payload["runPrefix"] == f"s3://{OUTPUT_BUCKET}/runs/{config.runId}/"
    assert payload["reviewJobsKey"] == f"runs/{config.runId}/review/jobs.json"
    # AND every setting is there, JSON only, and small (settings, never image data)
    assert set(RunConfig.model_fields) <= set(payload)
    encoded = json.dumps(payload)
    assert len(encoded) < 4096
    assert set(payload) - set(RunConfig.model_fields) == {
        "outputBucket",
        "runPrefix",
        "reviewJobsKey",
    }


def test_every_later_state_reads_back_the_same_config() -> None:
    # GIVEN the payload the state machine carries (a JSON round trip, as Step Functions does)
    config = validate({**VALID, "labels": ["robin"], "autoAcceptConfidence": 90}, execution_name="exec-8")
    payload = json.loads(json.dumps(state_payload(config)))
    # WHEN a later function reads it
    # THEN it gets the same configuration, derived keys dropped
    assert from_state(payload) == config


# Defects found by these tests, fixed since: they guard against a return. --------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jobNamePrefix", "lab\n"),
        ("projectVersionArn", MODEL_ARN + "\n"),
        ("workteamArn", WORKTEAM_ARN + "\n"),
    ],
)
def test_trailing_newline_is_rejected(field: str, value: str) -> None:
    # WHEN a value pasted with a trailing newline reaches the input
    # THEN it is rejected (a run id with a newline would end up in S3 keys and job names)
    assert rejection({**VALID, field: value}).startswith(f"{field}: ")


def test_non_ascii_digits_in_the_account_are_rejected() -> None:
    # WHEN the account id is written in non-ASCII digits
    # THEN the ARN is rejected
    arn = MODEL_ARN.replace("123456789012", "١٢٣٤٥٦٧٨٩٠١٢")  # Arabic-Indic digits
    assert rejection({**VALID, "projectVersionArn": arn}).startswith("projectVersionArn: ")


@pytest.mark.parametrize("field", ["minInferenceUnits", "minConfidence", "modelPollSeconds"])
def test_booleans_are_not_numbers(field: str) -> None:
    # WHEN a number field is given `true` (a typo in the execution input)
    # THEN it is rejected rather than read as 1
    assert rejection({**VALID, field: True}).startswith(f"{field}: ")
