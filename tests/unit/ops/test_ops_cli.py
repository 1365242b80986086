"""`labeling-loop`'s arguments and input checks: a bad input is refused here, in one line naming the
field, before anything is sent; AWS configuration problems say what to fix. Step Functions is a stub
that records what it was asked (nothing may reach it when the input is wrong)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from deployed_stack import function_environment
from rich.console import Console

from labeling_ops import cli, inputs
from labeling_ops.aws import Clients, StackInfo

REGION = "us-east-1"
MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:labeling-loop-labeling-loop"
MODEL = f"arn:aws:rekognition:{REGION}:123456789012:project/shapes/version/v1/1767225600000"
# The ValidateInput function's environment of a deployed stack (template.yaml's defaults and grants,
# read from the template, with this stack's places): what the CLI reads from the function.
ENVIRONMENT = function_environment(
    "ValidateInputFunction",
    {
        "ProjectVersionArn": MODEL,
        "ImagesBucketName": "my-images",
        "ImagesPrefix": "incoming/",
        "OutputBucketName": "my-output",
        "WorkteamArn": f"arn:aws:sagemaker:{REGION}:123456789012:workteam/private-crowd/team",
    },
)


class StubStepFunctions:
    def __init__(self, exists: bool = False) -> None:
        self.started: list[dict[str, Any]] = []
        self.exists = exists

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        if self.exists:
            raise ClientError(
                {"Error": {"Code": "ExecutionAlreadyExists", "Message": "exists"}}, "StartExecution"
            )
        self.started.append(kwargs)
        return {"executionArn": MACHINE.replace(":stateMachine:", ":execution:") + ":" + kwargs["name"]}


def stack(environment: dict[str, str] | None = ENVIRONMENT) -> StackInfo:
    return StackInfo(
        name="labeling-loop",
        state_machine_arn=MACHINE,
        run_state_table="table",
        output_location="s3://my-output/labeling-runs/",
        validator_environment=environment,
        region=REGION,
    )


def run(argv: list[str], sfn: Any, capsys: pytest.CaptureFixture[str], **kw: Any) -> tuple[int, str, str]:
    clients = Clients(sfn=sfn, s3=None, dynamodb=None, rekognition=None, sagemaker=None, region=REGION)
    code = cli.main(argv, clients=clients, stack=kw.get("stack", stack()), console=Console(width=200))
    out, err = capsys.readouterr()
    return code, out, err


def test_flags_become_input_fields(capsys: pytest.CaptureFixture[str]) -> None:
    sfn = StubStepFunctions()
    argv = ["start", "--name", "r1", "--min-confidence", "60.5", "--labels", "cat, dog", "--incremental"]
    code, out, _ = run([*argv, "--review-backend", "groundtruth", "--max-images-per-job", "50"], sfn, capsys)
    assert code == 0, out
    (started,) = sfn.started
    assert started["name"] == "r1" and started["stateMachineArn"] == MACHINE
    assert json.loads(started["input"]) == {
        "minConfidence": 60.5,
        "labels": ["cat", "dog"],
        "incremental": True,
        "reviewBackend": "groundtruth",
        "maxImagesPerJob": 50,
    }
    assert "input valid (fields and the stack's defaults)" in out


def test_flags_override_the_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "run.json"
    file.write_text(json.dumps({"minConfidence": 40, "taskType": "detection"}))
    sfn = StubStepFunctions()
    code, _, _ = run(["start", "--name", "r2", "--input", str(file), "--min-confidence", "70"], sfn, capsys)
    assert code == 0
    assert json.loads(sfn.started[0]["input"]) == {"minConfidence": 70, "taskType": "detection"}


@pytest.mark.parametrize(
    ("argv", "file_content", "message"),
    [
        (["--min-confidence", "500"], None, "minConfidence: Input should be less than or equal to 100"),
        (["--min-confidence", "true"], None, "minConfidence"),
        (
            ["--review-backend", "mturk"],
            None,
            "reviewBackend: Input should be 'groundtruth' or 'labelstudio'",
        ),
        ([], {"minConfidance": 50}, "minConfidance: is not a known input field"),
        ([], [1, 2], "must hold a JSON object, not list"),
        ([], "not json", "not JSON"),
        (["--images", "s3://someone-elses-bucket/x/"], None, "images: bucket 'someone-elses-bucket' is not"),
        (["--min-inference-units", "6"], None, "minInferenceUnits: 6 inference units"),
        (["--name", "has space"], None, "--name 'has space': 1-80 characters"),
        (["--name", "a" * 81], None, "1-80 characters"),
    ],
    ids=[
        "out-of-bounds",
        "wrong-type",
        "unknown-backend",
        "unknown-field",
        "not-an-object",
        "not-json",
        "other-bucket",
        "over-the-stacks-units",
        "bad-name",
        "long-name",
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    argv: list[str], file_content: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if file_content is not None:
        file = tmp_path / "input.json"
        file.write_text(file_content if isinstance(file_content, str) else json.dumps(file_content))
        argv = [*argv, "--input", str(file)]
    sfn = StubStepFunctions()
    code, _, err = run(
        ["start", "--name", "r3", *argv] if "--name" not in argv else ["start", *argv], sfn, capsys
    )
    assert code == 2
    assert sfn.started == []
    assert message in err
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) == 1, err


def test_without_readable_stack_defaults_fields_are_still_checked(capsys: pytest.CaptureFixture[str]) -> None:
    sfn = StubStepFunctions()
    code, _, err = run(["start", "--name", "r4", "--max-labels-per-job", "1"], sfn, capsys, stack=stack(None))
    assert code == 2 and "maxLabelsPerJob" in err and not sfn.started
    code, out, _ = run(["start", "--name", "r4", "--max-labels-per-job", "5"], sfn, capsys, stack=stack(None))
    assert code == 0 and "the first state checks the rest" in out


def test_a_missing_input_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["start", "--input", "nowhere.json"], StubStepFunctions(), capsys)
    assert code == 2 and "--input nowhere.json: no such file" in err


def test_dry_run_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    sfn = StubStepFunctions()
    code, out, _ = run(["start", "--dry-run", "--min-confidence", "55"], sfn, capsys)
    assert code == 0 and sfn.started == [] and '"minConfidence": 55' in out


def test_a_taken_name_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["start", "--name", "taken"], StubStepFunctions(exists=True), capsys)
    assert code == 2 and "a run named 'taken' exists already: pass another --name" in err


def test_every_input_field_has_a_flag() -> None:
    from labeling_loop.kernel.run_input import RunInput

    parser = cli.parser()
    start = parser._subparsers._group_actions[0].choices["start"]  # type: ignore[union-attr]
    flags = {option for action in start._actions for option in action.option_strings}
    assert {inputs.flag_name(name) for name in RunInput.model_fields} <= flags
    assert inputs.flag_name("minConfidence") == "--min-confidence"


# AWS configuration, as the AWS CLI takes it --------------------------------------------------------


def test_no_region_is_one_line_naming_the_fix(
    fake_aws_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_aws_env.delenv("AWS_REGION")
    fake_aws_env.delenv("AWS_DEFAULT_REGION")
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no AWS region: pass --region") and len(err.splitlines()) == 1


def test_an_unknown_profile_is_named(
    fake_aws_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["list", "--profile", "nope", "--region", REGION]) == 2
    assert "AWS profile 'nope' not found" in capsys.readouterr().err


def test_no_credentials_is_named(
    fake_aws_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        fake_aws_env.delenv(name, raising=False)
    fake_aws_env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main(["list", "--region", REGION]) == 2
    assert "no AWS credentials" in capsys.readouterr().err


def test_a_missing_stack_is_named(
    fake_aws_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto import mock_aws

    with mock_aws():
        assert cli.main(["list", "--stack", "no-such-stack", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "stack 'no-such-stack' not found in us-east-1: check --stack and --region" in err


def test_the_cli_and_the_local_cloud_do_not_import_the_data_science_sdk() -> None:
    """stepfunctions/sagemaker are an optional extra (notebook): nothing else may need them."""
    import subprocess
    import sys

    code = (
        "import sys, labeling_ops.cli, labeling_ops.local, localcloud.runner, localcloud.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('stepfunctions', 'sagemaker')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# Help, flags, typos, sample inputs ------------------------------------------------------------------


def _start_parser() -> Any:
    return cli.parser()._subparsers._group_actions[0].choices["start"]  # type: ignore[union-attr]


def test_every_input_flag_says_what_it_is_its_bounds_and_its_default() -> None:
    from labeling_loop.kernel.run_config import numeric_bounds
    from labeling_loop.kernel.run_input import RunInput

    actions = {a.dest: a for a in _start_parser()._actions}
    bounds = numeric_bounds()
    for name, field in RunInput.model_fields.items():
        text = str(actions[f"in_{name}"].help).replace("%%", "%")  # argparse's escape
        assert field.description and field.description in text, name
        assert "default: " in text, name
        if name in bounds:
            low, high, integer = bounds[name]
            shown = f"{int(low):,}-{int(high):,}" if integer else f"{low:g}-{high:g}"
            assert shown in text, (name, text)
    assert "(0-100; default: the stack's setting)" in str(actions["in_minConfidence"].help)
    assert "(default: auto)" in str(actions["in_taskType"].help)


def test_the_help_lists_every_flag_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(["start", "--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert "--min-confidence N" in shown and "predictions below this confidence" in shown
    assert "--train, --no-train" in shown and "--incremental, --no-incremental" in shown
    assert "--json" in shown


def test_booleans_are_flags_that_take_no_value(capsys: pytest.CaptureFixture[str]) -> None:
    sfn = StubStepFunctions()
    code, out, _ = run(
        ["start", "--name", "b1", "--train", "--no-incremental", "--promote-if-better"], sfn, capsys
    )
    assert code == 0, out
    assert json.loads(sfn.started[0]["input"]) == {
        "train": True,
        "promoteIfBetter": True,
        "incremental": False,
    }
    with pytest.raises(SystemExit):  # `--train true` is not how a flag is given
        cli.main(["start", "--name", "b2", "--train", "true"], clients=None, stack=stack())
    assert "unrecognized arguments: true" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["start", "--min-confidance", "50"], "did you mean --min-confidence?"),
        (["strat"], "did you mean 'start'?"),
        (["list", "--limt", "3"], "did you mean --limit?"),
        (["local", "dwn"], "did you mean 'down'?"),
    ],
)
def test_a_typo_gets_the_nearest_name(argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(argv, clients=None, stack=stack())
    assert ended.value.code == 2
    assert hint in capsys.readouterr().err


def test_a_json_object_flag(capsys: pytest.CaptureFixture[str]) -> None:
    sfn = StubStepFunctions()
    argv = ["start", "--name", "j1", "--auto-accept-confidence", "80", "--auto-accept-confidence-by-label"]
    code, out, _ = run([*argv, '{"circle": 85}'], sfn, capsys)
    assert code == 0, out
    assert json.loads(sfn.started[0]["input"])["autoAcceptConfidenceByLabel"] == {"circle": 85}
    code, _, err = run([*argv, "circle=85"], StubStepFunctions(), capsys)
    assert code == 2 and "--auto-accept-confidence-by-label: not JSON" in err


def test_start_json_is_one_document_for_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["start", "--name", "j2", "--min-confidence", "60", "--json"], StubStepFunctions(), capsys
    )
    assert code == 0
    document = json.loads(out)
    assert document["name"] == "j2" and document["input"] == {"minConfidence": 60}
    assert document["executionArn"].endswith(":execution:labeling-loop-labeling-loop:j2")
    assert "input valid" in err  # the human note stays out of the JSON


def test_piped_output_is_not_cut_to_the_terminal_width(capsys: pytest.CaptureFixture[str]) -> None:
    console = cli.stdout_console()  # stdout is captured: not a terminal
    assert not console.is_terminal and console.width == cli.PIPED_WIDTH
    long_arn = "arn:aws:states:us-east-1:123456789012:execution:" + "x" * 150
    console.print(f"started run  {long_arn}")
    assert f"started run  {long_arn}\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    "sample", sorted(p.name for p in (Path(__file__).parents[3] / "events").glob("*.json"))
)
def test_every_sample_input_is_valid_against_a_stack_as_deployed(sample: str) -> None:
    # GIVEN a stack deployed with the template's defaults, its Label Studio configured
    environment = function_environment(
        "ValidateInputFunction",
        {
            "ProjectVersionArn": MODEL,
            "ImagesBucketName": "my-images",
            "OutputBucketName": "my-output",
            "WorkteamArn": f"arn:aws:sagemaker:{REGION}:123456789012:workteam/private-crowd/team",
            "LabelStudioUrl": "https://labelstudio.example.com",
            "LabelStudioTokenSecretArn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:ls-AbCdEf",
        },
    )
    raw = json.loads((Path(__file__).parents[3] / "events" / sample).read_text())
    # WHEN the sample is checked as `labeling-loop start --input events/<sample>` checks it
    # THEN it passes: a sample names no bucket or model of its own, the stack's are used
    assert inputs.check(raw, stack(environment), "sample-run") == "fields and the stack's defaults"
