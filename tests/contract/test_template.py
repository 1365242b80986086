"""template.yaml agrees with the code and the house rules: it translates, every function's folder
and handler exist and import, names agree, shared settings live in Globals, logs are kept for a
bounded time, the state machine logs and traces, and the schedule's input is a valid run input."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sam_translate import TEMPLATE_PATH, load_sam_template

from localcloud.engine.template import Template

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "contract-stack"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
# Parameters without a usable default, with values a user would deploy with.
SAMPLE_PARAMETERS = {
    "ImagesBucketName": "contract-images",
    "ProjectVersionArn": (
        f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/contract-project/version/contract.2026-01-01/1767225600000"
    ),
    "WorkteamArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/contract-team",
}
LABEL_STUDIO_PARAMETERS = {
    "ReviewBackend": "labelstudio",
    "LabelStudioUrl": "https://labelstudio.example.com",
    "LabelStudioTokenSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:labelstudio-token-AbCdEf",
}
EXPECTED_SECTION_ORDER = [
    "Transform",
    "Description",
    "Globals",
    "Parameters",
    "Rules",
    "Conditions",
    "Resources",
    "Outputs",
]
# Settings every function shares: set once in Globals, never repeated per function.
GLOBAL_ONLY = {
    "Runtime": "python3.13",
    "Architectures": ["arm64"],
    "Tracing": "Active",
    "Handler": "app.lambda_handler",
}
# Properties that name a physical resource: two stacks in one account must not collide on them.
NAME_PROPERTIES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
}
# Not in the list: AWS::Lambda::LayerVersion's LayerName (SAM sets the logical id). Stacks sharing a
# layer name only add versions to one layer, they do not fail.
ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:contract-labeling-loop:run-1"


def snake_case(logical_id: str) -> str:
    """`DetectLabelsFunction` -> `detect_labels`. The product Label Studio is one word in code,
    `LabelStudio` / `labelstudio` (the `reviewBackend` value), so `LabelStudioReviewFunction` ->
    `labelstudio_review`."""
    stem = logical_id.removesuffix("Function").replace("LabelStudio", "Labelstudio")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower()


def _resources(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def _template_for(translated: dict[str, Any], overrides: Mapping[str, str]) -> Template:
    """The translated template with parameter values, resolvable by the local cloud's resolver
    (the same code that deploys the template into the local cloud)."""
    parameters: dict[str, str] = {}
    for name, spec in translated.get("Parameters", {}).items():
        if name in overrides:
            parameters[name] = str(overrides[name])
        elif "Default" in spec:
            parameters[name] = str(spec["Default"])
    missing = set(translated.get("Parameters", {})) - set(parameters)
    assert not missing, f"parameters without default nor sample value: {sorted(missing)}"
    template = Template(translated, parameters, dict(PSEUDO))
    template.physical_ids = {lid: f"{STACK}-{lid.lower()}" for lid in translated["Resources"]}
    template.attributes = lambda lid, attribute: f"arn:aws:contract:{REGION}:{ACCOUNT}:{lid}/{attribute}"
    return template


def _function_environment(template: Template, logical_id: str) -> dict[str, str]:
    function = template.document["Resources"][logical_id]
    assert function["Type"] == "AWS::Lambda::Function"
    variables = function["Properties"].get("Environment", {}).get("Variables", {})
    resolved = {name: str(template.resolve(value)) for name, value in variables.items()}
    # What the Lambda runtime adds.
    return {**resolved, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


# The template as a whole --------------------------------------------------------------------------


def test_template_translates_with_sam(
    translated_template: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    kinds = {r["Type"] for r in translated_template["Resources"].values()}
    assert not any(kind.startswith("AWS::Serverless::") for kind in kinds), kinds
    functions = _resources(sam_template, "AWS::Serverless::Function")
    assert set(functions) <= set(_resources(translated_template, "AWS::Lambda::Function"))
    assert _resources(translated_template, "AWS::StepFunctions::StateMachine")


def test_sections_are_in_house_order(sam_template: dict[str, Any]) -> None:
    present = [key for key in sam_template if key in EXPECTED_SECTION_ORDER]
    assert present == [key for key in EXPECTED_SECTION_ORDER if key in sam_template]


def test_parameters_are_typed_and_described(sam_template: dict[str, Any]) -> None:
    bad = [
        name
        for name, spec in sam_template.get("Parameters", {}).items()
        if not spec.get("Type") or not str(spec.get("Description", "")).strip()
    ]
    assert not bad, f"parameters without Type or Description: {bad}"


def test_physical_names_include_the_stack_name(translated_template: dict[str, Any]) -> None:
    """Explicit names must contain ${AWS::StackName}, or a second stack in the account collides."""
    clashing = []
    for logical_id, resource in translated_template["Resources"].items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop is None or prop not in resource.get("Properties", {}):
            continue
        if "AWS::StackName" not in json.dumps(resource["Properties"][prop]):
            clashing.append(f"{logical_id} ({resource['Type']}) {prop}={resource['Properties'][prop]!r}")
    assert not clashing, "fixed physical names (a second stack in the same account fails):\n" + "\n".join(
        clashing
    )


# Functions ----------------------------------------------------------------------------------------


def test_globals_hold_the_shared_function_settings(
    sam_template: dict[str, Any], serverless_functions: dict[str, dict[str, Any]]
) -> None:
    globals_function = sam_template.get("Globals", {}).get("Function", {})
    for key, value in GLOBAL_ONLY.items():
        assert globals_function.get(key) == value, f"Globals.Function.{key} should be {value!r}"
    repeated = {lid: sorted(set(GLOBAL_ONLY) & set(props)) for lid, props in serverless_functions.items()}
    repeated = {lid: keys for lid, keys in repeated.items() if keys}
    assert not repeated, f"functions repeating settings that belong in Globals: {repeated}"
    assert globals_function.get("Layers"), "the shared layer belongs in Globals.Function.Layers"


def test_every_function_runs_python313_on_arm64_with_tracing(translated_template: dict[str, Any]) -> None:
    for logical_id, function in _resources(translated_template, "AWS::Lambda::Function").items():
        props = function["Properties"]
        assert props.get("Runtime") == "python3.13", logical_id
        assert props.get("Architectures") == ["arm64"], logical_id
        assert props.get("TracingConfig") == {"Mode": "Active"}, logical_id
        assert props.get("Handler") == "app.lambda_handler", logical_id


def test_function_ids_and_folders_agree(
    serverless_functions: dict[str, dict[str, Any]], repo_root: Path
) -> None:
    mismatched = {}
    for logical_id, props in serverless_functions.items():
        assert re.fullmatch(r"([A-Z][a-z0-9]+)+Function", logical_id), f"{logical_id}: PascalCase + Function"
        expected = f"functions/{snake_case(logical_id)}"
        if str(props.get("CodeUri", "")).rstrip("/") != expected:
            mismatched[logical_id] = (props.get("CodeUri"), expected + "/")
    assert not mismatched, f"CodeUri does not match the logical id (got, expected): {mismatched}"
    used = {str(p["CodeUri"]).rstrip("/") for p in serverless_functions.values()}
    folders = {f"functions/{d.name}" for d in (repo_root / "functions").iterdir() if d.is_dir()}
    folders = {f for f in folders if not Path(f).name.startswith(("_", "."))}
    assert folders <= used, f"function folders no template function uses: {sorted(folders - used)}"


def _serverless_function_ids() -> list[str]:
    """Parametrization needs the ids at collection time, before fixtures exist."""
    template = load_sam_template(TEMPLATE_PATH)
    return sorted(lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function")


FUNCTION_IDS = _serverless_function_ids()


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_function_folder_has_handler_and_requirements(
    logical_id: str, serverless_functions: dict[str, dict[str, Any]], repo_root: Path
) -> None:
    folder = repo_root / str(serverless_functions[logical_id]["CodeUri"])
    assert folder.is_dir(), f"{logical_id}: CodeUri {folder} does not exist"
    assert (folder / "requirements.txt").is_file(), f"{logical_id}: {folder}/requirements.txt missing"
    app = folder / "app.py"
    assert app.is_file(), f"{logical_id}: {app} missing"
    tree = ast.parse(app.read_text())
    handlers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
    assert handlers, f"{logical_id}: {app} defines no top-level lambda_handler"
    assert [a.arg for a in handlers[0].args.args] == ["event", "context"], f"{logical_id}: (event, context)"


def _load_handler_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@pytest.fixture(scope="module")
def sample_template(translated_template: dict[str, Any]) -> Template:
    return _template_for(translated_template, SAMPLE_PARAMETERS)


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_function_imports_with_its_template_environment(
    logical_id: str,
    serverless_functions: dict[str, dict[str, Any]],
    sample_template: Template,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Import app.py as Lambda would (layer on the path, the template's environment, fake
    credentials): module-level clients and settings must not fail."""
    for name, value in _function_environment(sample_template, logical_id).items():
        monkeypatch.setenv(name, value)
    app = repo_root / str(serverless_functions[logical_id]["CodeUri"]) / "app.py"
    module = _load_handler_module(app, f"contract_app_{snake_case(logical_id)}")
    assert callable(getattr(module, "lambda_handler", None)), f"{logical_id}: lambda_handler not callable"


