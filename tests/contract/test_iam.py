"""IAM over the translated template: every role's (action, resource) pairs, SAM policy templates
and the template's own managed policies expanded, checked for wildcards, for actions and resources
beyond what the code touches (against explicit per-role tables, so that a new permission needs a test
change) and for trust policies without source conditions. Each checker is also run on a copy of
the template broken on purpose, to show it catches what it is for.
`pytest -s tests/contract/test_iam.py` prints the table of every role's permissions.

Also the bucket the stack creates: encrypted, not public, TLS only.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcloud.engine.trust import SENT_KEYS

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
# (docs/aws-facts.md §5.1 Rekognition, §5.4 CloudWatch, §5.6 Logs delivery and X-Ray).
STAR_RESOURCE_ACTIONS = (
    "rekognition:DescribeProjects",
    "cloudwatch:GetMetricStatistics",
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
    "DetectLabelsFunction": {
        "rekognition:DetectCustomLabels",  # inference.run_batch
        # redrive.model_for_resumed_batch: a redriven run restarts the model its cleanup stopped
        "rekognition:DescribeProjects",
        "rekognition:DescribeProjectVersions",
        "rekognition:StartProjectVersion",
    },
    # review.label_set.project_labels: the review's labels, before the model starts
    "ValidateInputFunction": {"rekognition:DescribeProjects", "rekognition:ListDatasetLabels"},
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
SENSITIVE_SERVICES = ("sagemaker", "iam", "lambda", "states", "secretsmanager", "ec2", "sns")
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
    "DetectLabelsFunction": {"states:DescribeExecution"},  # redrive.take_back: only a running execution
    # cleanup: review.groundtruth.stop (the run's jobs) and model_control.live
    **{
        owner: {"sagemaker:DescribeLabelingJob", "sagemaker:StopLabelingJob", "states:DescribeExecution"}
        for owner in ("RunCleanupFunction", "CleanUpEndedRunFunction", "SweepModelsFunction")
    },
    "NotifyFunction": {"sns:Publish"},  # notify.publish, to the stack's topic (STACK_TOPICS)
    "BuildManifestFunction": {"states:GetExecutionHistory"},  # report.engine_usage: the run's cost
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
GROUND_TRUTH_ROLE = "GroundTruthRole"
# The projects whose models runs may start, as the roles name them: AllowedProjectArns, or else
# the project of ProjectVersionArn (template.yaml). Starting a model, inferring with it, reading
# its project's labels and training it (datasets, new versions): on these only. Stopping and
# describing stay account-wide, so that a model the workflow started remains stoppable after the
# stack allows fewer projects.
ALLOWED_PROJECTS = frozenset({"${AllowedProjectArns}", "{${ProjectVersionArn} split by '/version/' [0]}/*"})
MODEL_SCOPED = frozenset(
    {
        "rekognition:StartProjectVersion",
        "rekognition:DetectCustomLabels",
        "rekognition:ListDatasetLabels",
        "rekognition:CreateDataset",
        "rekognition:DescribeDataset",
        "rekognition:UpdateDatasetEntries",
        "rekognition:CreateProjectVersion",
    }
)
# Roles that change a project (its datasets, new versions) reach only the allowed projects with
# every Rekognition action that takes a resource, describing included.
PROJECT_SCOPED_OWNERS = frozenset({"TrainModelFunction"})
# The topics of this stack: the only ones a role may publish to.
STACK_TOPICS = frozenset({"${NotificationTopic}"})

# S3: only these actions (no delete, no ACLs, no lifecycle or bucket settings), each on a place:
RUN_FILES = "run files"  # objects under the output prefix: <output bucket>/${OutputPrefix}/*
OUTPUT_LISTING = "output bucket"  # s3:ListBucket on the output bucket, limited to the prefix
IMAGES = "images"  # objects of the images bucket (any prefix: the input chooses it)
IMAGES_LISTING = "images bucket"
S3_ACTIONS = frozenset(
    {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListBucket", "s3:GetBucketLocation"}
)
BUCKET_ACTIONS = frozenset({"s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketAcl"})
# Custom Labels reads a dataset's manifest and images with the identity of whoever calls CreateDataset,
# UpdateDatasetEntries or CreateProjectVersion (docs/aws-facts.md §5.1): besides reading and listing,
# object versions, tags and ACLs and the buckets' ACL and location. Reads only (no ACL is ever set),
# and only for the roles that make those calls.
CUSTOM_LABELS_READ_ACTIONS = frozenset(
    {"s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectAcl", "s3:GetBucketAcl"}
)
CUSTOM_LABELS_CALLERS = frozenset({"TrainModelFunction"})
OUTPUT_BUCKETS = ("${OutputBucket}", "${OutputBucketName}")
RUN_READ = {("s3:GetObject", RUN_FILES), ("s3:ListBucket", OUTPUT_LISTING)}
RUN_WRITE = {("s3:PutObject", RUN_FILES), ("s3:AbortMultipartUpload", RUN_FILES)}
READ_IMAGES = {("s3:GetObject", IMAGES), ("s3:ListBucket", IMAGES_LISTING)}
CUSTOM_LABELS_READS = (
    READ_IMAGES
    | {
        (action, place)
        for action in ("s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectAcl")
        for place in (IMAGES, RUN_FILES)
    }
    | {
        (action, place)
        for action in ("s3:GetBucketAcl", "s3:GetBucketLocation")
        for place in (IMAGES_LISTING, OUTPUT_LISTING)
    }
)
CLEANUP_OWNERS = ("RunCleanupFunction", "CleanUpEndedRunFunction", "SweepModelsFunction")
# Equality per owner, like the tables above. Listing is granted with reading: S3 answers 404 for a
# missing key only to a caller that may list (docs/aws-facts.md §5.5), and the code tells a missing
# run file from a refused one. Writing includes aborting a multipart upload (JsonlWriter).
EXPECTED_S3 = {
    "ValidateInputFunction": RUN_READ | RUN_WRITE,  # run_input.start_run: config.json
    "ListImagesFunction": READ_IMAGES | RUN_WRITE,  # inference.listing: inventory, batches
    # inference.detect: the batch's slice of inventory.jsonl, image headers, predictions and skips
    "DetectLabelsFunction": READ_IMAGES | RUN_READ | RUN_WRITE,
    # review.labelstudio.images copies the images whose keys Label Studio cannot load (never lists)
    "PlanReviewFunction": RUN_READ | RUN_WRITE | {("s3:GetObject", IMAGES)},
    "ModelControlFunction": RUN_READ,  # redrive.take_back: the inventory whose images it claims again
    # The network-facing function: the run's files only; Label Studio reads images itself.
    "LabelStudioReviewFunction": RUN_READ | RUN_WRITE,
    "CollectLabelingJobsFunction": RUN_READ | RUN_WRITE,
    # report.thumbnails reads the images it shows (never lists them)
    "BuildManifestFunction": RUN_READ | RUN_WRITE | {("s3:GetObject", IMAGES)},
    # training.next_version: its state, the manifest in chunks, the report; Custom Labels' own reads
    "TrainModelFunction": RUN_READ | RUN_WRITE | CUSTOM_LABELS_READS,
    "NotifyFunction": RUN_READ,  # notify.review_waiting: the review's jobs or Label Studio project
    **{owner: RUN_READ for owner in CLEANUP_OWNERS},  # cleanup: the run's job list and inventory
    "VerificationConsolidationFunction": {("s3:GetObject", RUN_FILES)},  # Ground Truth's answers
    "LabelingLoopStateMachine": {("s3:GetObject", RUN_FILES), ("s3:PutObject", RUN_FILES)},  # Map
    # What Ground Truth documents for its job role (docs/aws-facts.md §5.2).
    GROUND_TRUTH_ROLE: READ_IMAGES
    | RUN_WRITE
    | {
        ("s3:GetObject", RUN_FILES),
        ("s3:ListBucket", OUTPUT_LISTING),
        ("s3:GetBucketLocation", OUTPUT_LISTING),
        ("s3:GetBucketLocation", IMAGES_LISTING),
    },
}
# Ground Truth lists the buckets as its documentation says; it is not held to the prefix condition.
UNCONDITIONED_LISTING = frozenset({GROUND_TRUTH_ROLE})
DYNAMODB_ACTIONS = frozenset(
    {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
)
EXPECTED_DYNAMODB = {
    "ValidateInputFunction": {"dynamodb:PutItem", "dynamodb:UpdateItem"},  # run_records.register
    "ListImagesFunction": {"dynamodb:UpdateItem"},  # claims.try_claim
    # model_lease; redrive.take_back: run_records.reactivate, claims.claim_many
    "ModelControlFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"},
    "DetectLabelsFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"},
    # claims.settle (mark_labeled, release, defer), run_records.finish
    "BuildManifestFunction": {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"},
    # model_lease, claims.release_all, run_records.get/finish/active
    **{owner: {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} for owner in CLEANUP_OWNERS},
}
# botocore method -> the IAM action it needs (docs/aws-facts.md §5.5).
CODE_ACTIONS = {
    "s3": {
        "get_object": {"s3:GetObject"},
        "head_object": {"s3:GetObject"},
        "put_object": {"s3:PutObject"},
        "copy_object": {"s3:GetObject", "s3:PutObject"},
        "upload_fileobj": {"s3:PutObject", "s3:AbortMultipartUpload"},
        "list_objects_v2": {"s3:ListBucket"},
    },
    "dynamodb": {
        "get_item": {"dynamodb:GetItem"},
        "put_item": {"dynamodb:PutItem"},
        "update_item": {"dynamodb:UpdateItem"},
        "delete_item": {"dynamodb:DeleteItem"},
    },
}

# Trust: services that document aws:SourceAccount / aws:SourceArn for the roles they assume, or for
# the topic policies that let them publish (CloudWatch alarms), must be held to this stack's account
# and resources with exactly the keys they send (docs/aws-facts.md §5.5): a condition on a key the
# service does not send would refuse it every time. The local cloud evaluates trust policies with the
# same table (localcloud/engine/trust.py). Lambda documents none for execution roles: a function's
# role is only ever used by the function it is configured on.
DOCUMENTED_SOURCE_KEYS: dict[str, frozenset[str]] = {
    **{service: keys for service, keys in SENT_KEYS.items() if keys},
    # The alarm topic's policy (not a role): assumed to be the keys other services document (§8).
    "cloudwatch.amazonaws.com": frozenset({"aws:SourceAccount", "aws:SourceArn"}),
}
SOURCE_CONDITION_SERVICES = frozenset(DOCUMENTED_SOURCE_KEYS)
NO_SOURCE_CONDITION_SERVICES = frozenset({"lambda.amazonaws.com"})

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
        if key == "Fn::Select" and isinstance(value[1], dict) and "Fn::Split" in value[1]:
            index, (separator, text) = value[0], value[1]["Fn::Split"]
            return [f"{{{whole} split by {separator!r} [{index}]}}" for whole in render(text)]
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


def _documents(template: dict[str, Any], role: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(source, template condition, policy document) of a role's inline policies and of the
    template's own managed policies (AWS::IAM::ManagedPolicy) it attaches."""
    for when, policy in _policies(role):
        yield str(policy["PolicyName"]), when, policy["PolicyDocument"]
    for arn in role["Properties"].get("ManagedPolicyArns", []):
        logical_id = arn.get("Ref") if isinstance(arn, dict) else None
        resource = template["Resources"].get(logical_id or "", {})
        if resource.get("Type") == "AWS::IAM::ManagedPolicy":
            yield str(logical_id), "", resource["Properties"]["PolicyDocument"]


