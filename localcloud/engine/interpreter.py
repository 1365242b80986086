"""Compensations for where moto's Step Functions interpreter differs from AWS (measured; see
docs/aws-facts.md §7.2). The definition is never edited; the interpreter is adapted. Each
compensation has a test in tests/unit/localcloud/test_interpreter.py or
test_interpreter_item_reader.py that fails without it.

1. aws-sdk error names: AWS says `Rekognition.ThrottlingException`, moto `rekognition.Throttling...`
   (docs/aws-facts.md §4.4).
2. Time: Wait states and Retry intervals run on a scaled clock (`time_scale`), and the waits that
   the definition asked for are recorded so tests can assert on backoff.
3. Recursion: every Map worker recurses once per item; deep item lists need a larger limit and
   larger thread stacks than Python's defaults.
4. State transitions: child executions of a Distributed Map are not in the parent's history, so
   every state the interpreter enters is counted here.
5. Tolerated failures: moto counts a Distributed Map child that fails but the Map run still
   succeeds. On AWS `ToleratedFailureCount`/`ToleratedFailurePercentage` default to 0, and a Map run
   with more failed items than tolerated fails with `States.ExceedToleratedFailureThreshold`
   (docs/aws-facts.md §4.3). Limitation: with both thresholds set, AWS fails when either is
   exceeded; here the run fails only when both are (neither is set in our definition, so both are 0).
6. Item reader errors: an S3 error reading a Distributed Map's item list escapes moto as
   `States.Runtime`, which no Retry matches; on AWS the Map fails with the retryable
   `States.ItemReaderFailed` (docs/aws-facts.md §4.3).
7. A failing Map Run stops its running children: once more items failed than tolerated, AWS fails
   the Map Run, starts no further child and aborts the running ones (docs/aws-facts.md §4.3); moto
   runs every item to its end and only then looks at the count (compensation 5).
8. Redrive (redrive.py): a Distributed Map a redriven execution continues at reruns only the
   children that did not succeed (docs/aws-facts.md §4.15): each Map Run keeps its children's
   outputs, and the Map Run a redrive resumes reuses those instead of running them again.
9. Payload size: AWS measures a state's input or output as UTF-8 (262,144 bytes, docs/aws-facts.md
   §4.2); moto measures its JSON with every non-ASCII character escaped (`\u00e9`: 6 bytes for
   2) and spaces after separators, so a valid payload with non-ASCII labels failed locally with
   States.DataLimitExceeded. The local cloud measures compact UTF-8 JSON.

How executions end (status events, StopExecution, TimeoutSeconds, the history limit) is adapted in
`executions`.
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError
from moto.stepfunctions.parser import quotas
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
    HistoryEventType,
    MapRunFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import item_reader_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

# Service names as AWS spells them in aws-sdk error names (docs/aws-facts.md §4.4, §7.2).
AWS_SERVICE_ERROR_NAMES = {
    "rekognition": "Rekognition",
    "sagemaker": "SageMaker",
    "s3": "S3",
    "lambda": "Lambda",
}
RECURSION_LIMIT = 20_000
THREAD_STACK_BYTES = 256 * 1024 * 1024


@dataclass
class Clock:
    """The interpreter's notion of waiting: real sleep of `seconds * time_scale`."""

    time_scale: float = 1.0
    waits: list[float] = field(default_factory=list)  # Wait states, seconds as defined
    retry_intervals: list[float] = field(default_factory=list)  # Retry backoff, seconds as computed
    real_seconds: list[float] = field(default_factory=list)  # what was actually slept, scaled
    lock: threading.Lock = field(default_factory=threading.Lock)

    def scaled(self, seconds: float) -> float:
        real = max(0.0, seconds * self.time_scale)
        with self.lock:
            self.real_seconds.append(real)
        return real

    def sleep(self, seconds: float) -> None:
        time.sleep(self.scaled(seconds))


@dataclass
class Counters:
    state_transitions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_transition(self) -> None:
        with self.lock:
            self.state_transitions += 1


clock = Clock()
counters = Counters()


