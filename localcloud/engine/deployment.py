"""`template.yaml` "deployed" into moto, as CloudFormation would after the SAM transform: buckets,
the table, roles, log groups, the functions (registered with the Lambda runtime, with the
template's environment) and the state machine (its definition with every substitution resolved
from the template's own resources; docs/aws-facts.md §7.2: moto's CloudFormation would not).
"""

from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from localcloud.engine import trust
from localcloud.engine.events import Rule, Schedule
from localcloud.engine.lambda_runtime import FunctionSpec
from localcloud.engine.template import Template
from localcloud.paths import REPO_ROOT

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client

    from localcloud.engine.cloud import LocalCloud

ACCOUNT = "123456789012"
WORKTEAM = "arn:aws:sagemaker:{region}:123456789012:workteam/private-crowd/labeling-team"
# The project of the emulated models (LocalCloud.add_model): the stack allows runs to start them.
PROJECTS = "arn:aws:rekognition:{region}:123456789012:project/shapes/*"
_STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@dataclass
class Stack:
    state_machine_arn: str
    output_bucket: str
    images_bucket: str
    table: str
    ground_truth_role_arn: str
    functions: dict[str, FunctionSpec]
    parameters: dict[str, str]
    workteam_arn: str


@dataclass
class Deployment:
    stack: Stack
    # The union of the functions' environments: they share one process, hence one os.environ.
    environment: dict[str, str]
    # ARNs of the template's roles each service may assume (trust.py): Ground Truth gets only these.
    assumable: dict[str, tuple[str, ...]]
    rules: list[Rule]  # EventBridge rules whose target is one of the functions
    schedules: list[Schedule]  # EventBridge Scheduler schedules (functions and the state machine)


def _suffix(n: int = 12) -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=n))


