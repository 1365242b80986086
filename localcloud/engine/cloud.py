"""The local cloud: `template.yaml` "deployed" into moto (`deployment`), the real handlers run in
process (`lambda_runtime`), the Rekognition Custom Labels and Ground Truth emulators answering the
calls AWS would (`hooks`), moto's interpreter adapted where it differs from AWS (`interpreter`).

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
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from moto import mock_aws

from localcloud.data.truth import Truth
from localcloud.engine import deployment, executions, hooks, interpreter, redrive
from localcloud.engine.deployment import ACCOUNT, Stack
from localcloud.engine.events import EventBus
from localcloud.engine.faults import CallFaults
from localcloud.engine.lambda_runtime import LambdaRuntime
from localcloud.paths import REPO_ROOT
from localcloud.services.base import EmulatedService, ServiceError
from localcloud.services.custom_labels import CustomLabelsConfig, CustomLabelsEmulator, TaskType
from localcloud.services.groundtruth import GroundTruthConfig, GroundTruthEmulator

if TYPE_CHECKING:
    from types_boto3_stepfunctions.type_defs import DescribeExecutionOutputTypeDef, HistoryEventTypeDef

LOG = logging.getLogger(__name__)


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
    template: Path = REPO_ROOT / "template.yaml"
    # Events per execution history before it fails, as on AWS; a test may lower it.
    history_limit: int = executions.AWS_HISTORY_LIMIT
    # Seeds moto's identifiers (stack resource suffixes, hence execution ARNs and run ids): the same
    # run input names the same run folder, audit sample and review jobs every time. None: random.
    identifier_seed: int | None = 7


_dynamodb_write_lock = threading.RLock()
_atomic_writes: set[str] = set()  # DynamoDBBackend methods already serialised


def _atomic_dynamodb_writes() -> None:
    """DynamoDB applies each write atomically; moto's backend does not under threads (measured: 8 of
    200 trials of 8 concurrent `ADD` updates to one item lost an update). Leases and image claims rely
    on atomic conditional writes, so the local cloud serialises moto's DynamoDB writes. Idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        if name in _atomic_writes:
            continue
        method = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return __method(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, atomic)
        _atomic_writes.add(name)


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
        self.call_faults: list[CallFaults] = []  # faults on emulated calls (engine/faults.py)

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
        executions.apply_all(self.config.history_limit)
        redrive.apply()
        _atomic_dynamodb_writes()
        hooks.install()
        self._mock.start()
        if self.config.identifier_seed is not None:
            from moto.moto_api._internal import mock_random

            mock_random.seed(self.config.identifier_seed)
        self.s3 = boto3.client("s3", region_name=region)
        self.sfn = boto3.client("stepfunctions", region_name=region)
        self.dynamodb = boto3.client("dynamodb", region_name=region)
        self.iam = boto3.client("iam", region_name=region)
        self.rekognition = CustomLabelsEmulator(self.s3, self.config.rekognition)
        self.groundtruth = GroundTruthEmulator(
            self.s3, self._invoke_for_groundtruth, self.truth, region, self.config.groundtruth
        )
        self.events = EventBus(self.runtime, self._start_execution, region, ACCOUNT)
        executions.ends.listeners.append(self.events.execution_status_changed)
        hooks.serve("lambda", self.runtime.responder)
        hooks.serve("rekognition", self._emulated("rekognition", self.rekognition))
        hooks.serve("sagemaker", self._emulated("sagemaker", self.groundtruth))
        hooks.intercept("sfn", redrive.answer)  # RedriveExecution, which moto lacks
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self._wait_for_running_executions()
        finally:
            executions.ends.listeners.remove(self.events.execution_status_changed)
            for service in ("lambda", "rekognition", "sagemaker", "s3", "sfn"):
                hooks.stop_serving(service)
            self._mock.stop()
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            LocalCloud._active_lock.release()

    def _wait_for_running_executions(self) -> None:
        """Stop what is still running, so no interpreter thread or event delivery outlives the mock."""
        if not self.stack:
            return
        for page in self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.stack.state_machine_arn, statusFilter="RUNNING"
        ):
            for execution in page["executions"]:
                self.sfn.stop_execution(executionArn=execution["executionArn"], error="LocalCloudShutdown")
        # A stopped execution's Task in flight still runs to its end (as on AWS).
        if not executions.ends.wait_until_none_running(timeout=120):
            LOG.warning("executions still running at shutdown: %s", executions.ends.running_arns())
        self.events.wait_idle(timeout=120)

    def _emulated(self, service: str, emulator: EmulatedService) -> hooks.Responder:
        def respond(operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
            try:
                for fault in self.call_faults:
                    fault.before(service, operation, params)
                answer = emulator.handle(operation, params)
                for fault in self.call_faults:
                    fault.after(service, operation, params)
                return 200, {}, hooks.json_body(answer)
            except ServiceError as error:
                return hooks.json_error(error.code, error.message, error.http_status)

        return respond

    def _invoke_for_groundtruth(self, arn: str, payload: dict[str, Any]) -> Any:
        result, function_error = self.runtime.invoke(arn, payload)
        if function_error:
            raise RuntimeError(f"Lambda {arn} failed: {result}")
        return result

    def sns_messages(self, topic_arn: str) -> list[dict[str, Any]]:
        """What was published to a topic: [{"subject", "message"}], oldest first."""
        from moto.sns.models import sns_backends

        topic = sns_backends[deployment.ACCOUNT][self.config.region].topics[topic_arn]
        return [{"subject": sent[2], "message": sent[1]} for sent in topic.sent_notifications]

    # Deployment ---------------------------------------------------------------------------------

    def deploy(self, parameters: dict[str, str] | None = None) -> Stack:
        """Create what template.yaml declares, as CloudFormation would after the SAM transform."""
        deployed = deployment.deploy(self, parameters)
        environment = dict(deployed.environment)
        # The functions' log level is the template's; a quiet local run may turn it down.
        if os.environ.get("LOCALCLOUD_LOG_LEVEL"):
            environment["POWERTOOLS_LOG_LEVEL"] = os.environ["LOCALCLOUD_LOG_LEVEL"]
        self._set_env(environment)
        # Ground Truth assumes only the roles whose trust lets SageMaker in with the keys it sends.
        self.groundtruth.config.known_roles = deployed.assumable["sagemaker.amazonaws.com"]
        workteam = deployed.stack.workteam_arn
        self.groundtruth.config.known_workteams = (workteam,) if workteam else None
        self.stack = deployed.stack
        self.events.rules = list(deployed.rules)
        self.events.schedules = list(deployed.schedules)
        return self.stack

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
        task_type: TaskType = "detection",
        status: str = "STOPPED",
        project: str = "shapes",
        version: str = "v1",
        units: tuple[int, int | None, int | None] = (1, None, None),
    ) -> str:
        """A trained model version. `units` (Min, Max, in service) of a model someone else started:
        what is in service goes to CloudWatch as AWS reports it (docs/aws-facts.md §5.4)."""
        arn = self.rekognition.add_model(project, version, task_type, self.truth, status=status, units=units)
        in_service = units[2]
        if status == "RUNNING" and in_service:
            boto3.client("cloudwatch", region_name=self.config.region).put_metric_data(
                Namespace="AWS/Rekognition",
                MetricData=[
                    {
                        "MetricName": "InServiceInferenceUnits",
                        "Dimensions": [
                            {"Name": "ProjectName", "Value": project},
                            {"Name": "VersionName", "Value": version},
                        ],
                        "Value": float(in_service),
                        "Unit": "Count",
                        # The model has been up a while: its last datapoint is a minute old (a
                        # datapoint of this very second may fall outside a query ending now).
                        "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                    }
                ],
            )
        return arn

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

    def _start_execution(self, state_machine_arn: str, run_input: dict[str, Any]) -> str:
        """What EventBridge Scheduler does for a schedule whose target is the state machine."""
        response = self.sfn.start_execution(
            stateMachineArn=state_machine_arn, name=f"scheduled-{uuid.uuid4()}", input=json.dumps(run_input)
        )
        return str(response["executionArn"])

    def stop(self, execution_arn: str, **error_and_cause: str) -> None:
        """What a person pressing "Stop execution" does (optionally with `error=`, `cause=`)."""
        self.sfn.stop_execution(executionArn=execution_arn, **error_and_cause)

    def redrive(self, execution_arn: str) -> None:
        """What a person pressing "Redrive" does (RedriveExecution: redrive.py)."""
        self.sfn.redrive_execution(executionArn=execution_arn)

    def run(self, run_input: dict[str, Any], name: str, timeout: float = 300) -> RunOutcome:
        return self.wait(self.start(run_input, name), timeout)

    def history(self, execution_arn: str) -> list[HistoryEventTypeDef]:
        events: list[HistoryEventTypeDef] = []
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
    def of(cls, description: DescribeExecutionOutputTypeDef) -> RunOutcome:
        output = description.get("output")
        return cls(
            execution_arn=description["executionArn"],
            status=description["status"],
            output=json.loads(output) if output else None,
            error=description.get("error"),
            cause=description.get("cause"),
        )
