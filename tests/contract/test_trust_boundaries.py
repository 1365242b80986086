"""Whoever may start an execution gets no more than the stack grants (docs/security.md).

- The Label Studio token goes only where the stack says, and only the stack's secret is read,
  whatever the run's settings say: checked on the deployed handler with its HTTP and Secrets Manager
  recorded, and shown to catch a handler that takes them from the run's settings.
- What the first state allows (projects, workforce types) is what the roles grant: both resolved
  from template.yaml for the same parameters.
- The parameters that draw these lines refuse what would widen them (an output prefix that is
  empty or ends in "/", a project pattern that names every project, a URL with credentials).
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from deployed_stack import REGION, deployed_template, function_environment, run_state
from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.kernel.run_config import ALLOWED_PROJECT_ARN
from labeling_loop.kernel.run_input import FROM_THE_STACK_ONLY
from labeling_loop.kernel.settings import StackSettings, WorkteamType, load
from labeling_loop.review.labelstudio import project
from labeling_loop.review.labelstudio.client import LabelStudioClient
from lambda_harness import FakeLambdaContext, load_handler

ACCOUNT = "123456789012"
MODEL = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/birds/version/birds.v1/1714521600000"
LABEL_STUDIO = "https://labelstudio.example.com"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:labelstudio/token-AbCdEf"
STACK = {
    "ImagesBucketName": "images-bucket",
    "OutputBucketName": "output-bucket",
    "ProjectVersionArn": MODEL,
    "WorkteamArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/birders",
    "ReviewBackend": "labelstudio",
    "LabelStudioUrl": LABEL_STUDIO,
    "LabelStudioTokenSecretArn": SECRET,
}
ATTACKER = {
    "labelStudioUrl": "https://collector.attacker.example",
    "labelStudioTokenSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:someone-elses-AbCdEf",
}
assert set(ATTACKER) == set(FROM_THE_STACK_ONLY), "every input field the stack alone decides"


def _stack(parameters: dict[str, str]) -> StackSettings:
    return load(
        StackSettings, {"AWS_REGION": REGION, **function_environment("ValidateInputFunction", parameters)}
    )


def _statement(template: Any, function: str, sid: str) -> dict[str, Any]:
    """A statement of a function's or role's policies in template.yaml, resolved."""
    properties = template.resources[function]["Properties"]
    documents = [p for p in properties.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
    documents += [p["PolicyDocument"] for p in properties.get("Policies", []) if "PolicyDocument" in p]
    for document in documents:
        for statement in document["Statement"]:
            if statement.get("Sid") == sid:
                resolved: dict[str, Any] = template.resolve(statement)
                return resolved
    raise KeyError(f"{function}: no statement {sid}")


def _as_set(value: Any) -> set[str]:
    return set(value) if isinstance(value, list) else {value}


# The Label Studio token --------------------------------------------------------------------------


class _Recorder:
    """Label Studio as the function would reach it: every connection's host and request recorded,
    every answer a 200 that also holds data the execution history must never show."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.secrets_read: list[str] = []

    def connection(self, host: str, port: int | None = None, timeout: float | None = None) -> Any:
        recorder = self

        class Connection:
            sock = None

            def connect(self) -> None:
                pass

            def request(self, method: str, target: str, body: Any = None, headers: Any = None) -> None:
                recorder.requests.append(
                    {"host": host, "method": method, "target": target, "headers": headers}
                )

            def getresponse(self) -> Any:
                class Response:
                    status = 200

                    def read(self) -> bytes:
                        return json.dumps(
                            {"id": 7, "email": "admin@example.com", "token": "SERVER-SIDE"}
                        ).encode()

                return Response()

            def close(self) -> None:
                pass

        return Connection()

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        self.secrets_read.append(SecretId)
        return {"SecretString": "legacy-token-of-the-stack"}


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def labelstudio_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, _Recorder]]:
    """The Label Studio function loaded with its template environment, its HTTP connections and
    Secrets Manager replaced by one recorder."""
    for name, value in function_environment("LabelStudioReviewFunction", STACK).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    recorder = _Recorder()
    app = load_handler("labelstudio_review")
    monkeypatch.setattr(app, "secretsmanager", recorder)
    monkeypatch.setattr(http.client, "HTTPSConnection", recorder.connection)
    monkeypatch.setattr(http.client, "HTTPConnection", recorder.connection)
    yield app, recorder


def _hostile_preflight() -> dict[str, Any]:
    """A preflight event of a valid Label Studio run whose settings also name another server and
    another secret (as a run could, if a field the stack alone decides became a run setting)."""
    return {"action": "preflight", "config": {**run_state({}, STACK), **ATTACKER}}


