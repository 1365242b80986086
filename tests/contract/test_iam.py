"""IAM over the translated template: every role's (action, resource) pairs, SAM policy templates
expanded, checked for wildcards and against explicit per-role tables, so that a new permission needs
a test change. `pytest -s tests/contract/test_iam.py` prints the table of every role's permissions.

Also the bucket the stack creates: encrypted, not public, TLS only.
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# AWS managed policies SAM attaches to the roles it generates, with their published content
# (the translator only names them). A managed policy not listed here fails the test: no
# *FullAccess policy can slip in.
MANAGED_POLICIES: dict[str, list[tuple[list[str], str]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        (["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "*"),
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        (
            [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "*",
        ),
    ],
    # Added by SAM to a function with VpcConfig (even under an Fn::If, as LabelStudioReview's is).
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": [
        (
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "*",
        ),
    ],
}
# Managed policies whose `Resource: "*"` is accepted as a whole, and why. Only these sources: an
# inline statement with the same actions on "*" still fails.
ACCEPTED_MANAGED_WILDCARDS = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": (
        "SAM attaches it to every role it generates; scoping the functions' log writes would mean "
        "hand-written roles instead of policy templates (style.md). Functions log to FunctionsLogGroup only."
    ),
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": (
        "Lambda needs the ENI actions on * to place a function in a VPC (LabelStudioReview, optional)."
    ),
}
# Actions that do not support resource-level permissions, so "*" is the only possible resource
# docs/aws-facts.md §5.1, §4.8, §5.3 (CloudWatch Logs delivery for state machine logging; X-Ray).
STAR_RESOURCE_ACTIONS = (
    "rekognition:DescribeProjects",
    "cloudwatch:GetMetricStatistics",  # docs/aws-facts.md §5.4
    "logs:*LogDelivery*",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:Put*",
    "xray:GetSampling*",
)
# cloudwatch:PutMetricData has no resource type; it is accepted on "*" only with a namespace condition.
METRICS_ACTION = "cloudwatch:PutMetricData"

# What each role may do with the services whose misuse costs money or crosses trust boundaries.
# Owners are the resources a role belongs to. Equality: a new permission needs a change here.
# Rekognition: exactly what the function's code calls (the cross-check below reads the code).
EXPECTED_REKOGNITION = {
    "ModelControlFunction": {
        "rekognition:DescribeProjects",  # model_control.find_project_arn
        "rekognition:DescribeProjectVersions",  # model_control.describe
        "rekognition:StartProjectVersion",  # model_control._start
        "rekognition:StopProjectVersion",  # model_control.release
    },
    "DetectLabelsFunction": {"rekognition:DetectCustomLabels"},  # inference.run_batch
    # training.next_version (train: true)
    "TrainModelFunction": {
        "rekognition:DescribeProjects",  # find_project_arn, the project's datasets
        "rekognition:DescribeProjectVersions",  # current F1, the new version's status
        "rekognition:CreateDataset",  # a project without a training dataset
        "rekognition:DescribeDataset",  # wait for the dataset between chunks
        "rekognition:UpdateDatasetEntries",  # the manifest, in chunks
        "rekognition:CreateProjectVersion",  # the training itself
    },
    # cleanup.clean_up / clean_up_ended_execution / sweep -> model_control.stop_if_unused
    **{
        owner: {
            "rekognition:StopProjectVersion",
            "rekognition:DescribeProjects",
            "rekognition:DescribeProjectVersions",
        }
        for owner in ("RunCleanupFunction", "CleanUpEndedRunFunction", "SweepModelsFunction")
    },
}
SENSITIVE_SERVICES = ("sagemaker", "iam", "lambda", "states", "secretsmanager", "ec2")
EXPECTED_SENSITIVE = {
    "LabelingLoopStateMachine": {
        "lambda:InvokeFunction",
        "states:StartExecution",  # Distributed Map children
        "states:DescribeExecution",
        "states:StopExecution",
        "sagemaker:CreateLabelingJob",
        "sagemaker:DescribeLabelingJob",
        "sagemaker:StopLabelingJob",  # a job past the review deadline
        "sagemaker:AddTags",  # CreateLabelingJob with the CostCenter tag
        "iam:PassRole",
    },
    "LabelingLoopStateMachineSchedule": {"states:StartExecution"},
    "SweepModelsFunctionSweep": {"lambda:InvokeFunction"},  # the sweep's schedule invokes it
    "GroundTruthRole": {"lambda:InvokeFunction"},
    "CollectLabelingJobsFunction": {"sagemaker:DescribeLabelingJob"},  # review.groundtruth.collect
    "ModelControlFunction": {"states:DescribeExecution"},  # model_control.live: prune dead lease holders
    # cleanup: review.groundtruth.stop (the run's jobs) and model_control.live
    **{
        owner: {"sagemaker:DescribeLabelingJob", "sagemaker:StopLabelingJob", "states:DescribeExecution"}
        for owner in ("RunCleanupFunction", "CleanUpEndedRunFunction", "SweepModelsFunction")
    },
    "LabelStudioReviewFunction": {
        "secretsmanager:GetSecretValue",
        # AWSLambdaVPCAccessExecutionRole (optional VPC placement)
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    },
}
LAMBDA_INVOKE_TASK = "arn:aws:states:::lambda:invoke"
AWS_SDK_TASK = re.compile(r"^arn:aws:states:::aws-sdk:(?P<service>[a-z0-9-]+):(?P<action>[a-zA-Z0-9]+)")
FUNCTION_RESOURCE = re.compile(
    r"^arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:\$\{AWS::AccountId\}:function:\$\{(?P<id>\w+)\}\*?$"
    r"|^\$\{(?P<att>\w+)\.Arn\}(:\*)?$"
)
TRUSTED_SERVICE = {
    "AWS::Lambda::Function": "lambda.amazonaws.com",
    "AWS::StepFunctions::StateMachine": "states.amazonaws.com",
    "AWS::Scheduler::Schedule": "scheduler.amazonaws.com",
}
GROUND_TRUTH_ROLE = "GroundTruthRole"


# Flattening the roles -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    owner: str  # the resource the role serves (function, state machine, schedule) or the role itself
    role: str
    source: str  # inline policy name or managed policy ARN
    effect: str
    action: str
    resource: str
    condition: str = ""
    when: str = ""  # the template condition the policy depends on, if any

    @property
    def service(self) -> str:
        return self.action.split(":", 1)[0]


def render(node: Any) -> list[str]:
    """A CloudFormation value as readable strings, one per Fn::If branch: `${Logical.Attr}` for
    GetAtt, `${Logical}` for Ref, Fn::Sub variables substituted."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [text for item in node for text in render(item)]
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return [] if value == "AWS::NoValue" else [f"${{{value}}}"]
        if key == "Fn::GetAtt":
            logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
            return [f"${{{logical_id}.{attribute}}}"]
        if key == "Fn::If":
            return render(value[1]) + render(value[2])
        if key == "Fn::Sub":
            if isinstance(value, str):
                return [value]
            text, variables = value
            names = list(variables)
            results = []
            for combination in itertools.product(*(render(variables[n]) for n in names)):
                rendered = text
                for name, replacement in zip(names, combination, strict=True):
                    rendered = rendered.replace(f"${{{name}}}", replacement)
                results.append(rendered)
            return results
        if key == "Fn::Join":
            separator, items = value
            return [separator.join(render(items))]
    return [json.dumps(node, sort_keys=True)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policies(role: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(template condition, policy) pairs, both branches of a conditional policy included."""
    for policy in role["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Fn::If" in policy:
            condition, when_true, when_false = policy["Fn::If"]
            for branch, label in ((when_true, condition), (when_false, f"!{condition}")):
                if isinstance(branch, dict) and "PolicyDocument" in branch:
                    yield label, branch
        else:
            yield "", policy


def role_owners(template: dict[str, Any]) -> dict[str, str]:
    """Role logical id -> the resource that uses it."""
    owners: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        role_ref = {
            "AWS::Lambda::Function": props.get("Role"),
            "AWS::StepFunctions::StateMachine": props.get("RoleArn"),
            "AWS::Scheduler::Schedule": props.get("Target", {}).get("RoleArn"),
        }.get(resource["Type"])
        if isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref:
            owners[role_ref["Fn::GetAtt"][0]] = logical_id
    return owners


def grants(template: dict[str, Any]) -> list[Grant]:
    owners = role_owners(template)
    found: list[Grant] = []
    for role_id, role in template["Resources"].items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        owner = owners.get(role_id, role_id)
        for when, policy in _policies(role):
            for statement in _as_list(policy["PolicyDocument"]["Statement"]):
                condition = (
                    json.dumps(statement["Condition"], sort_keys=True) if "Condition" in statement else ""
                )
                actions = _as_list(statement.get("Action", statement.get("NotAction")))
                if "NotAction" in statement:
                    actions = [f"NOT({a})" for a in actions]
                resources = render(statement.get("Resource", statement.get("NotResource")))
                if "NotResource" in statement:
                    resources = [f"NOT({r})" for r in resources]
                for action, resource in itertools.product(actions, resources):
                    found.append(
                        Grant(
                            owner,
                            role_id,
                            str(policy["PolicyName"]),
                            statement["Effect"],
                            action,
                            resource,
                            condition,
                            when,
                        )
                    )
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            for actions, resource in MANAGED_POLICIES.get(arn, [(["UNKNOWN-MANAGED-POLICY"], "?")]):
                found += [Grant(owner, role_id, arn, "Allow", action, resource) for action in actions]
    return found


def table(rows: Iterable[Grant]) -> str:
    """Role by role, actions that share resources and conditions on one line:

    DetectLabelsFunction (role DetectLabelsFunctionRole)
      Allow rekognition:DetectCustomLabels
            on arn:${AWS::Partition}:rekognition:...:project/*/version/*/*   <DetectLabelsFunctionRolePolicy2>
    """
    lines: list[str] = []
    by_owner: dict[str, list[Grant]] = {}
    for grant in rows:
        by_owner.setdefault(grant.owner, []).append(grant)
    for owner in sorted(by_owner):
        owned = by_owner[owner]
        lines.append(f"{owner} (role {owned[0].role})")
        resources: dict[tuple[str, str, str, str, str], set[str]] = {}
        for g in owned:
            resources.setdefault((g.effect, g.source, g.condition, g.when, g.action), set()).add(g.resource)
        groups: dict[tuple[str, str, str, str, tuple[str, ...]], list[str]] = {}
        for (effect, source, condition, when, action), found in resources.items():
            groups.setdefault((effect, source, condition, when, tuple(sorted(found))), []).append(action)
        for (effect, source, condition, when, found), actions in sorted(
            groups.items(), key=lambda item: (sorted(item[1])[0], item[0])
        ):
            lines.append(f"  {effect} {', '.join(sorted(actions))}")
            tag = f"<{source.rsplit('/', 1)[-1]}>" + (f" [when {when}]" if when else "")
            lines.append(f"        on {' | '.join(found)}   {tag}")
            if condition:
                lines.append(f"        if {condition}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def all_grants(translated_template: dict[str, Any]) -> list[Grant]:
    return grants(translated_template)


@pytest.fixture(scope="module")
def allows(all_grants: list[Grant]) -> list[Grant]:
    return [g for g in all_grants if g.effect == "Allow"]


def actions_of(allows: list[Grant], owner: str, services: Iterable[str]) -> set[str]:
    return {g.action for g in allows if g.owner == owner and g.service in set(services)}


# The table ----------------------------------------------------------------------------------------


def test_print_permission_table(all_grants: list[Grant]) -> None:
    assert all_grants, "no IAM roles found in the translated template"
    print("\n" + table(all_grants))


def test_only_known_managed_policies(translated_template: dict[str, Any]) -> None:
    attached = {
        (lid, arn)
        for lid, r in translated_template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        for arn in r["Properties"].get("ManagedPolicyArns", [])
    }
    unknown = sorted((lid, arn) for lid, arn in attached if arn not in MANAGED_POLICIES)
    assert not unknown, f"managed policies the test does not know (no *FullAccess): {unknown}"


def test_only_allow_statements(all_grants: list[Grant]) -> None:
    others = [g for g in all_grants if g.effect != "Allow"]
    assert not others, "Deny statements in roles hide what is granted; scope the Allow instead:\n" + table(
        others
    )


# Wildcards ----------------------------------------------------------------------------------------


def test_no_wildcard_or_negated_actions(allows: list[Grant]) -> None:
    bad = [g for g in allows if g.action == "*" or g.action.endswith(":*") or g.action.startswith("NOT(")]
    assert not bad, "Action * / service:* / NotAction granted:\n" + table(bad)


def test_no_negated_resources(allows: list[Grant]) -> None:
    bad = [g for g in allows if g.resource.startswith("NOT(")]
    assert not bad, "NotResource granted:\n" + table(bad)


def _star_accepted(grant: Grant) -> bool:
    if grant.source in ACCEPTED_MANAGED_WILDCARDS:
        return True
    if any(fnmatch.fnmatchcase(grant.action, pattern) for pattern in STAR_RESOURCE_ACTIONS):
        return True
    if grant.action == METRICS_ACTION and grant.condition:
        return "cloudwatch:namespace" in json.loads(grant.condition).get("StringEquals", {})
    return False


def test_star_resources_only_where_iam_allows_nothing_else(allows: list[Grant]) -> None:
    bad = [g for g in allows if g.resource == "*" and not _star_accepted(g)]
    assert not bad, 'Resource "*" for actions that support resource-level permissions:\n' + table(bad)


# Pass role, state machine -------------------------------------------------------------------------


def test_pass_role_only_for_ground_truth_to_sagemaker(
    allows: list[Grant], state_machine_logical_id: str
) -> None:
    passes = [g for g in allows if g.action in {"iam:PassRole", "iam:*"}]
    assert passes, "the state machine must pass the Ground Truth role to SageMaker"
    bad = [
        g
        for g in passes
        if g.owner != state_machine_logical_id
        or g.resource != f"${{{GROUND_TRUTH_ROLE}.Arn}}"
        or json.loads(g.condition or "{}").get("StringEquals", {}).get("iam:PassedToService")
        != "sagemaker.amazonaws.com"
    ]
    assert not bad, (
        "iam:PassRole only by the state machine, only on GroundTruthRole, only to sagemaker.amazonaws.com:\n"
        + table(bad)
    )


def _invoked_functions(definition: dict[str, Any], substitutions: dict[str, Any]) -> set[str]:
    """Logical ids of the functions the definition's Lambda tasks call (through the substitutions)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Type") == "Task" and node.get("Resource") == LAMBDA_INVOKE_TASK:
                name = str(node["Parameters"]["FunctionName"])
                key = re.fullmatch(r"\$\{(\w+)\}", name)
                assert key, f"FunctionName {name!r} should be a substitution"
                target = substitutions[key.group(1)]
                found.add(target["Fn::GetAtt"][0] if isinstance(target, dict) else str(target))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    return found


def _granted_functions(rows: list[Grant]) -> tuple[set[str], list[Grant]]:
    named, unparsed = set(), []
    for g in rows:
        match = FUNCTION_RESOURCE.match(g.resource)
        if match:
            named.add(match["id"] or match["att"])
        else:
            unparsed.append(g)
    return named, unparsed


def test_state_machine_invokes_exactly_the_template_functions_it_calls(
    allows: list[Grant],
    definition: dict[str, Any],
    state_machine: dict[str, Any],
    state_machine_logical_id: str,
    translated_template: dict[str, Any],
) -> None:
    invokes = [
        g for g in allows if g.owner == state_machine_logical_id and g.action == "lambda:InvokeFunction"
    ]
    granted, unparsed = _granted_functions(invokes)
    assert not unparsed, "lambda:InvokeFunction on something other than one template function:\n" + table(
        unparsed
    )
    functions = {
        lid for lid, r in translated_template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
    }
    assert granted <= functions, (
        f"invoke grants for functions not in the template: {sorted(granted - functions)}"
    )
    called = _invoked_functions(definition, state_machine["DefinitionSubstitutions"])
    assert granted == called, (
        f"granted but never called: {sorted(granted - called)}; "
        f"called but not granted: {sorted(called - granted)}\n" + table(invokes)
    )


def test_state_machine_sagemaker_is_labeling_jobs_only(
    allows: list[Grant], definition: dict[str, Any], state_machine_logical_id: str
) -> None:
    rows = [g for g in allows if g.owner == state_machine_logical_id and g.service == "sagemaker"]
    actions = {g.action for g in rows}
    assert actions == {
        "sagemaker:CreateLabelingJob",
        "sagemaker:DescribeLabelingJob",
        "sagemaker:StopLabelingJob",
        "sagemaker:AddTags",  # what a create with Tags is checked against (the CostCenter tag)
    }, table(rows)
    used = {
        f"{m['service']}:{m['action'][0].upper()}{m['action'][1:]}"
        for m in (
            AWS_SDK_TASK.match(s) for s in re.findall(r'"Resource":\s*"([^"]+)"', json.dumps(definition))
        )
        if m and m["service"] == "sagemaker"
    }
    assert actions - {"sagemaker:AddTags"} == used, (
        f"sagemaker actions granted {sorted(actions)} vs called by the definition {sorted(used)}"
    )
    tagged = "Tags" in json.dumps(definition) and "${CostCenter}" in json.dumps(definition)
    assert tagged, "sagemaker:AddTags is granted for the jobs' CostCenter tag: the definition sets none"
    assert all(g.resource.endswith(":labeling-job/*") for g in rows), table(rows)


def test_ground_truth_role_invokes_only_the_verification_functions(allows: list[Grant]) -> None:
    rows = [g for g in allows if g.owner == GROUND_TRUTH_ROLE and g.action == "lambda:InvokeFunction"]
    granted, unparsed = _granted_functions(rows)
    assert not unparsed, table(unparsed)
    assert granted == {"VerificationPreAnnotationFunction", "VerificationConsolidationFunction"}, table(rows)


# Per-role tables -------------------------------------------------------------------------------


def _owners(allows: list[Grant]) -> list[str]:
    return sorted({g.owner for g in allows})


def test_rekognition_actions_match_the_table(allows: list[Grant]) -> None:
    problems = []
    for owner in sorted(set(_owners(allows)) | set(EXPECTED_REKOGNITION)):
        granted = actions_of(allows, owner, ["rekognition"])
        expected = EXPECTED_REKOGNITION.get(owner, set())
        if granted != expected:
            problems.append(
                f"{owner}: granted but not called {sorted(granted - expected)}; "
                f"called but not granted {sorted(expected - granted)}"
            )
    rows = [g for g in allows if g.service == "rekognition"]
    assert not problems, "\n".join(problems) + "\n\n" + table(rows)


def test_sensitive_actions_match_the_table(allows: list[Grant]) -> None:
    problems = []
    for owner in sorted(set(_owners(allows)) | set(EXPECTED_SENSITIVE)):
        granted = actions_of(allows, owner, SENSITIVE_SERVICES)
        expected = EXPECTED_SENSITIVE.get(owner, set())
        if granted != expected:
            problems.append(
                f"{owner}: unexpected {sorted(granted - expected)}; missing {sorted(expected - granted)}"
            )
    rows = [g for g in allows if g.service in SENSITIVE_SERVICES]
    assert not problems, "\n".join(problems) + "\n\n" + table(rows)


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _rekognition_calls(path: Path) -> set[str]:
    """rekognition:<Action> for `rekognition.<method>(...)`, `<x>.rekognition.<method>(...)` and
    `rekognition.get_paginator("...")`."""
    calls = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        name = (
            target.id
            if isinstance(target, ast.Name)
            else target.attr
            if isinstance(target, ast.Attribute)
            else ""
        )
        if name != "rekognition":
            continue
        method = node.func.attr
        if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            method = str(node.args[0].value)
        calls.add(f"rekognition:{_pascal(method)}")
    return calls


def _import_closure(app: Path, layer: Path) -> list[Path]:
    """app.py and every labeling_loop module it imports, transitively."""
    seen: dict[str, Path] = {}
    queue = [app]
    files = [app]
    while queue:
        tree = ast.parse(queue.pop().read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labeling_loop"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("labeling_loop")]
            for name in names:
                path = layer / (name.replace(".", "/") + ".py")
                if path.is_file() and name not in seen:
                    seen[name] = path
                    files.append(path)
                    queue.append(path)
    return files


@pytest.mark.parametrize("owner", sorted(EXPECTED_REKOGNITION))
def test_rekognition_table_is_what_the_code_calls(
    owner: str, serverless_functions: dict[str, dict[str, Any]], repo_root: Path
) -> None:
    """Each action in the table is called by the function's code (app.py and the layer modules it
    imports). The reverse is the table's comments: a module may hold calls this function never takes."""
    app = repo_root / str(serverless_functions[owner]["CodeUri"]) / "app.py"
    closure = _import_closure(app, repo_root / "layer")
    called = set().union(*(_rekognition_calls(path) for path in closure))
    assert EXPECTED_REKOGNITION[owner] <= called, (
        f"{owner}: table lists actions its code never calls: {sorted(EXPECTED_REKOGNITION[owner] - called)}"
    )


# Trust --------------------------------------------------------------------------------------------


def test_roles_trust_only_their_service(translated_template: dict[str, Any]) -> None:
    resources = translated_template["Resources"]
    owners = role_owners(translated_template)
    bad = {}
    for role_id, role in resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        owner = owners.get(role_id)
        expected = TRUSTED_SERVICE.get(resources[owner]["Type"]) if owner else "sagemaker.amazonaws.com"
        principals = [
            s.get("Principal") for s in _as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
        ]
        if principals != [{"Service": [expected]}] and principals != [{"Service": expected}]:
            bad[role_id] = (principals, expected)
    assert not bad, f"roles trusting more than their one service: {bad}"


# The bucket the stack creates ---------------------------------------------------------------------


def _buckets(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}


def test_created_buckets_are_encrypted_and_private(translated_template: dict[str, Any]) -> None:
    buckets = _buckets(translated_template)
    assert buckets, "expected the stack's output bucket"
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        algorithms = {r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules}
        assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}, logical_id
        block = props["PublicAccessBlockConfiguration"]
        for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            assert block.get(key) is True, f"{logical_id}: {key}"
        ownership = props.get("OwnershipControls", {}).get("Rules", [{}])[0].get("ObjectOwnership")
        assert ownership == "BucketOwnerEnforced", f"{logical_id}: ACLs should be disabled"


def test_created_buckets_deny_insecure_transport(translated_template: dict[str, Any]) -> None:
    resources = translated_template["Resources"]
    for logical_id in _buckets(translated_template):
        policies = [
            r["Properties"]["PolicyDocument"]
            for r in resources.values()
            if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": logical_id}
        ]
        assert policies, f"{logical_id}: no bucket policy"
        denies = [
            s
            for p in policies
            for s in _as_list(p["Statement"])
            if s["Effect"] == "Deny"
            and s.get("Principal") in ("*", {"AWS": "*"})
            and "s3:*" in _as_list(s["Action"])
            and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
        ]
        assert denies, f"{logical_id}: no Deny s3:* when aws:SecureTransport is false"
        covered = {text for s in denies for text in render(s["Resource"])}
        assert {f"${{{logical_id}.Arn}}", f"${{{logical_id}.Arn}}/*"} <= covered, (
            f"{logical_id}: the TLS deny must cover the bucket and its objects, covers {sorted(covered)}"
        )
