"""The local cloud: `template.yaml` "deployed" into moto, the real handlers run in process, the
Rekognition Custom Labels and Ground Truth emulators answering the calls AWS would.

    with LocalCloud(LocalCloudConfig()) as cloud:
        stack = cloud.deploy()
        cloud.upload_folder(images_dir, "images/")
        arn = cloud.add_model(truth)
        outcome = cloud.run({"projectVersionArn": arn, ...}, name="run-1")
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import string
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from localcloud import hooks, interpreter
from localcloud.emulators.base import ServiceError
from localcloud.emulators.rekognition import CustomLabelsConfig, CustomLabelsEmulator
from localcloud.emulators.sagemaker import GroundTruthConfig, GroundTruthEmulator
from localcloud.lambda_runtime import FunctionSpec, LambdaRuntime
from localcloud.template import Template
from localcloud.truth import Truth

LOG = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
WORKTEAM = "arn:aws:sagemaker:{region}:123456789012:workteam/private-crowd/labeling-team"


@dataclass
class LocalCloudConfig:
    region: str = "us-east-1"
    stack_name: str = "labeling-local"
    images_bucket: str = "labeling-images"
    # Wait states and Retry intervals run this much faster than defined (0.01: a 60 s poll takes 0.6 s).
    time_scale: float = 0.01
    rekognition: CustomLabelsConfig = field(default_factory=CustomLabelsConfig)
    groundtruth: GroundTruthConfig = field(default_factory=GroundTruthConfig)
    parameters: dict[str, str] = field(default_factory=dict)
    template: Path = REPO / "template.yaml"


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


_dynamodb_write_lock = threading.RLock()


def _atomic_dynamodb_writes() -> None:
    """DynamoDB applies each write atomically; moto's backend does not under threads (measured: 8 of
    200 trials of 8 concurrent `ADD` updates to one item lost an update). Leases and image claims rely
    on atomic conditional writes, so the local cloud serialises moto's DynamoDB writes. Idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_localcloud_atomic", False):
            continue

        def atomic(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return __method(self, *args, **kwargs)

        atomic._localcloud_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


def _suffix(n: int = 12) -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=n))