def grants(template: dict[str, Any]) -> list[Grant]:
    owners = role_owners(template)
    found: list[Grant] = []
    for role_id, role in template["Resources"].items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        owner = owners.get(role_id, role_id)
        for source, when, document in _documents(template, role):
            for statement in _as_list(document["Statement"]):
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
                            source,
                            statement["Effect"],
                            action,
                            resource,
                            condition,
                            when,
                        )
                    )
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            if isinstance(arn, dict):
                continue  # the template's own managed policy, expanded above
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
    resources = translated_template["Resources"]
    attached = {
        (lid, arn if isinstance(arn, str) else json.dumps(arn))
        for lid, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
        for arn in r["Properties"].get("ManagedPolicyArns", [])
        # the template's own managed policies are read statement by statement (grants)
        if not (
            isinstance(arn, dict)
            and resources.get(arn.get("Ref", ""), {}).get("Type") == "AWS::IAM::ManagedPolicy"
        )
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


# Resources: what the code touches, and nothing wider -----------------------------------------------


def s3_place(grant: Grant) -> str | None:
    """Which of the places the code touches an S3 grant names, or None for anything else."""
    arn = grant.resource.removeprefix("arn:${AWS::Partition}:s3:::")
    bucket, slash, key = arn.partition("/")
    if bucket in OUTPUT_BUCKETS:
        if slash and key == "${OutputPrefix}/*":
            return RUN_FILES
        return OUTPUT_LISTING if not slash else None
    if bucket == "${ImagesBucketName}":
        return IMAGES if slash and key == "*" else IMAGES_LISTING if not slash else None
    return None


def _lists_only_the_prefix(grant: Grant) -> bool:
    condition = json.loads(grant.condition or "{}")
    prefixes = {
        text
        for operator in ("StringLike", "StringLikeIfExists", "StringEquals")
        for text in render(condition.get(operator, {}).get("s3:prefix", []))
    }
    return prefixes == {"${OutputPrefix}/*"}


def resource_problems(allows: list[Grant]) -> list[str]:
    """Every grant wider than what the code touches: "*" where the action takes a resource, S3
    actions beyond read/write (delete, ACLs, lifecycle, bucket settings), objects of the output
    bucket outside the output prefix, listing it without the prefix condition, a model-scoped
    Rekognition action beyond the allowed projects, the run-state table's actions beyond items, a
    topic the stack does not own."""
    problems = []
    for g in allows:
        where = f"{g.owner} <{g.source}>: {g.action} on {g.resource}"
        if g.resource == "*" and not _star_accepted(g):
            problems.append(f'{where}: "*" for an action that takes a resource')
        if g.service == "s3":
            place = s3_place(g)
            custom_labels_read = g.action in CUSTOM_LABELS_READ_ACTIONS and g.owner in CUSTOM_LABELS_CALLERS
            if g.action not in S3_ACTIONS and not custom_labels_read:
                problems.append(f"{where}: not a read or write of objects (no delete, ACL, lifecycle)")
            if place is None:
                problems.append(f"{where}: neither the run files (output prefix) nor the images")
            elif (place in (RUN_FILES, IMAGES)) != (g.action not in BUCKET_ACTIONS):
                problems.append(f"{where}: a bucket action on objects, or an object action on a bucket")
            if (
                place == OUTPUT_LISTING
                and g.action == "s3:ListBucket"
                and g.owner not in UNCONDITIONED_LISTING
                and not _lists_only_the_prefix(g)
            ):
                problems.append(f"{where}: lists the whole output bucket (no s3:prefix condition)")
        scoped = g.action in MODEL_SCOPED or (
            g.owner in PROJECT_SCOPED_OWNERS and g.service == "rekognition" and g.resource != "*"
        )
        if scoped and g.resource not in ALLOWED_PROJECTS:
            problems.append(f"{where}: beyond the projects the stack allows ({sorted(ALLOWED_PROJECTS)})")
        if g.service == "sns" and g.resource not in STACK_TOPICS:
            problems.append(f"{where}: a topic this stack does not own ({sorted(STACK_TOPICS)})")
        if g.service == "dynamodb" and (
            g.action not in DYNAMODB_ACTIONS or g.resource != "${RunStateTable.Arn}"
        ):
            problems.append(f"{where}: only item reads and writes, on the run-state table")
    return problems


def test_no_grant_is_wider_than_what_the_code_touches(allows: list[Grant]) -> None:
    problems = resource_problems(allows)
    assert not problems, "\n".join(problems)


def _table_of(allows: list[Grant], service: str) -> dict[str, set[Any]]:
    found: dict[str, set[Any]] = {}
    for g in allows:
        if g.service == service:
            found.setdefault(g.owner, set()).add((g.action, s3_place(g)) if service == "s3" else g.action)
    return found


@pytest.mark.parametrize(("service", "expected"), [("s3", EXPECTED_S3), ("dynamodb", EXPECTED_DYNAMODB)])
def test_s3_and_dynamodb_match_the_tables(
    allows: list[Grant], service: str, expected: dict[str, Any]
) -> None:
    granted = _table_of(allows, service)
    problems = []
    for owner in sorted(set(granted) | set(expected)):
        have, want = granted.get(owner, set()), expected.get(owner, set())
        if have != want:
            problems.append(
                f"{owner}: not in the table {sorted(have - want)}; not granted {sorted(want - have)}"
            )
    rows = [g for g in allows if g.service == service]
    assert not problems, "\n".join(problems) + "\n\n" + table(rows)


def _calls(path: Path, client: str) -> set[str]:
    """IAM actions for `<client>.<method>(...)` and `<client>.get_paginator("<method>")` in a file."""
    actions: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
        method = node.func.attr
        if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            method = str(node.args[0].value)
        if name in (client, f"_{client}"):  # a module's client, or an object's (JsonlWriter._s3)
            actions |= CODE_ACTIONS[client].get(method, set())
    return actions


@pytest.mark.parametrize(
    ("service", "owner"),
    [
        (service, owner)
        for service, expected in (("s3", EXPECTED_S3), ("dynamodb", EXPECTED_DYNAMODB))
        for owner in sorted(expected)
        if owner.endswith("Function")
    ],
)
def test_s3_and_dynamodb_tables_are_what_the_code_calls(
    service: str, owner: str, serverless_functions: dict[str, dict[str, Any]], repo_root: Path
) -> None:
    """Each action a function is granted is called by its code (app.py and the layer modules it
    imports): a permission the code no longer uses shows up here."""
    expected = EXPECTED_S3 if service == "s3" else EXPECTED_DYNAMODB
    granted = set(expected[owner])
    closure = _import_closure(
        repo_root / str(serverless_functions[owner]["CodeUri"]) / "app.py", repo_root / "layer"
    )
    if service == "s3" and owner in CUSTOM_LABELS_CALLERS:
        # Custom Labels' reads with this role's identity are justified by the calls that make them.
        rekognition = set().union(*(_rekognition_calls(path) for path in closure))
        assert rekognition & {"rekognition:CreateDataset", "rekognition:CreateProjectVersion"}, owner
        granted -= CUSTOM_LABELS_READS
    actions = {item[0] if isinstance(item, tuple) else item for item in granted}
    called = set().union(*(_calls(path, service) for path in closure))
    assert actions <= called, f"{owner}: granted actions its code never calls: {sorted(actions - called)}"


# Trust --------------------------------------------------------------------------------------------


def _trusted_services(statement: dict[str, Any]) -> list[str]:
    return [str(s) for s in _as_list(statement.get("Principal", {}).get("Service", []))]


def _service_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every role's trust policy and every topic policy's Allow."""
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            document = resource["Properties"]["AssumeRolePolicyDocument"]
        elif resource["Type"] == "AWS::SNS::TopicPolicy":
            document = resource["Properties"]["PolicyDocument"]
        else:
            continue
        for statement in _as_list(document["Statement"]):
            if statement.get("Effect") == "Allow":
                yield logical_id, statement


def trust_problems(template: dict[str, Any]) -> list[str]:
    """Roles a service may assume, and topics it may publish to, for anyone's resources: every such
    statement for a service that documents source conditions must hold it to this account
    (aws:SourceAccount) and, when the service sends it, to this stack's resources (aws:SourceArn in
    this account), and use no source key the service does not send."""
    problems = []
    for logical_id, statement in _service_statements(template):
        for service in _trusted_services(statement):
            if service in NO_SOURCE_CONDITION_SERVICES:
                continue
            if service not in SOURCE_CONDITION_SERVICES:
                problems.append(f"{logical_id}: trusts {service}, which this test has no rule for")
                continue
            documented = DOCUMENTED_SOURCE_KEYS[service]
            condition = statement.get("Condition", {})
            account = condition.get("StringEquals", {}).get("aws:SourceAccount")
            source_arn = {
                text
                for operator in ("ArnLike", "ArnEquals")
                for text in render(condition.get(operator, {}).get("aws:SourceArn", []))
            }
            used = {
                key for conditions in condition.values() for key in conditions if key.startswith("aws:Source")
            }
            if account != {"Ref": "AWS::AccountId"}:
                problems.append(f"{logical_id}: {service} without aws:SourceAccount = this account")
            if "aws:SourceArn" in documented and (
                not source_arn or not all(":${AWS::AccountId}:" in arn for arn in source_arn)
            ):
                problems.append(f"{logical_id}: {service} without aws:SourceArn in this account")
            for key in sorted(used - documented):
                problems.append(f"{logical_id}: {service} is held to {key}, which it does not send")
    return problems


def test_trust_policies_hold_services_to_this_stack(translated_template: dict[str, Any]) -> None:
    problems = trust_problems(translated_template)
    assert not problems, "\n".join(problems)


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


# The checks catch what they are for ------------------------------------------------------------------


def _statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    """The policy statement with this Sid, in a role's inline policies (conditional ones included),
    a managed policy or a topic policy."""
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for _, policy in _policies(resource)]
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::SNS::TopicPolicy"):
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in _as_list(document["Statement"]):
                if statement.get("Sid") == sid:
                    found: dict[str, Any] = statement
                    return found
    raise KeyError(sid)


def _trust(template: dict[str, Any], role_id: str) -> dict[str, Any]:
    """The (only) statement of a role's trust policy."""
    document = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]
    statement: dict[str, Any] = document["Statement"][0]
    return statement