def secret_bearing_requests(handler: Handler, recorder: _Recorder) -> tuple[set[str], set[str], Any]:
    """(secrets read, hosts the token was sent to, the answer) for a hostile preflight."""
    answer = handler(_hostile_preflight(), FakeLambdaContext())
    hosts = {r["host"] for r in recorder.requests if "Authorization" in (r["headers"] or {})}
    return set(recorder.secrets_read), hosts, answer


def test_the_token_goes_only_to_the_stacks_label_studio(labelstudio_app: tuple[Any, _Recorder]) -> None:
    app, recorder = labelstudio_app
    # WHEN the deployed function runs a preflight whose run settings name another server and secret
    secrets, hosts, answer = secret_bearing_requests(app.lambda_handler, recorder)
    # THEN it read the stack's secret and sent the token to the stack's server, nothing else
    assert secrets == {SECRET}
    assert hosts == {"labelstudio.example.com"}
    # AND nothing of the server's answer comes back into the execution history
    assert answer == {"reachable": True, "authenticated": True}


def test_the_check_catches_a_handler_that_takes_the_server_from_the_run(
    labelstudio_app: tuple[Any, _Recorder],
) -> None:
    app, recorder = labelstudio_app

    # GIVEN a handler that takes the server and the secret from the run's settings
    def from_the_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
        config = event["config"]
        token = project.read_token(app.secretsmanager, config["labelStudioTokenSecretArn"])
        return project.preflight(LabelStudioClient(config["labelStudioUrl"], token))

    # WHEN the same check runs on it
    secrets, hosts, _ = secret_bearing_requests(from_the_run, recorder)
    # THEN it sees the run's secret read and the token sent to the run's server
    assert secrets == {ATTACKER["labelStudioTokenSecretArn"]}
    assert hosts == {"collector.attacker.example"}