class LocalCloud:
    """One in-process cloud. Not re-entrant: one at a time per process (moto's state is global)."""

    _active_lock = threading.Lock()

    def __init__(self, config: LocalCloudConfig | None = None) -> None:
        self.config = config or LocalCloudConfig()
        self.runtime = LambdaRuntime()
        self.truth: dict[str, Truth] = {}
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._saved_env: dict[str, str | None] = {}
        self.stack: Stack | None = None
        self.rekognition: CustomLabelsEmulator
        self.groundtruth: GroundTruthEmulator

    # Lifecycle ----------------------------------------------------------------------------------

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __enter__(self) -> LocalCloud:
        if not LocalCloud._active_lock.acquire(blocking=False):
            raise RuntimeError("another LocalCloud is active in this process")
        region = self.config.region
        # Fake credentials: nothing here may ever reach AWS.
        self._set_env(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": region,
                "AWS_REGION": region,
                # What the Lambda runtime would provide, and Powertools' switches for a test process.
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        interpreter.apply_all(self.config.time_scale)
        _atomic_dynamodb_writes()
        hooks.install()
        self._mock.start()
        self.s3 = boto3.client("s3", region_name=region)
        self.sfn = boto3.client("stepfunctions", region_name=region)
        self.dynamodb = boto3.client("dynamodb", region_name=region)
        self.iam = boto3.client("iam", region_name=region)
        self.rekognition = CustomLabelsEmulator(self.s3, self.config.rekognition)
        self.groundtruth = GroundTruthEmulator(
            self.s3, self._invoke_for_groundtruth, self.truth, region, self.config.groundtruth
        )
        hooks.serve("lambda", self.runtime.responder)
        hooks.serve("rekognition", self._emulated(self.rekognition))
        hooks.serve("sagemaker", self._emulated(self.groundtruth))
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self._wait_for_running_executions()
        finally:
            for service in ("lambda", "rekognition", "sagemaker", "s3"):
                hooks.stop_serving(service)
            self._mock.stop()
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            LocalCloud._active_lock.release()

    def _wait_for_running_executions(self) -> None:
        """Stop what is still running, so no interpreter thread outlives the mock."""
        if not self.stack:
            return
        for page in self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.stack.state_machine_arn, statusFilter="RUNNING"
        ):
            for execution in page["executions"]:
                self.sfn.stop_execution(executionArn=execution["executionArn"], error="LocalCloudShutdown")

    @staticmethod
    def _emulated(emulator: Any) -> hooks.Responder:
        def respond(operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
            try:
                return 200, {}, hooks.json_body(emulator.handle(operation, params))
            except ServiceError as error:
                return hooks.json_error(error.code, error.message, error.http_status)

        return respond

    def _invoke_for_groundtruth(self, arn: str, payload: dict[str, Any]) -> Any:
        result, function_error = self.runtime.invoke(arn, payload)
        if function_error:
            raise RuntimeError(f"Lambda {arn} failed: {result}")
        return result

    # Deployment ---------------------------------------------------------------------------------

    def deploy(self, parameters: dict[str, str] | None = None) -> Stack:
        """Create what template.yaml declares, as CloudFormation would after the SAM transform."""
        region, stack_name = self.config.region, self.config.stack_name
        overrides = {
            "ImagesBucketName": self.config.images_bucket,
            "WorkteamArn": WORKTEAM.format(region=region),
            **self.config.parameters,
            **(parameters or {}),
        }
        template = Template.load(
            self.config.template,
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
        arns: dict[str, str] = {}

        # Physical ids first: resources refer to each other (GetAtt in environments and substitutions).
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            props = resource.get("Properties", {})
            if kind == "AWS::S3::Bucket":
                name = f"{stack_name}-{logical_id}-{_suffix(8)}".lower()
                template.physical_ids[logical_id] = name
                arns[logical_id] = f"arn:aws:s3:::{name}"
            elif kind == "AWS::DynamoDB::Table":
                name = f"{stack_name}-{logical_id}-{_suffix()}"
                template.physical_ids[logical_id] = name
                arns[logical_id] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
            elif kind == "AWS::IAM::Role":
                name = f"{stack_name}-{logical_id}-{_suffix()}"[:64]
                template.physical_ids[logical_id] = name
                arns[logical_id] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
            elif kind == "AWS::Serverless::Function":
                raw_name = props.get("FunctionName")
                name = (
                    template.resolve(raw_name) if raw_name else f"{stack_name}-{logical_id}-{_suffix()}"[:64]
                )
                template.physical_ids[logical_id] = name
                arns[logical_id] = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
            elif kind == "AWS::Logs::LogGroup":
                name = template.resolve(props["LogGroupName"])
                template.physical_ids[logical_id] = name
                arns[logical_id] = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{name}:*"
            elif kind == "AWS::Serverless::LayerVersion":
                template.physical_ids[logical_id] = f"arn:aws:lambda:{region}:{ACCOUNT}:layer:{logical_id}:1"
            elif kind == "AWS::Serverless::StateMachine":
                name = template.resolve(props["Name"]) if "Name" in props else f"{logical_id}-{_suffix()}"
                arns[logical_id] = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{name}"
                template.physical_ids[logical_id] = arns[logical_id]

        def attribute(logical_id: str, name: str) -> str:
            if name == "Arn" and logical_id in arns:
                return arns[logical_id]
            raise KeyError(f"GetAtt {logical_id}.{name} is not supported by the local cloud")

        template.attributes = attribute

        self.s3.create_bucket(Bucket=self.config.images_bucket)
        globals_function = template.globals_function()
        shared_env: dict[str, str] = {}
        functions: dict[str, FunctionSpec] = {}
        state_machine_arn = ""
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            props = resource.get("Properties", {})
            if kind == "AWS::S3::Bucket":
                self._create_bucket(template.physical_ids[logical_id], template.resolve(props))
            elif kind == "AWS::DynamoDB::Table":
                self._create_table(template.physical_ids[logical_id], template.resolve(props))
            elif kind == "AWS::IAM::Role":
                resolved = template.resolve(props)
                self.iam.create_role(
                    RoleName=template.physical_ids[logical_id],
                    AssumeRolePolicyDocument=json.dumps(resolved["AssumeRolePolicyDocument"]),
                )
            elif kind == "AWS::Serverless::Function":
                env = {
                    **template.resolve(globals_function.get("Environment", {})).get("Variables", {}),
                    **template.resolve(props.get("Environment", {})).get("Variables", {}),
                }
                env = {k: str(v) for k, v in env.items()}
                for key, value in env.items():
                    if shared_env.get(key, value) != value:
                        raise RuntimeError(
                            f"environment variable {key} differs between functions; "
                            "the local cloud shares one process"
                        )
                    shared_env[key] = value
                functions[logical_id] = FunctionSpec(
                    logical_id=logical_id,
                    name=template.physical_ids[logical_id],
                    arn=arns[logical_id],
                    code_dir=REPO / str(props["CodeUri"]),
                    handler=str(props.get("Handler", globals_function.get("Handler"))),
                    environment=env,
                    timeout=int(props.get("Timeout", globals_function.get("Timeout", 3))),
                    memory=int(props.get("MemorySize", globals_function.get("MemorySize", 128))),
                )
                self.runtime.register(functions[logical_id])
            elif kind == "AWS::Serverless::StateMachine":
                state_machine_arn = self._create_state_machine(template, logical_id, props)
        # The functions' log level is the template's; a quiet local run may turn it down.
        if os.environ.get("LOCALCLOUD_LOG_LEVEL"):
            shared_env["POWERTOOLS_LOG_LEVEL"] = os.environ["LOCALCLOUD_LOG_LEVEL"]
        self._set_env(shared_env)
        outputs_bucket = shared_env["OUTPUT_BUCKET"]
        roles = [arns[lid] for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
        self.groundtruth.config.known_roles = tuple(roles)
        workteam = template.parameters["WorkteamArn"]
        self.groundtruth.config.known_workteams = (workteam,) if workteam else None
        self.stack = Stack(
            state_machine_arn=state_machine_arn,
            output_bucket=outputs_bucket,
            images_bucket=self.config.images_bucket,
            table=shared_env["RUN_STATE_TABLE"],
            ground_truth_role_arn=arns["GroundTruthRole"],
            functions=functions,
            parameters=template.parameters,
            workteam_arn=workteam,
        )
        return self.stack

    def _create_bucket(self, name: str, props: dict[str, Any]) -> None:
        self.s3.create_bucket(Bucket=name)
        if "CorsConfiguration" in props:
            # CloudFormation's CorsRule says ExposedHeaders where the S3 API says ExposeHeaders.
            rules = [
                {("ExposeHeaders" if k == "ExposedHeaders" else k): v for k, v in rule.items()}
                for rule in props["CorsConfiguration"]["CorsRules"]
            ]
            self.s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        if "PublicAccessBlockConfiguration" in props:
            self.s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )

    def _create_table(self, name: str, props: dict[str, Any]) -> None:
        self.dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )

    def _create_state_machine(self, template: Template, logical_id: str, props: dict[str, Any]) -> str:
        definition = (REPO / str(props["DefinitionUri"])).read_text()
        substitutions = template.resolve(props.get("DefinitionSubstitutions", {}))
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", str(value))
        leftover = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition)))
        if leftover:
            raise RuntimeError(f"definition placeholders without a DefinitionSubstitutions entry: {leftover}")
        role_name = f"{self.config.stack_name}-{logical_id}Role-{_suffix()}"[:64]
        role = self.iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "states.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        name = str(template.resolve(props["Name"])) if "Name" in props else logical_id
        return str(
            self.sfn.create_state_machine(
                name=name, definition=definition, roleArn=role, type=props.get("Type", "STANDARD")
            )["stateMachineArn"]
        )

    # Data and models ----------------------------------------------------------------------------

    def upload_folder(self, folder: Path, prefix: str, bucket: str | None = None) -> list[str]:
        """Upload every file under `folder` (but manifests) to s3://bucket/prefix/...; return source-refs."""
        bucket = bucket or self.config.images_bucket
        refs = []
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix != ".manifest":
                key = prefix + path.relative_to(folder).as_posix()
                self.s3.upload_file(str(path), bucket, key)
                refs.append(f"s3://{bucket}/{key}")
        return refs

    def add_truth(self, truth: dict[str, Truth]) -> None:
        self.truth.update(truth)

    def add_model(
        self,
        task_type: str = "detection",
        status: str = "STOPPED",
        project: str = "shapes",
        version: str = "v1",
    ) -> str:
        return self.rekognition.add_model(project, version, task_type, self.truth, status=status)  # type: ignore[arg-type]

    # Runs ---------------------------------------------------------------------------------------

    def start(self, run_input: dict[str, Any], name: str) -> str:
        """Start an execution (the name becomes the run id); return its ARN."""
        assert self.stack, "deploy() first"
        response = self.sfn.start_execution(
            stateMachineArn=self.stack.state_machine_arn, name=name, input=json.dumps(run_input)
        )
        return str(response["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 300) -> RunOutcome:
        """Poll until the execution ends; TimeoutError past the deadline (a hung run fails the caller)."""
        deadline = time.monotonic() + timeout
        while True:
            description = self.sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return RunOutcome.of(description)
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout} s")
            time.sleep(0.1)

    def run(self, run_input: dict[str, Any], name: str, timeout: float = 300) -> RunOutcome:
        return self.wait(self.start(run_input, name), timeout)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events


@dataclass
class RunOutcome:
    """How an execution ended, as DescribeExecution says."""

    execution_arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None

    @classmethod
    def of(cls, description: dict[str, Any]) -> RunOutcome:
        output = description.get("output")
        return cls(
            execution_arn=description["executionArn"],
            status=description["status"],
            output=json.loads(output) if output else None,
            error=description.get("error"),
            cause=description.get("cause"),
        )