def _add_action(template: dict[str, Any], sid: str, action: str) -> None:
    statement = _statement(template, sid)
    statement["Action"] = [*_as_list(statement["Action"]), action]


_WHOLE_OUTPUT_BUCKET = {
    "Fn::Sub": ["arn:${AWS::Partition}:s3:::${Bucket}/*", {"Bucket": {"Ref": "OutputBucketName"}}]
}
_ANY_MODEL = {
    "Fn::Sub": "arn:${AWS::Partition}:rekognition:${AWS::Region}:${AWS::AccountId}:project/*/version/*/*"
}
_ANY_PROJECT = {"Fn::Sub": "arn:${AWS::Partition}:rekognition:${AWS::Region}:${AWS::AccountId}:project/*/*"}
_ANY_TOPIC = {"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:*"}
# Ways to widen the template that the checks above must report, each applied to a copy.
BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "a wildcard resource": lambda t: _statement(t, "ReadRunFiles").update(Resource="*"),
    "objects of the whole output bucket": lambda t: _statement(t, "WriteRunFiles").update(
        Resource=_WHOLE_OUTPUT_BUCKET
    ),
    "a delete": lambda t: _add_action(t, "WriteRunFiles", "s3:DeleteObject"),
    "an ACL": lambda t: _add_action(t, "WriteRunFiles", "s3:PutObjectAcl"),
    "a lifecycle rule": lambda t: _add_action(t, "ListRunFiles", "s3:PutLifecycleConfiguration"),
    "listing the whole output bucket": lambda t: _statement(t, "ListRunFiles").pop("Condition"),
    "starting any model of the account": lambda t: _statement(t, "StartModels").update(Resource=_ANY_MODEL),
    "inferring with any model": lambda t: _statement(t, "Inference").update(Resource=_ANY_MODEL),
    "scanning the run-state table": lambda t: _add_action(t, "ModelLeases", "dynamodb:Scan"),
    "training a model of any project": lambda t: _statement(t, "TrainOnProject").update(
        Resource=_ANY_PROJECT
    ),
    "reading object ACLs beyond the Custom Labels caller": lambda t: _add_action(
        t, "ReadRunFiles", "s3:GetObjectAcl"
    ),
    "writing an object ACL where Custom Labels reads": lambda t: _add_action(
        t, "CustomLabelsReadsAsCaller", "s3:PutObjectAcl"
    ),
    "thumbnails from the whole output bucket": lambda t: _statement(t, "ReadImagesForThumbnails").update(
        Resource=_WHOLE_OUTPUT_BUCKET
    ),
    "publishing to any topic": lambda t: _statement(t, "PublishNotifications").update(Resource=_ANY_TOPIC),
    "alarms of any account publishing to the alarm topic": lambda t: _statement(t, "AlarmsOfThisAccount").pop(
        "Condition"
    ),
    "Ground Truth trusted without a source": lambda t: _trust(t, "GroundTruthRole").pop("Condition"),
    # The issue-19 finding: a labeling job's aws:SourceArn is documented nowhere (docs/aws-facts.md §8).
    "Ground Truth held to a key it does not send": lambda t: _trust(t, "GroundTruthRole")["Condition"].update(
        ArnLike={
            "aws:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:labeling-job/*"
            }
        }
    ),
    "schedules trusted from any account": lambda t: _trust(t, "LabelingLoopScheduleRole")["Condition"].pop(
        "StringEquals"
    ),
    "the sweep's schedule trusted for any resource": lambda t: _trust(t, "SweepModelsScheduleRole")[
        "Condition"
    ].pop("ArnLike"),
    "the state machine's role trusted for any state machine": lambda t: _trust(
        t, "LabelingLoopStateMachineRole"
    )["Condition"].pop("ArnLike"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_checks_report_a_template_widened_on_purpose(
    translated_template: dict[str, Any], breakage: str
) -> None:
    # GIVEN the deployed template with one grant or trust widened
    broken = copy.deepcopy(translated_template)
    BREAKAGES[breakage](broken)
    # WHEN the resource and trust checks read it
    problems = resource_problems([g for g in grants(broken) if g.effect == "Allow"]) + trust_problems(broken)
    # THEN they report it (the same checks find nothing in the real template, tests above)
    assert problems, f"nothing reported for {breakage}"


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