def _labeling_loop_imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every `labeling_loop...` module a file imports, at any depth (lazy imports included)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "labeling_loop":
            if node.module == "labeling_loop":
                for alias in node.names:
                    yield node.lineno, f"labeling_loop.{alias.name}"
            else:
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "labeling_loop":
                    yield node.lineno, alias.name


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_lazy_layer_imports_resolve(
    logical_id: str, serverless_functions: dict[str, dict[str, Any]], repo_root: Path
) -> None:
    """Imports inside functions (taken only on some paths) name modules that exist too: an import
    at module level fails the import test above, a lazy one would only fail in production."""
    app = repo_root / str(serverless_functions[logical_id]["CodeUri"]) / "app.py"
    missing = []
    for lineno, module_name in _labeling_loop_imports(app):
        package, _, leaf = module_name.rpartition(".")
        found = importlib.util.find_spec(module_name) is not None
        if not found and package:
            # `from labeling_loop import name` may import a name, not a module.
            parent = importlib.import_module(package)
            found = hasattr(parent, leaf)
        if not found:
            missing.append(f"{app.relative_to(repo_root)}:{lineno}: {module_name}")
    assert not missing, "imports of modules that do not exist in layer/:\n" + "\n".join(missing)


# Logs, state machine ------------------------------------------------------------------------------


