"""Where the CLI's AWS calls go: one set of clients (from a profile and region as the AWS CLI takes
them, or injected: the local cloud, tests), and the deployed stack they act on.

Every failure a user can fix becomes an `OpsError` with one line that says what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from labeling_loop.kernel.s3_uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_cloudformation import CloudFormationClient
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_lambda import LambdaClient
    from types_boto3_rekognition import RekognitionClient
    from types_boto3_s3 import S3Client
    from types_boto3_sagemaker import SageMakerClient
    from types_boto3_stepfunctions import SFNClient

# The CLI waits on people, not on throughput: standard retries are plenty.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra="labeling-loop-cli")


class OpsError(Exception):
    """A problem the user can fix; its message is one line naming what to fix."""


@dataclass
class Clients:
    """The AWS clients the verbs use. Built from a session, or handed in whole (local cloud, tests)."""

    sfn: SFNClient
    s3: S3Client
    dynamodb: DynamoDBClient
    rekognition: RekognitionClient
    sagemaker: SageMakerClient
    cloudformation: CloudFormationClient | None = None
    lambda_: LambdaClient | None = None
    region: str = ""

    @classmethod
    def from_session(
        cls, session: Any, *, endpoint_url: str | None = None, config: Config = CLIENT_CONFIG
    ) -> Clients:
        """Every client from one session; `endpoint_url` sends them all to one endpoint (the local
        cloud's gateway)."""

        def client(name: str) -> Any:
            return session.client(name, config=config, endpoint_url=endpoint_url)

        return cls(
            sfn=client("stepfunctions"),
            s3=client("s3"),
            dynamodb=client("dynamodb"),
            rekognition=client("rekognition"),
            sagemaker=client("sagemaker"),
            cloudformation=client("cloudformation"),
            lambda_=client("lambda"),
            region=str(session.region_name),
        )


def session_for(profile: str | None, region: str | None) -> Any:
    """A boto3 session as the AWS CLI would make it (`--profile`, `--region`, AWS_PROFILE,
    AWS_REGION / AWS_DEFAULT_REGION, ~/.aws/config), refusing early when there is no region or no
    credentials, with what to do about it."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise OpsError(f"AWS profile {profile!r} not found: check --profile or ~/.aws/config") from None
    if not session.region_name:
        raise OpsError(
            "no AWS region: pass --region (e.g. --region us-east-1), set AWS_REGION, "
            "or set region in your profile (aws configure)"
        )
    try:
        credentials = session.get_credentials()
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise OpsError(f"AWS credentials incomplete: {error}; run aws configure or pass --profile") from None
    if credentials is None:
        raise OpsError("no AWS credentials: run aws configure (or aws sso login), or pass --profile")
    return session


def explain(error: Exception) -> str:
    """One line for an AWS error, naming the operation and what AWS said."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code, message = info.get("Code", "Error"), info.get("Message", "")
        operation = getattr(error, "operation_name", "call")
        hint = {
            "AccessDeniedException": " (your role lacks this permission)",
            "AccessDenied": " (your role lacks this permission)",
            "ExecutionDoesNotExist": " (check the run's name, or list runs with `labeling-loop list`)",
            "ValidationError": "",
        }.get(code, "")
        return f"{operation}: {code}: {message}{hint}"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials: run aws configure (or aws sso login), or pass --profile"
    return f"{type(error).__name__}: {error}"


@dataclass
class StackInfo:
    """What the verbs need to know about the deployed stack."""

    name: str
    state_machine_arn: str
    run_state_table: str
    output_location: str
    # The ValidateInput function's environment, when readable: RUN_DEFAULTS (the stack's defaults for
    # every run), its buckets, and what the stack grants a run (projects, inference units, workforce
    # types, its Label Studio): what the first state validates against.
    validator_environment: dict[str, str] | None = None
    region: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def run_defaults(self) -> dict[str, Any] | None:
        if self.validator_environment is None:
            return None
        return dict(json.loads(self.validator_environment["RUN_DEFAULTS"]))

    @property
    def images_bucket(self) -> str | None:
        images = (self.run_defaults or {}).get("images")
        return S3Uri.parse(images).bucket if images else None

    @property
    def output_bucket(self) -> str:
        return S3Uri.parse(self.output_location).bucket


def describe_stack(clients: Clients, stack: str) -> StackInfo:
    """The stack's outputs, and the ValidateInput function's environment (one source of truth: the
    same defaults and grants the first state validates against)."""
    if clients.cloudformation is None:
        raise OpsError("no CloudFormation client: pass --stack with a deployed stack name")
    try:
        described = clients.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            raise OpsError(
                f"stack {stack!r} not found in {clients.region}: check --stack and --region "
                "(sam deploy prints the stack name)"
            ) from None
        raise OpsError(explain(error)) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = {"StateMachineArn", "RunStateTableName", "OutputLocation"} - set(outputs)
    if missing:
        raise OpsError(f"stack {stack!r} has no output {sorted(missing)}: is it this project's stack?")
    return StackInfo(
        name=stack,
        state_machine_arn=outputs["StateMachineArn"],
        run_state_table=outputs["RunStateTableName"],
        output_location=outputs["OutputLocation"],
        validator_environment=_validator_environment(clients, stack),
        region=clients.region,
        extra=outputs,
    )


def _validator_environment(clients: Clients, stack: str) -> dict[str, str] | None:
    """The ValidateInput function's environment, or None when the user may not read the function
    (then only field types and bounds are checked before sending; the first state checks the rest)."""
    if clients.lambda_ is None or clients.cloudformation is None:
        return None
    try:
        resource = clients.cloudformation.describe_stack_resource(
            StackName=stack, LogicalResourceId="ValidateInputFunction"
        )["StackResourceDetail"]["PhysicalResourceId"]
        environment = clients.lambda_.get_function_configuration(FunctionName=resource)["Environment"]
        variables = dict(environment["Variables"])
        return variables if "RUN_DEFAULTS" in variables else None
    except (ClientError, KeyError, ValueError):
        return None


def execution_arn_for(clients: Clients, stack: StackInfo, run: str) -> str:
    """An execution ARN from what a user types: the ARN, the execution name, or `latest`."""
    if run.startswith("arn:"):
        return run
    if run == "latest":
        executions = clients.sfn.list_executions(stateMachineArn=stack.state_machine_arn, maxResults=1)[
            "executions"
        ]
        if not executions:
            raise OpsError("no runs yet: start one with `labeling-loop start`")
        return str(executions[0]["executionArn"])
    # arn:aws:states:<region>:<account>:stateMachine:<name> -> ...:execution:<name>:<run>
    return stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run}"