def deploy(cloud: LocalCloud, parameters: dict[str, str] | None = None) -> Deployment:
    """Create what template.yaml declares in the cloud's moto and Lambda runtime."""
    config = cloud.config
    region, stack_name = config.region, config.stack_name
    overrides = {
        "ImagesBucketName": config.images_bucket,
        "WorkteamArn": WORKTEAM.format(region=region),
        "AllowedProjectArns": PROJECTS.format(region=region),
        **config.parameters,
        **(parameters or {}),
    }
    template = Template.load(
        config.template,
        overrides,
        {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    resources = {lid: r for lid, r in template.resources.items() if template.resource_enabled(lid)}
    # Physical ids first: resources refer to each other (GetAtt in environments and substitutions).
    arns = _name_resources(template, resources, region, stack_name)

    def attribute(logical_id: str, name: str) -> str:
        if name == "Arn" and logical_id in arns:
            return arns[logical_id]
        raise KeyError(f"GetAtt {logical_id}.{name} is not supported by the local cloud")

    template.attributes = attribute

    cloud.s3.create_bucket(Bucket=config.images_bucket)
    shared_env: dict[str, str] = {}
    functions: dict[str, FunctionSpec] = {}
    state_machine_arn = ""
    rules: list[Rule] = []
    schedules: list[Schedule] = []
    trust_documents: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        props = resource.get("Properties", {})
        physical_id = template.physical_ids.get(logical_id, "")
        if kind == "AWS::S3::Bucket":
            _create_bucket(cloud.s3, physical_id, template.resolve(props))
        elif kind == "AWS::DynamoDB::Table":
            _create_table(cloud.dynamodb, physical_id, template.resolve(props))
        elif kind == "AWS::SNS::Topic":
            _create_topic(cloud, physical_id, template.resolve(props))
        elif kind == "AWS::IAM::Role":
            document = template.resolve(props)["AssumeRolePolicyDocument"]
            cloud.iam.create_role(RoleName=physical_id, AssumeRolePolicyDocument=json.dumps(document))
            trust_documents[logical_id] = document
        elif kind == "AWS::Serverless::Function":
            functions[logical_id] = _function(template, logical_id, props, arns[logical_id])
            _share_environment(shared_env, functions[logical_id].environment)
            cloud.runtime.register(functions[logical_id])
            _events(template, logical_id, props, rules, schedules, function=functions[logical_id])
        elif kind == "AWS::Serverless::StateMachine":
            state_machine_arn = _create_state_machine(cloud, template, logical_id, props)
            _events(template, logical_id, props, rules, schedules, state_machine_arn=state_machine_arn)
    workteam = template.parameters["WorkteamArn"]
    stack = Stack(
        state_machine_arn=state_machine_arn,
        output_bucket=shared_env["OUTPUT_BUCKET"],
        images_bucket=config.images_bucket,
        table=shared_env["RUN_STATE_TABLE"],
        ground_truth_role_arn=arns["GroundTruthRole"],
        functions=functions,
        parameters=template.parameters,
        workteam_arn=workteam,
    )
    assumable = _assumable_roles(trust_documents, arns, region, state_machine_arn)
    return Deployment(stack, shared_env, assumable, rules, schedules)


class DeploymentError(RuntimeError):
    """What CloudFormation (or the service at its first use) would refuse."""


def _assumable_roles(
    documents: dict[str, dict[str, Any]], arns: dict[str, str], region: str, state_machine_arn: str
) -> dict[str, tuple[str, ...]]:
    """Each role's trust policy, evaluated with the keys its service sends (trust.py). A role Step
    Functions or Scheduler could not assume stops the deployment: the state machine or schedule
    using it could never run. A role SageMaker could not assume is left out of what Ground Truth may
    use: every labeling job naming it fails."""
    context = {
        "states.amazonaws.com": {trust.ACCOUNT_KEY: ACCOUNT, trust.SOURCE_ARN_KEY: state_machine_arn},
        # A schedule created without GroupName is in the default group (docs/aws-facts.md §5.5).
        "scheduler.amazonaws.com": {
            trust.ACCOUNT_KEY: ACCOUNT,
            trust.SOURCE_ARN_KEY: f"arn:aws:scheduler:{region}:{ACCOUNT}:schedule-group/default",
        },
        "sagemaker.amazonaws.com": {trust.ACCOUNT_KEY: ACCOUNT},
    }
    assumable: dict[str, list[str]] = {service: [] for service in context}
    for logical_id, document in documents.items():
        services = {
            service
            for statement in trust.as_list(document.get("Statement", []))
            for service in trust.principal_services(statement)
        }
        for service in sorted(services & set(context)):
            reason = trust.refusal(document, service, context[service])
            if reason is None:
                assumable[service].append(arns[logical_id])
            elif service != "sagemaker.amazonaws.com":
                raise DeploymentError(f"{logical_id}: {service} could not assume it: {reason}")
    return {service: tuple(roles) for service, roles in assumable.items()}


def _name_resources(
    template: Template, resources: dict[str, Any], region: str, stack_name: str
) -> dict[str, str]:
    """Give every resource its physical id (in `template.physical_ids`) and return their ARNs."""
    arns: dict[str, str] = {}
    ids = template.physical_ids
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            ids[logical_id] = f"{stack_name}-{logical_id}-{_suffix(8)}".lower()
            arns[logical_id] = f"arn:aws:s3:::{ids[logical_id]}"
        elif kind == "AWS::DynamoDB::Table":
            ids[logical_id] = f"{stack_name}-{logical_id}-{_suffix()}"
            arns[logical_id] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{ids[logical_id]}"
        elif kind == "AWS::IAM::Role":
            ids[logical_id] = f"{stack_name}-{logical_id}-{_suffix()}"[:64]
            arns[logical_id] = f"arn:aws:iam::{ACCOUNT}:role/{ids[logical_id]}"
        elif kind == "AWS::Serverless::Function":
            raw_name = props.get("FunctionName")
            ids[logical_id] = (
                template.resolve(raw_name) if raw_name else f"{stack_name}-{logical_id}-{_suffix()}"[:64]
            )
            arns[logical_id] = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{ids[logical_id]}"
        elif kind == "AWS::Logs::LogGroup":
            ids[logical_id] = template.resolve(props["LogGroupName"])
            arns[logical_id] = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{ids[logical_id]}:*"
        elif kind == "AWS::Serverless::LayerVersion":
            ids[logical_id] = f"arn:aws:lambda:{region}:{ACCOUNT}:layer:{logical_id}:1"
        elif kind == "AWS::SNS::Topic":
            ids[logical_id] = f"arn:aws:sns:{region}:{ACCOUNT}:{stack_name}-{logical_id}-{_suffix()}"
            arns[logical_id] = ids[logical_id]
        elif kind == "AWS::Serverless::StateMachine":
            name = template.resolve(props["Name"]) if "Name" in props else f"{logical_id}-{_suffix()}"
            arns[logical_id] = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{name}"
            ids[logical_id] = arns[logical_id]
    return arns


def _function(template: Template, logical_id: str, props: dict[str, Any], arn: str) -> FunctionSpec:
    globals_function = template.globals_function()
    env = {
        **template.resolve(globals_function.get("Environment", {})).get("Variables", {}),
        **template.resolve(props.get("Environment", {})).get("Variables", {}),
    }
    return FunctionSpec(
        logical_id=logical_id,
        name=template.physical_ids[logical_id],
        arn=arn,
        code_dir=REPO_ROOT / str(props["CodeUri"]),
        handler=str(props.get("Handler", globals_function.get("Handler"))),
        environment={k: str(v) for k, v in env.items()},
        timeout=int(props.get("Timeout", globals_function.get("Timeout", 3))),
        memory=int(props.get("MemorySize", globals_function.get("MemorySize", 128))),
    )


def _events(
    template: Template,
    logical_id: str,
    props: dict[str, Any],
    rules: list[Rule],
    schedules: list[Schedule],
    function: FunctionSpec | None = None,
    state_machine_arn: str | None = None,
) -> None:
    """The resource's SAM `Events`: EventBridge rules (functions only here) and ScheduleV2 schedules."""
    for event_name, event in props.get("Events", {}).items():
        event_props = template.resolve(event.get("Properties", {}))
        name = f"{logical_id}.{event_name}"
        if event["Type"] == "EventBridgeRule":
            if function is None:
                raise RuntimeError(f"{name}: EventBridge rules to a state machine are not emulated")
            rules.append(Rule(name, function, event_props["Pattern"]))
        elif event["Type"] == "ScheduleV2":
            raw_input = event_props.get("Input")
            schedules.append(
                Schedule(
                    name=name,
                    expression=str(event_props["ScheduleExpression"]),
                    enabled=event_props.get("State", "ENABLED") == "ENABLED",
                    input=json.loads(raw_input) if raw_input else {},
                    function=function,
                    state_machine_arn=state_machine_arn,
                )
            )
        else:
            raise RuntimeError(f"{name}: event type {event['Type']} is not emulated")


def _share_environment(shared: dict[str, str], environment: dict[str, str]) -> None:
    for key, value in environment.items():
        if shared.get(key, value) != value:
            raise RuntimeError(
                f"environment variable {key} differs between functions; the local cloud shares one process"
            )
        shared[key] = value


def _create_bucket(s3: S3Client, name: str, props: dict[str, Any]) -> None:
    s3.create_bucket(Bucket=name)
    if "CorsConfiguration" in props:
        # CloudFormation's CorsRule says ExposedHeaders where the S3 API says ExposeHeaders.
        rules: list[Any] = [  # the template's CorsRules, renamed: not typed here
            {("ExposeHeaders" if k == "ExposedHeaders" else k): v for k, v in rule.items()}
            for rule in props["CorsConfiguration"]["CorsRules"]
        ]
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )


def _create_topic(cloud: LocalCloud, arn: str, props: dict[str, Any]) -> None:
    sns = boto3.client("sns", region_name=cloud.config.region)
    created = sns.create_topic(Name=arn.rsplit(":", 1)[1])["TopicArn"]
    assert created == arn, (created, arn)
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])


def _create_table(dynamodb: DynamoDBClient, name: str, props: dict[str, Any]) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
    )


def _create_state_machine(
    cloud: LocalCloud, template: Template, logical_id: str, props: dict[str, Any]
) -> str:
    definition = (REPO_ROOT / str(props["DefinitionUri"])).read_text()
    substitutions = template.resolve(props.get("DefinitionSubstitutions", {}))
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", str(value))
    leftover = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition)))
    if leftover:
        raise RuntimeError(f"definition placeholders without a DefinitionSubstitutions entry: {leftover}")
    role_name = f"{cloud.config.stack_name}-{logical_id}Role-{_suffix()}"[:64]
    role = cloud.iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(_STATES_TRUST))
    name = str(template.resolve(props["Name"])) if "Name" in props else logical_id
    return str(
        cloud.sfn.create_state_machine(
            name=name, definition=definition, roleArn=role["Role"]["Arn"], type=props.get("Type", "STANDARD")
        )["stateMachineArn"]
    )