def test_log_groups_have_retention(translated_template: dict[str, Any]) -> None:
    groups = _resources(translated_template, "AWS::Logs::LogGroup")
    assert groups, "the template should own its log groups (with retention)"
    without = [lid for lid, g in groups.items() if "RetentionInDays" not in g.get("Properties", {})]
    assert not without, f"log groups without RetentionInDays: {without}"


def test_functions_log_to_a_log_group_of_the_template(translated_template: dict[str, Any]) -> None:
    """Otherwise Lambda creates /aws/lambda/<name> itself, with no retention."""
    groups = set(_resources(translated_template, "AWS::Logs::LogGroup"))
    bad = {}
    for logical_id, function in _resources(translated_template, "AWS::Lambda::Function").items():
        target = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        if not (isinstance(target, dict) and target.get("Ref") in groups):
            bad[logical_id] = target
    assert not bad, f"functions not logging to a template log group (retention unknown): {bad}"


def test_state_machine_logs_and_traces(translated_template: dict[str, Any]) -> None:
    groups = set(_resources(translated_template, "AWS::Logs::LogGroup"))
    for logical_id, machine in _resources(translated_template, "AWS::StepFunctions::StateMachine").items():
        props = machine["Properties"]
        logging = props.get("LoggingConfiguration", {})
        assert logging.get("Level") in {"ALL", "ERROR", "FATAL"}, f"{logical_id}: Logging.Level"
        destinations = logging.get("Destinations", [])
        assert destinations, f"{logical_id}: no log destination"
        for destination in destinations:
            arn = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
            assert arn.get("Fn::GetAtt", [None])[0] in groups, (
                f"{logical_id}: logs to {arn}, not a template group"
            )
        assert props.get("TracingConfiguration") == {"Enabled": True}, f"{logical_id}: Tracing"


