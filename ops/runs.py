"""Start and follow executions of the labeling-loop state machine.

Executions are wrapped in the Step Functions Data Science SDK's `Execution` (`describe`, `get_output`,
`list_events`, and `list_events(html=True)` renders the event table in a notebook). Its `Workflow`
wrapper is not used: `Workflow.attach` parses the definition with the SDK's own state classes, which
predate Distributed Map and recurse without end on it (measured with stepfunctions 2.3.0).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from stepfunctions.workflow import Execution

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class RunOutcome:
    execution_arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    wall_seconds: float


def start_run(sfn: Any, state_machine_arn: str, run_input: dict[str, Any], name: str) -> Execution:
    """Start one turn of the loop. Always named: the name becomes the run id (and job names)."""
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(run_input))
    return Execution(
        workflow=None,
        execution_arn=response["executionArn"],
        start_date=response["startDate"],
        status="RUNNING",
        client=sfn,
        name=name,
    )


def wait_for(execution: Execution, timeout_seconds: float, poll_seconds: float = 0.2) -> RunOutcome:
    """Poll until the execution ends or the deadline passes (then raise TimeoutError)."""
    started = time.monotonic()
    deadline = started + timeout_seconds
    while True:
        description = execution.describe()
        if description["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"execution {execution.execution_arn} still {description['status']} after {timeout_seconds} s"
            )
        time.sleep(poll_seconds)
    output = description.get("output")
    return RunOutcome(
        execution_arn=execution.execution_arn,
        status=description["status"],
        output=json.loads(output) if output else None,
        error=description.get("error"),
        cause=description.get("cause"),
        wall_seconds=time.monotonic() - started,
    )


def history(execution: Execution, max_items: int = 100_000) -> list[dict[str, Any]]:
    return list(execution.list_events(max_items=max_items))