def test_an_answer_the_function_cannot_read_stays_out_of_the_error(
    labelstudio_app: tuple[Any, _Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = labelstudio_app

    # GIVEN a server whose answer breaks the code reading it (the message would quote the answer)
    def unreadable(ls: LabelStudioClient) -> dict[str, Any]:
        raise ValueError("invalid literal for int() with base 10: 'SERVER-SIDE-DATA'")

    monkeypatch.setattr(project, "preflight", unreadable)  # what the backend asks the server
    # WHEN the function runs
    with pytest.raises(ReviewBackendError) as raised:
        app.lambda_handler(_hostile_preflight(), FakeLambdaContext())
    # THEN its error (the execution's cause) names the server and the kind of problem, not the data
    assert "SERVER-SIDE-DATA" not in str(raised.value)
    assert "labelstudio.example.com" in str(raised.value) and "ValueError" in str(raised.value)


def test_url_and_secret_reach_the_function_from_stack_parameters_only(sam_template: dict[str, Any]) -> None:
    resources = sam_template["Resources"]
    variables = resources["LabelStudioReviewFunction"]["Properties"]["Environment"]["Variables"]
    # GIVEN the Label Studio function's environment
    # THEN the URL, its http host and the secret are the stack's parameters, as they are
    assert variables["LABEL_STUDIO_URL"] == {"Ref": "LabelStudioUrl"}
    assert variables["LABEL_STUDIO_HTTP_HOST"] == {"Ref": "LabelStudioHttpHost"}
    assert variables["LABEL_STUDIO_TOKEN_SECRET_ARN"] == {"Ref": "LabelStudioTokenSecretArn"}
    # AND the run defaults (which an input overrides) do not carry them
    defaults = json.dumps(
        resources["ValidateInputFunction"]["Properties"]["Environment"]["Variables"]["RUN_DEFAULTS"]
    )
    assert not any(field in defaults for field in FROM_THE_STACK_ONLY)
    # AND the function may read that one secret
    statements = [
        s
        for policy in resources["LabelStudioReviewFunction"]["Properties"]["Policies"]
        if isinstance(policy, dict) and "Fn::If" in policy
        for branch in policy["Fn::If"][1:]
        if isinstance(branch, dict) and "Statement" in branch
        for s in branch["Statement"]
    ]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("secretsmanager:GetSecretValue", {"Ref": "LabelStudioTokenSecretArn"})
    ]


# Models, workforces: the validator and the roles agree -------------------------------------------

PROJECTS = [
    f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/birds/*",
    f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/insects/*",
]


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param({}, id="default-the-models-project"),
        pytest.param({"AllowedProjectArns": ",".join(PROJECTS)}, id="listed"),
    ],
)
def test_the_validator_allows_exactly_the_projects_the_roles_grant(parameters: dict[str, str]) -> None:
    # GIVEN a stack deployed with (or without) AllowedProjectArns
    template = deployed_template({**STACK, **parameters})
    allowed = set(_stack({**STACK, **parameters}).allowed_project_arns)
    # THEN starting, inferring, reading labels and training are granted on exactly the projects the
    # first state lets runs use (the default: the project of ProjectVersionArn)
    assert allowed == (set(PROJECTS) if parameters else {PROJECTS[0]})
    for function, sid in (
        ("ModelControlFunction", "StartModels"),
        ("DetectLabelsFunction", "Inference"),
        ("ValidateInputFunction", "ProjectLabels"),
        ("TrainModelFunction", "TrainOnProject"),
    ):
        assert _as_set(_statement(template, function, sid)["Resource"]) == allowed, (function, sid)


@pytest.mark.parametrize("types", ["private-crowd", "private-crowd,vendor-crowd"])
def test_the_validator_allows_exactly_the_workforce_types_labeling_jobs_may_use(types: str) -> None:
    # GIVEN a stack deployed with WorkteamTypes
    parameters = {**STACK, "WorkteamTypes": types}
    condition = _statement(
        deployed_template(parameters), "LabelingLoopStateMachineRole", "CreateLabelingJobs"
    )
    # THEN CreateLabelingJob is granted for those workteam types only, the ones the first state allows
    granted = _as_set(condition["Condition"]["StringEquals"]["sagemaker:WorkteamType"])
    assert granted == set(_stack(parameters).workteam_types) == set(types.split(","))


# Parameters that draw the lines --------------------------------------------------------------------


def _pattern(sam_template: dict[str, Any], parameter: str) -> re.Pattern[str]:
    return re.compile(sam_template["Parameters"][parameter]["AllowedPattern"])


def test_the_output_prefix_is_a_prefix_the_roles_can_be_scoped_to(sam_template: dict[str, Any]) -> None:
    # The roles reach <bucket>/${OutputPrefix}/*: an empty prefix or one ending in "/" would give
    # bucket//*, and a "*" in it would be a wildcard.
    pattern = _pattern(sam_template, "OutputPrefix")
    for good in ("labeling-runs", "team-a/labeling-runs", "runs_2026.v2"):
        assert pattern.fullmatch(good), good
    for bad in ("", "/runs", "runs/", "a//b", "*", "runs/*", "runs with space", "runs?"):
        assert not pattern.fullmatch(bad), bad
    assert pattern.fullmatch(str(sam_template["Parameters"]["OutputPrefix"]["Default"]))


def test_allowed_projects_name_projects_not_the_account(sam_template: dict[str, Any]) -> None:
    pattern = _pattern(sam_template, "AllowedProjectArns")  # applied to each item of the list
    good = [*PROJECTS, ""]
    bad = [
        f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/*",  # every project
        f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/*/*",
        f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/birds/1714521600000",  # versions not covered
        MODEL,
        "*",
    ]
    for value in good:
        assert pattern.fullmatch(value), value
        assert not value or ALLOWED_PROJECT_ARN.fullmatch(value), value  # the settings agree
    for value in bad:
        assert not pattern.fullmatch(value), value
        assert not ALLOWED_PROJECT_ARN.fullmatch(value), value


def test_workforce_types_are_the_three_sagemaker_knows(sam_template: dict[str, Any]) -> None:
    pattern = _pattern(sam_template, "WorkteamTypes")
    known = set(WorkteamType.__args__)
    assert {
        t for t in ("private-crowd", "vendor-crowd", "public-crowd", "crowd", "") if pattern.fullmatch(t)
    } == known
    assert sam_template["Parameters"]["WorkteamTypes"]["Default"] == "private-crowd"


def test_the_label_studio_url_parameter_refuses_credentials_queries_and_other_schemes(
    sam_template: dict[str, Any],
) -> None:
    # A first filter at deploy time; the function applies the full rule (review/labelstudio/endpoint.py).
    pattern = _pattern(sam_template, "LabelStudioUrl")
    for good in ("", LABEL_STUDIO, "https://ls.example.com:8443/label-studio", "http://10.0.3.7:8080"):
        assert pattern.fullmatch(good), good
    for bad in (
        "https://user:pw@ls.example.com",
        "https://ls.example.com/?next=/x",
        "ftp://ls.example.com",
        "ls.example.com",
    ):
        assert not pattern.fullmatch(bad), bad


def test_the_inference_units_limit_has_the_settings_bounds(sam_template: dict[str, Any]) -> None:
    spec = sam_template["Parameters"]["InferenceUnitsLimit"]
    field = StackSettings.model_fields["inference_units_limit"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert (spec["MinValue"], spec["MaxValue"]) == (bounds["Ge"].ge, bounds["Le"].le)
    # AND by default a run may start the model with the default units
    assert spec["Default"] >= sam_template["Parameters"]["MinInferenceUnits"]["Default"]
