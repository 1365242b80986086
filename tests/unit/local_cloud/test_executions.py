"""How executions end in the local cloud (localcloud/engine/executions.py) and how the local
EventBridge delivers what they announce (localcloud/engine/events.py), on tiny state machines.

Each compensation test fails without the compensation it names: without it the execution either
never ends within the test's deadline or ends with another status."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.engine import executions
from localcloud.engine.cloud import LocalCloud, LocalCloudConfig
from localcloud.engine.events import Rule, matches
from localcloud.engine.lambda_runtime import FunctionSpec

ROLE = "arn:aws:iam::123456789012:role/test-states"
HISTORY_LIMIT = 40


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with LocalCloud(LocalCloudConfig(time_scale=0.001, history_limit=HISTORY_LIMIT)) as local:
        yield local


@pytest.fixture
def announced(cloud: LocalCloud) -> Iterator[list[dict[str, Any]]]:
    """Every status-change detail announced while the test runs."""
    seen: list[dict[str, Any]] = []
    executions.ends.listeners.append(seen.append)
    yield seen
    executions.ends.listeners.remove(seen.append)


def _start(cloud: LocalCloud, definition: dict[str, Any], name: str = "run") -> str:
    arn = cloud.sfn.create_state_machine(
        name=f"sm-{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return str(cloud.sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"])


def _wait_for_end(cloud: LocalCloud, execution_arn: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = cloud.sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return dict(described)
        assert time.monotonic() < deadline, "the execution did not end in time"
        time.sleep(0.02)


WAIT_A_DAY = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 86_400, "End": True}}}


def test_each_ended_execution_is_announced_once_with_its_status(
    cloud: LocalCloud, announced: list[dict[str, Any]]
) -> None:
    failing = {"StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "OopsError", "Cause": "c"}}}
    passing = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"n": 1}, "End": True}}}
    failed = _start(cloud, failing, "failing")
    succeeded = _start(cloud, passing, "passing")
    _wait_for_end(cloud, failed)
    _wait_for_end(cloud, succeeded)
    assert executions.ends.wait_until_none_running(10)
    by_arn = {detail["executionArn"]: detail for detail in announced}
    assert len(announced) == 2
    assert (by_arn[failed]["status"], by_arn[failed]["error"], by_arn[failed]["cause"]) == (
        "FAILED",
        "OopsError",
        "c",
    )
    assert by_arn[succeeded]["status"] == "SUCCEEDED"
    assert json.loads(by_arn[succeeded]["output"]) == {"n": 1}
    assert by_arn[failed]["stopDate"] >= by_arn[failed]["startDate"]


def test_stop_execution_aborts_at_once_and_is_announced(
    cloud: LocalCloud, announced: list[dict[str, Any]]
) -> None:
    # GIVEN an execution waiting a day (86 s on the test's clock)
    arn = _start(cloud, WAIT_A_DAY)
    # WHEN a person stops it
    cloud.stop(arn, error="Operator", cause="pressed Stop")
    # THEN DescribeExecution says ABORTED right away, and the event went out once
    described = cloud.sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    assert executions.ends.wait_until_none_running(10)
    assert [(d["executionArn"], d["status"]) for d in announced] == [(arn, "ABORTED")]


def test_timeout_seconds_run_on_the_scaled_clock(cloud: LocalCloud, announced: list[dict[str, Any]]) -> None:
    # GIVEN a state machine allowed 600 s (0.6 s scaled; moto alone would wait 600 real seconds)
    arn = _start(cloud, {**WAIT_A_DAY, "TimeoutSeconds": 600})
    # THEN it times out, is announced, and no Catch could have run
    assert _wait_for_end(cloud, arn)["status"] == "TIMED_OUT"
    assert executions.ends.wait_until_none_running(10)
    assert [d["status"] for d in announced] == ["TIMED_OUT"]


def test_an_endless_poll_loop_fails_at_the_history_limit(cloud: LocalCloud) -> None:
    # GIVEN a poll loop that never ends (4 events per turn)
    definition = {
        "StartAt": "Poll",
        "States": {
            "Poll": {"Type": "Wait", "Seconds": 1, "Next": "Check"},
            "Check": {"Type": "Pass", "Next": "Poll"},
        },
    }
    arn = _start(cloud, definition)
    described = _wait_for_end(cloud, arn)
    history = cloud.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    # THEN it fails when its history reaches the limit, as on AWS, with the cause AWS users report
    assert described["status"] == "FAILED"
    assert described["error"] == executions.HISTORY_LIMIT_ERROR
    assert str(HISTORY_LIMIT) in described["cause"]
    assert HISTORY_LIMIT <= len(history) <= HISTORY_LIMIT + 3
    assert history[-1]["type"] == "ExecutionFailed"


def test_an_execution_that_ends_on_the_last_allowed_event_succeeds(cloud: LocalCloud) -> None:
    # ExecutionStarted, 2 x (Entered, Exited) per Pass, ExecutionSucceeded: 2 + 2n events
    states = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(18)}
    states["S18"] = {"Type": "Pass", "End": True}
    described = _wait_for_end(cloud, _start(cloud, {"StartAt": "S0", "States": states}))
    # 2 + 2 * 19 = 40 = HISTORY_LIMIT: event 40 is ExecutionSucceeded
    assert described["status"] == "SUCCEEDED"


# The local EventBridge ------------------------------------------------------------------------------


def test_patterns_match_like_eventbridge() -> None:
    pattern = {"source": ["aws.states"], "detail": {"status": ["FAILED", "ABORTED"]}}
    assert matches(pattern, {"source": "aws.states", "detail": {"status": "ABORTED", "x": 1}})
    assert not matches(pattern, {"source": "aws.states", "detail": {"status": "SUCCEEDED"}})
    assert not matches(pattern, {"source": "aws.states"})
    assert not matches(pattern, {"source": "aws.s3", "detail": {"status": "FAILED"}})


def _function(tmp_path: Path, body: str) -> FunctionSpec:
    (tmp_path / "app.py").write_text(textwrap.dedent(body))
    return FunctionSpec("Target", "target", "arn:aws:lambda:us-east-1:123456789012:function:target",
                        tmp_path, "app.lambda_handler", {}, 60, 128)  # fmt: skip


def test_a_rule_invokes_its_function_asynchronously_and_retries_it_twice(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN a rule on failed executions whose function fails on its first two calls
    target = _function(
        tmp_path,
        """
        calls = []
        def lambda_handler(event, context):
            calls.append(event["detail"]["executionArn"])
            if len(calls) < 3:
                raise RuntimeError("not yet")
            return {"cleaned": event["detail"]["executionArn"]}
        """,
    )
    cloud.runtime.register(target)
    cloud.events.rules.append(Rule("Target.Ended", target, {"detail": {"status": ["FAILED"]}}))
    failing = {"StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "OopsError"}}}
    arn = _start(cloud, failing)
    _wait_for_end(cloud, arn)
    assert executions.ends.wait_until_none_running(10)
    cloud.events.wait_idle()
    # THEN one delivery, three attempts (Lambda's two asynchronous retries), the last one succeeded
    [delivery] = cloud.events.delivered("Target.")
    assert (delivery.attempts, delivery.succeeded, delivery.result) == (3, True, {"cleaned": arn})
    assert delivery.event["detail-type"] == "Step Functions Execution Status Change"
    assert delivery.event["resources"] == [arn]


def test_a_rule_does_not_fire_for_events_its_pattern_excludes(cloud: LocalCloud, tmp_path: Path) -> None:
    target = _function(tmp_path, "def lambda_handler(event, context):\n    return 1\n")
    cloud.runtime.register(target)
    cloud.events.rules.append(Rule("Target.Ended", target, {"detail": {"status": ["FAILED"]}}))
    passing = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    _wait_for_end(cloud, _start(cloud, passing))
    assert executions.ends.wait_until_none_running(10)
    cloud.events.wait_idle()
    assert cloud.events.delivered("Target.") == []


def test_a_later_cloud_reusing_an_execution_arn_still_announces_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's state is reset between local clouds, so the same state machine and execution names
    # give the same ARN again (every run_local() names its execution "local-run"): each ending
    # is announced, and a stop in the first cloud does not make the second execution ABORTED.
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    failing = {"StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "OopsError"}}}
    seen: list[dict[str, Any]] = []
    statuses = []
    for stop_first in (True, False):
        with LocalCloud(LocalCloudConfig(time_scale=0.001)) as cloud:
            executions.ends.listeners.append(seen.append)
            try:
                arn = cloud.sfn.create_state_machine(
                    name="same-name",
                    definition=json.dumps(WAIT_A_DAY if stop_first else failing),
                    roleArn=ROLE,
                )["stateMachineArn"]
                execution = cloud.sfn.start_execution(stateMachineArn=arn, name="run", input="{}")[
                    "executionArn"
                ]
                if stop_first:
                    cloud.stop(execution)
                statuses.append(_wait_for_end(cloud, execution)["status"])
                assert executions.ends.wait_until_none_running(10)
            finally:
                executions.ends.listeners.remove(seen.append)
    assert statuses == ["ABORTED", "FAILED"]
    assert [d["status"] for d in seen] == ["ABORTED", "FAILED"]
    assert seen[0]["executionArn"] == seen[1]["executionArn"]