# The schedule's input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="created-bucket-groundtruth"),
        pytest.param({"OutputBucketName": "contract-output"}, id="own-bucket-groundtruth"),
        pytest.param(LABEL_STUDIO_PARAMETERS, id="created-bucket-labelstudio"),
    ],
)
def test_schedule_input_is_a_valid_execution_input(
    overrides: dict[str, str], translated_template: dict[str, Any]
) -> None:
    from labeling_loop.kernel.run_input import validate_input
    from labeling_loop.kernel.settings import StackSettings, load

    template = _template_for(translated_template, {**SAMPLE_PARAMETERS, **overrides})
    stack = load(StackSettings, _function_environment(template, "ValidateInputFunction"))
    schedules = _resources(translated_template, "AWS::Scheduler::Schedule")
    assert schedules, "expected the ScheduleV2 event's AWS::Scheduler::Schedule"
    for logical_id, schedule in schedules.items():
        raw = schedule["Properties"]["Target"].get("Input", "{}")
        config = validate_input(
            json.loads(raw), execution_name="scheduled-run-0001", execution_arn=EXECUTION_ARN, stack=stack
        )
        assert config.runId, logical_id


def test_validator_rejects_output_outside_the_prefix_the_roles_grant(
    translated_template: dict[str, Any],
) -> None:
    """The state machine role (Distributed Map ItemReader/ResultWriter) and GroundTruthRole reach only
    `<output bucket>/${OutputPrefix}/*`. An execution input whose `output` lies elsewhere in the bucket
    would pass the first state and fail with AccessDenied after the model was started."""
    from labeling_loop.kernel.errors import InvalidInput
    from labeling_loop.kernel.run_input import validate_input
    from labeling_loop.kernel.settings import StackSettings, load

    template = _template_for(
        translated_template, {**SAMPLE_PARAMETERS, "OutputBucketName": "contract-output"}
    )
    stack = load(StackSettings, _function_environment(template, "ValidateInputFunction"))
    prefix = template.parameters["OutputPrefix"]
    accepted = validate_input(
        {"output": f"s3://contract-output/{prefix}/"},
        execution_name="ok",
        execution_arn=EXECUTION_ARN,
        stack=stack,
    )
    assert accepted.output.startswith(f"s3://contract-output/{prefix}/")
    with pytest.raises(InvalidInput, match="output"):
        validate_input(
            {"output": "s3://contract-output/elsewhere/"},
            execution_name="outside",
            execution_arn=EXECUTION_ARN,
            stack=stack,
        )


# samconfig.toml ------------------------------------------------------------------------------------------


def test_samconfig_resolves_s3_and_names_no_account(repo_root: Path) -> None:
    path = repo_root / "samconfig.toml"
    if not path.exists():
        pytest.skip("no samconfig.toml in the repository")
    text = path.read_text()
    config = tomllib.loads(text)
    deploy_params = [
        section.get("deploy", {}).get("parameters", {})
        for section in config.values()
        if isinstance(section, dict)
    ]
    assert any(p.get("resolve_s3") is True for p in deploy_params), "samconfig.toml: set resolve_s3 = true"
    assert not ACCOUNT_ID.search(text), "samconfig.toml names an account id"
    assert not any("s3_bucket" in p for p in deploy_params), "samconfig.toml names a bucket (use resolve_s3)"


# checkov suppressions -------------------------------------------------------------------------------------


def test_checkov_suppressions_have_reasons(repo_root: Path) -> None:
    """`.checkov.yaml` may skip a check only with a written reason (a `# reason:` comment above it)."""
    path = repo_root / ".checkov.yaml"
    if not path.exists():
        pytest.skip("no .checkov.yaml")
    entries: list[tuple[str, str]] = []
    comment: list[str] = []
    in_skips = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if re.match(r"^[\w-]+:", line):
            in_skips = line.startswith("skip-check:")
            comment = []
        elif in_skips and stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
        elif in_skips and stripped.startswith("- "):
            entries.append((stripped[2:].strip(), " ".join(comment)))
            comment = []
    assert entries, ".checkov.yaml has no skip-check list"
    unexplained = [
        check for check, reason in entries if not reason.startswith("reason:") or len(reason.split()) < 8
    ]
    assert not unexplained, f"checks skipped without a reason: {unexplained}"