class _ScaledTime:
    """Stands in for the `time` module inside moto's retrier: only `sleep` changes."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        with clock.lock:
            clock.retry_intervals.append(float(seconds))
        clock.sleep(seconds)


def _scaled_wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
    with clock.lock:
        clock.waits.append(float(wait_seconds))
    if wait_seconds > 0:
        # Interruptible like moto's own wait: a stopped execution does not sleep on.
        env.program_state_event.wait(clock.scaled(wait_seconds))


_original_eval_body = state_module.CommonStateField._eval_body


def _counting_eval_body(self: Any, env: Any) -> None:
    counters.add_transition()
    _original_eval_body(self, env)


def _failure(
    env: Any, error: StatesErrorNameType, event_type: HistoryEventType, **details: Any
) -> FailureEventException:
    """A state failure as moto's own states raise it. moto declares EventDetails a total TypedDict,
    yet every event carries exactly one of its keys (moto builds them the same way): hence the cast."""
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error),
            event_type=event_type,
            event_details=cast(EventDetails, details),
        )
    )


_original_map_run = distributed_iteration_component.DistributedIterationComponent._map_run
_original_eval_job = distributed_item_processor_worker.DistributedItemProcessorWorker._eval_job


@dataclass
class _MapRun:
    """What a running Map Run's workers share: its tolerance, the children still running, and the
    outputs of those that succeeded (a redrive reuses them, compensation 8)."""

    tolerated_count: int
    tolerated_percentage: float
    env: Any
    items: int  # in the whole Map Run, started or not
    succeeded: dict[int, Any] = field(default_factory=dict)  # item index -> output, kept for a redrive
    reused: dict[int, Any] = field(default_factory=dict)  # outputs of an earlier attempt, not rerun
    running: set[Any] = field(default_factory=set)
    failed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_map_runs: dict[int, _MapRun] = {}  # id(MapRunRecord) -> its run
# (execution ARN, Map state name) -> the outputs of the children of its last Map Run that succeeded,
# and the Map states a redrive resumes at (their next Map Run reuses those outputs).
_map_outputs: dict[tuple[str, str], dict[int, Any]] = {}
_resuming: set[tuple[str, str]] = set()
_outputs_lock = threading.Lock()


def resume_map_run(execution_arn: str, state_name: str) -> None:
    """The next Map Run of this state in this execution is a redriven one (compensation 8)."""
    with _outputs_lock:
        _resuming.add((execution_arn, state_name))


def _map_key(env: Any) -> tuple[str, str]:
    context = env.states.context_object.context_object_data
    return str(context["Execution"]["Id"]), str(context.get("State", {}).get("Name", ""))


def _tolerance_exceeded(record: Any, run: _MapRun) -> FailureEventException | None:
    items = record.item_counter
    failed = items.failed.get() + items.timed_out.get()
    total = run.items
    over_count = failed > run.tolerated_count
    over_percentage = failed * 100.0 > run.tolerated_percentage * max(total, 1)
    if not (failed and over_count and over_percentage):
        return None
    name = StatesErrorNameType.StatesExceedToleratedFailureThreshold
    cause = (
        f"The specified tolerated failure threshold was exceeded: {failed} of {total} items failed "
        f"(local cloud: ToleratedFailureCount {run.tolerated_count}, "
        f"ToleratedFailurePercentage {run.tolerated_percentage})"
    )
    return _failure(
        run.env,
        name,
        HistoryEventType.ExecutionFailed,
        executionFailedEventDetails=ExecutionFailedEventDetails(error=name.to_name(), cause=cause),
    )


def _map_run_with_tolerance(self: Any, env: Any, eval_input: Any) -> None:
    record = eval_input.map_run_record
    items = len(env.stack[-1])  # what moto's _map_run pops: the Map Run's item list
    run = _MapRun(eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage, env, items)
    key = _map_key(env)
    with _outputs_lock:
        if key in _resuming:
            _resuming.discard(key)
            run.reused = dict(_map_outputs.get(key, {}))
        _map_outputs[key] = run.succeeded  # this Map Run's, from now on
    _map_runs[id(record)] = run
    try:
        _original_map_run(self, env, eval_input)
    finally:
        _map_runs.pop(id(record), None)
    failure = _tolerance_exceeded(record, run) if env.is_running() else None
    if failure is not None:  # e.g. children that timed out at the very end
        env.stack.pop()  # the children's outputs: the state fails instead
        raise failure


def _eval_job_failing_the_map_run(self: Any, env: Any, job: Any) -> None:
    """Run one child; when it tips the Map Run over its tolerance, fail the Map Run now: no new
    child starts (the pool's exception ends `next_job`) and the running ones are stopped."""
    run = _map_runs.get(id(self._map_run_record))
    if run is None:
        _original_eval_job(self, env, job)
        return
    if job.job_index in run.reused:  # succeeded before the redrive: not rerun (compensation 8)
        counters = self._map_run_record
        for counter in (counters.item_counter, counters.execution_counter):
            counter.total.count()
            counter.succeeded.count()
            counter.results_written.count()
        job.job_output = run.reused[job.job_index]
        run.succeeded[job.job_index] = job.job_output
        return
    with run.lock:
        run.running.add(env)
    try:
        _original_eval_job(self, env, job)
    finally:
        with run.lock:
            run.running.discard(env)
    if job.job_output is not None:
        with run.lock:
            run.succeeded[job.job_index] = job.job_output
    # A child that failed because its execution was stopped does not fail the Map Run: the stop wins.
    failure = _tolerance_exceeded(self._map_run_record, run) if run.env.is_running() else None
    with run.lock:
        if failure is None or run.failed:
            return
        run.failed = True
        siblings = list(run.running)
    pool = self._job_pool
    with pool._mutex:
        pool._worker_exception = failure
        pool._termination_event.set()
    now = datetime.datetime.now(tz=datetime.UTC)
    for sibling in siblings:
        sibling.set_stop(stop_date=now, cause="the Map Run failed", error=None)


_original_item_reader_eval = item_reader_decl.ItemReader._eval_body


def _item_reader_eval_as_on_aws(self: Any, env: Any) -> None:
    try:
        _original_item_reader_eval(self, env)
    except ClientError as error:
        name = StatesErrorNameType.StatesItemReaderFailed
        raise _failure(
            env,
            name,
            HistoryEventType.TaskFailed,
            mapRunFailedEventDetails=MapRunFailedEventDetails(error=name.to_name(), cause=str(error)),
        ) from error


def payload_bytes(value: Any) -> int:
    """A state payload's size as AWS counts it: its JSON, UTF-8 encoded (compensation 9)."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    )
    return len(text.encode("utf-8"))


def _within_size_quota_in_utf8(value: Any) -> bool:
    return payload_bytes(value) <= quotas.MAX_STATE_SIZE_UTF8_BYTES


# The `method-assign`/`assignment` ignores below mark the monkeypatches themselves: replacing a
# method of moto's classes is what mypy rightly reports and what a compensation is.


def _apply_error_names() -> None:
    state_task_service_aws_sdk._SERVICE_ERROR_NAMES.update(AWS_SERVICE_ERROR_NAMES)


def _apply_clock() -> None:
    retrier_decl.time = _ScaledTime()  # type: ignore[assignment]
    wait_function.WaitFunction._wait_interval = _scaled_wait_interval  # type: ignore[method-assign]


def _apply_recursion() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    threading.stack_size(THREAD_STACK_BYTES)


def _apply_transition_counter() -> None:
    state_module.CommonStateField._eval_body = _counting_eval_body  # type: ignore[method-assign]


def _apply_item_reader_errors() -> None:
    item_reader_decl.ItemReader._eval_body = _item_reader_eval_as_on_aws  # type: ignore[method-assign]


def _apply_tolerated_failures() -> None:
    distributed_iteration_component.DistributedIterationComponent._map_run = _map_run_with_tolerance  # type: ignore[method-assign]
    distributed_item_processor_worker.DistributedItemProcessorWorker._eval_job = _eval_job_failing_the_map_run  # type: ignore[method-assign]


def _apply_payload_size() -> None:
    for module in (quotas, state_module, state_task_lambda, state_task_service):
        module.is_within_size_quota = _within_size_quota_in_utf8  # type: ignore[attr-defined]


# In the order they are applied; each once per process.
_COMPENSATIONS: dict[str, Callable[[], None]] = {
    "error_names": _apply_error_names,
    "clock": _apply_clock,
    "recursion": _apply_recursion,
    "transitions": _apply_transition_counter,
    "item_reader": _apply_item_reader_errors,
    "tolerance": _apply_tolerated_failures,
    "payload_size": _apply_payload_size,
}
_applied: set[str] = set()


def apply_all(time_scale: float) -> None:
    """Set the clock's scale and apply every compensation not applied yet (idempotent)."""
    clock.time_scale = time_scale
    for name, apply in _COMPENSATIONS.items():
        if name not in _applied:
            apply()
            _applied.add(name)
