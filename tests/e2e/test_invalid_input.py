"""Bad execution inputs fail in the first state, naming the field, before anything is started or billed.

Among them, inputs that reach for more than the stack grants (docs/security.md): another Label
Studio (the token would follow), a model of another project, more inference units than allowed, a
public workforce, more labels than a review offers, an input too large to carry through the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from run_checks import entered_states

from localcloud.engine.cloud import LocalCloud
from localcloud.runner import IMAGES_PREFIX, default_config, execute, local_cloud, prepare, run_state_table

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True, scope="module")
def _no_machine_credentials() -> Iterator[None]:
    # Overrides conftest's per-test fixture: the cloud below lives for the whole module and sets
    # fake credentials itself; removing them after it started would send clients to the instance
    # metadata service. So the machine's credentials are removed once, before the cloud starts.
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield


LABEL_STUDIO = "https://labelstudio.example.com"
TOKEN_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:labeling-loop/label-studio-token-AbCdEf"


@pytest.fixture(scope="module")
def deployed(
    _no_machine_credentials: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalCloud, Any, str, str]]:
    # One deployment for every bad input: each execution fails in its first state anyway. The stack
    # has a Label Studio (whose token no input may send elsewhere) and allows the models of the
    # project "shapes" only; the account also holds a model of another project.
    images = tmp_path_factory.mktemp("no-images")
    with local_cloud(default_config()) as cloud:
        parameters = {"LabelStudioUrl": LABEL_STUDIO, "LabelStudioTokenSecretArn": TOKEN_SECRET}
        stack, arn, _ = prepare(cloud, images, None, parameters=parameters)
        other = cloud.add_model(project=OTHER_PROJECT)
        yield cloud, stack, arn, other


def _good_input(stack: Any, arn: str) -> dict[str, Any]:
    return {
        "projectVersionArn": arn,
        "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
        "labels": ["circle", "square"],
    }


OTHER_PROJECT = "someone-elses-project"
OTHER_PROJECT_ARN = (
    f"arn:aws:rekognition:us-east-1:123456789012:project/{OTHER_PROJECT}/version/v1/1712345678901"
)
# About 250 KB of input, under the 256 KiB Step Functions accepts: it would pass the first state
# and fail a later one with States.DataLimitExceeded, which no Catch handles.
HUGE_LABELS = ["x" * 244] * 1000
OTHER_REGION_ARN = "arn:aws:rekognition:eu-west-1:123456789012:project/shapes/version/v1/1712345678901"
CASES = [
    pytest.param({"projectVersionArn": None}, "projectVersionArn", "is required", id="missing-model-arn"),
    pytest.param(
        {"projectVersionArn": "arn:aws:rekognition:us-east-1:123456789012:project/shapes/1712345678901"},
        "projectVersionArn",
        "model version ARN",
        id="project-arn-not-version-arn",
    ),
    pytest.param(
        {"projectVersionArn": OTHER_REGION_ARN},
        "projectVersionArn",
        "eu-west-1",
        id="model-in-another-region",
    ),
    pytest.param(
        {"images": "s3://someone-elses-bucket/photos/"},
        "images",
        "someone-elses-bucket",
        id="images-outside-stack",
    ),
    pytest.param({"images": "photos/"}, "images", "", id="images-not-an-s3-uri"),
    pytest.param({"minConfidence": 500}, "minConfidence", "100", id="min-confidence-500"),
    pytest.param({"minConfidence": True}, "minConfidence", "boolean", id="min-confidence-boolean"),
    pytest.param({"minConfidense": 60}, "minConfidense", "not a known input field", id="unknown-field"),
    pytest.param(
        {"reviewDeadlineHours": 720, "reviewPollSeconds": 864},
        "reviewPollSeconds",
        "25,000",
        id="polls-over-the-history-budget",
    ),
    # What the stack grants, and no more:
    pytest.param(
        {"reviewBackend": "labelstudio", "labelStudioUrl": "https://labelstudio.attacker.example"},
        "labelStudioUrl",
        "not the stack's LabelStudioUrl",
        id="another-label-studio-host",
    ),
    pytest.param(
        {"reviewBackend": "labelstudio", "labelStudioUrl": "http://169.254.169.254/"},
        "labelStudioUrl",
        "not the stack's LabelStudioUrl",
        id="instance-metadata-url",
    ),
    pytest.param(
        {"labelStudioTokenSecretArn": TOKEN_SECRET.replace("label-studio-token", "database-password")},
        "labelStudioTokenSecretArn",
        "not the stack's LabelStudioTokenSecretArn",
        id="another-secret",
    ),
    pytest.param(
        {"projectVersionArn": OTHER_PROJECT_ARN},
        "projectVersionArn",
        OTHER_PROJECT,
        id="model-of-another-project",
    ),
    pytest.param({"minInferenceUnits": 200}, "minInferenceUnits", "100", id="200-inference-units"),
    pytest.param(
        {"minInferenceUnits": 6}, "minInferenceUnits", "InferenceUnitsLimit", id="units-over-the-stack-limit"
    ),
    pytest.param(
        {"workteamArn": "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default"},
        "workteamArn",
        "public-crowd",
        id="public-workteam",
    ),
    pytest.param({"labels": [f"label-{i}" for i in range(300)]}, "labels", "50", id="300-labels"),
    pytest.param({"labels": ["two\nlines"]}, "labels", "U+000A", id="label-with-a-line-break"),
    pytest.param({"labels": HUGE_LABELS}, "labels", "bytes", id="250-kb-input"),
]


@pytest.mark.parametrize(("change", "field", "mention"), CASES)
def test_a_bad_input_fails_in_the_first_state_naming_the_field(
    deployed: tuple[LocalCloud, Any, str, str],
    change: dict[str, Any],
    field: str,
    mention: str,
    request: pytest.FixtureRequest,
) -> None:
    cloud, stack, arn, other = deployed
    # GIVEN a valid input with one field made wrong (None removes the field)
    run_input = {**_good_input(stack, arn), **change}
    run_input = {k: v for k, v in run_input.items() if v is not None}
    name = "bad-" + request.node.callspec.id
    # WHEN it runs
    result = execute(cloud, stack, arn, run_input, name, timeout=60)
    # THEN it fails with InvalidInput, and the message starts with the field's name
    assert result.summary["status"] == "FAILED", result.summary
    assert result.summary["error"] == "InvalidInput", result.summary
    # AND the cause is that message alone, one line (not the Lambda runtime's JSON and stack trace)
    message = result.summary["cause"]
    assert message.startswith(f"{field}:") or f"; {field}:" in message, message
    assert mention in message, message
    assert "\n" not in message and "stackTrace" not in message, message
    # AND only the first state ran (then the two that fail with its message): no cleanup was needed
    # because nothing was started
    assert entered_states(result) == ["Validate Input", "Read Input Error", "Input Rejected"]
    assert result.lambda_invocations.get("ValidateInputFunction") == 1, "InvalidInput is not retried"
    # AND no model was started (neither the stack's nor another project's), nor any job created,
    # nor anything written for the run
    for model in (arn, other):
        meter = cloud.rekognition.meter(model)
        assert meter["start_calls"] == 0 and meter["status"] == "STOPPED", model
    assert cloud.groundtruth.created_job_names == []
    _, _, run_prefix = result.run_prefix.removeprefix("s3://").partition("/")
    listing = cloud.s3.list_objects_v2(Bucket=stack.output_bucket, Prefix=run_prefix)
    assert listing.get("KeyCount", 0) == 0, [o["Key"] for o in listing.get("Contents", [])]


def test_the_valid_input_the_cases_start_from_passes_the_first_state(
    deployed: tuple[LocalCloud, Any, str, str],
) -> None:
    # The cases above each break one field of this input; it must itself pass Validate Input. Its
    # images prefix is empty: List Images refuses it, before the model is started.
    cloud, stack, arn, _ = deployed
    run_input = {**_good_input(stack, arn), "images": f"s3://{stack.images_bucket}/nothing-here/"}
    result = execute(cloud, stack, arn, run_input, "good-input", timeout=60)
    assert result.summary["error"] == "InvalidInput", result.summary
    assert result.summary["cause"] == (
        f"images: s3://{stack.images_bucket}/nothing-here/: no JPEG or PNG image: no object under this prefix"
    )
    assert entered_states(result)[:3] == ["Validate Input", "Label Studio Review?", "List Images"]
    assert cloud.rekognition.meter(arn)["start_calls"] == 0


def test_a_prefix_without_images_is_refused_before_the_model_starts_in_one_line(
    deployed: tuple[LocalCloud, Any, str, str],
) -> None:
    cloud, stack, arn, _ = deployed
    # GIVEN a prefix holding two GIFs and a JSON file, and no JPEG or PNG
    for key in ("gifs/a.gif", "gifs/b.gif", "gifs/notes.json"):
        cloud.s3.put_object(Bucket=stack.images_bucket, Key=key, Body=b"GIF89a")
    # WHEN an incremental run is started on it
    images = f"s3://{stack.images_bucket}/gifs/"
    run_input = {**_good_input(stack, arn), "images": images, "incremental": True}
    result = execute(cloud, stack, arn, run_input, "gifs-only", timeout=60)
    # THEN it fails in List Images with one line: the prefix, its objects and why each kind was not taken
    assert result.summary["status"] == "FAILED" and result.summary["error"] == "InvalidInput", result.summary
    assert result.summary["cause"] == (
        f"images: s3://{stack.images_bucket}/gifs/: no JPEG or PNG image: 3 objects, "
        "2 .gif (unsupported), 1 .json (not an image)"
    )
    states = entered_states(result)
    assert "List Images" in states and "Acquire Model" not in states, states
    # AND nothing was started, claimed or left registered
    assert cloud.rekognition.meter(arn)["start_calls"] == 0
    table = run_state_table(cloud, stack)
    assert table["activeRuns"] == [] and not any(lease["users"] for lease in table["leases"].values())
