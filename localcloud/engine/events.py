"""EventBridge rules and EventBridge Scheduler schedules as template.yaml wires them to functions
(`Events` of type `EventBridgeRule` and `ScheduleV2`), delivered to the functions the way AWS does.

- A rule matches an event by its pattern (every key of the pattern present in the event, a list
  meaning "one of these values", nested objects matched the same way) and invokes its function
  asynchronously: the event is delivered on its own thread, and a function error is retried twice,
  one then two minutes apart, on the scaled clock (docs/aws-facts.md §4.10, §4.11).
- A schedule runs when told (`fire`): tests and the CLI decide when "every 15 minutes" comes, so a
  test never waits on a wall clock.

Every delivery is recorded, so a test asserts on what ran, with what, how often and how it ended.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud.engine.interpreter import clock
from localcloud.engine.lambda_runtime import FunctionSpec, LambdaRuntime

# Lambda's asynchronous invocation retries a function error twice (docs/aws-facts.md §4.11).
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)


@dataclass(frozen=True)
class Rule:
    name: str  # "<function logical id>.<event name>", as the template names it
    function: FunctionSpec
    pattern: dict[str, Any]


@dataclass(frozen=True)
class Schedule:
    name: str
    expression: str
    enabled: bool
    input: dict[str, Any]  # what Scheduler sends the target ("{}" when the template sets no Input)
    function: FunctionSpec | None = None  # the target: a function ...
    state_machine_arn: str | None = None  # ... or a state machine (StartExecution)


@dataclass
class Delivery:
    target: str  # the rule's or schedule's name
    event: dict[str, Any]
    attempts: int = 0
    result: Any = None
    error: Any = None  # the last function error, when every attempt failed

    @property
    def succeeded(self) -> bool:
        return self.attempts > 0 and self.error is None


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge's content matching, for the exact-value patterns the template uses."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and matches(sub, value[key]) for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        return value in pattern
    raise ValueError(f"unsupported event pattern element: {pattern!r}")


@dataclass
class EventBus:
    runtime: LambdaRuntime
    start_execution: Callable[[str, dict[str, Any]], str]  # (state machine ARN, input) -> execution ARN
    region: str
    account: str
    rules: list[Rule] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Events ---------------------------------------------------------------------------------------

    def put(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        """Put an event on the default bus: each matching rule invokes its function asynchronously."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.account,
            "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": resources,
            "detail": detail,
        }
        for rule in self.rules:
            if matches(rule.pattern, event):
                delivery = Delivery(rule.name, event)
                thread = threading.Thread(
                    target=self._deliver,
                    args=(rule.function, delivery),
                    name=f"event-{rule.name}",
                    daemon=True,
                )
                with self._lock:
                    self.deliveries.append(delivery)
                    self._threads.append(thread)
                thread.start()

    def execution_status_changed(self, detail: dict[str, Any]) -> None:
        """What Step Functions sends for a Standard execution that changes status (§4.10)."""
        self.put("aws.states", "Step Functions Execution Status Change", detail, [detail["executionArn"]])

    def _deliver(self, function: FunctionSpec, delivery: Delivery) -> None:
        for attempt, delay in enumerate((0.0, *ASYNC_RETRY_DELAYS_S), start=1):
            clock.sleep(delay)
            result, function_error = self.runtime.invoke(function.name, delivery.event)
            delivery.attempts = attempt
            if not function_error:
                delivery.result, delivery.error = result, None
                return
            delivery.error = result

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Every delivery so far has ended (its retries too); TimeoutError otherwise."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"event delivery {thread.name} still running after {timeout} s")

    def delivered(self, target_prefix: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.target.startswith(target_prefix)]

    # Schedules ------------------------------------------------------------------------------------

    def fire(self, schedule_prefix: str = "") -> list[Delivery]:
        """Run every enabled schedule whose name starts with `schedule_prefix` once, now: its function
        synchronously, or its state machine's StartExecution (the execution then runs on its own)."""
        fired = []
        for schedule in self.schedules:
            if not schedule.enabled or not schedule.name.startswith(schedule_prefix):
                continue
            delivery = Delivery(schedule.name, dict(schedule.input), attempts=1)
            if schedule.function is not None:
                result, function_error = self.runtime.invoke(schedule.function.name, delivery.event)
                delivery.result, delivery.error = (None, result) if function_error else (result, None)
            else:
                assert schedule.state_machine_arn
                delivery.result = self.start_execution(schedule.state_machine_arn, delivery.event)
            with self._lock:
                self.deliveries.append(delivery)
            fired.append(delivery)
        return fired
