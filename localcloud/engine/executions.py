"""How executions end in the local cloud, as they end on AWS (docs/aws-facts.md §4.10, §7.2). Like
`interpreter`, this adapts moto's interpreter and never edits the definition:

1. Status-change events: every execution that ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) is
   announced to the listeners (the local EventBridge, `events.EventBus`), once, with the detail
   AWS puts in "Step Functions Execution Status Change" events.
2. StopExecution ends the execution at once: DescribeExecution says ABORTED and the event goes out
   while a Task already in flight still runs to its end (its result is dropped), as on AWS. moto
   would say RUNNING until that Task returned.
3. TimeoutSeconds of the state machine run on the scaled clock (moto waits real seconds).
4. The 25,000-event history limit: when an execution has written `history_limit - 1` events, the
   next one that is not ExecutionSucceeded fails the execution, and no Catch runs (docs/aws-facts.md
   §4.2). AWS does not document the error name; the cause is the message
   AWS users report. Distributed Map children keep their own histories, as on AWS.
5. A redriven execution (redrive.py) is RUNNING again and announced again when it ends.
"""

from __future__ import annotations

import datetime
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, ExecutionStatus, HistoryEventType
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program import program as program_module
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend import execution as execution_module
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.utils import TMP_THREADS

from localcloud.engine.interpreter import clock

AWS_HISTORY_LIMIT = 25_000  # events per Standard execution (docs/aws-facts.md §4.2)
HISTORY_LIMIT_ERROR = "States.Runtime"
HISTORY_LIMIT_CAUSE = "The execution reached the maximum number of history events ({limit})."

# A listener gets the detail of an "Execution Status Change" event.
Listener = Callable[[dict[str, Any]], None]


@dataclass
class ExecutionEnds:
    """What the compensations share: the listeners, the limit, and which executions still run."""

    history_limit: int = AWS_HISTORY_LIMIT
    listeners: list[Listener] = field(default_factory=list)
    # Keyed by moto's execution objects, not ARNs: a later local cloud reuses the same names.
    announced: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    running: set[Any] = field(default_factory=set)
    aborted: weakref.WeakKeyDictionary[Any, tuple[datetime.datetime, str | None, str | None]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    lock: threading.Condition = field(default_factory=threading.Condition)

    def running_arns(self) -> list[str]:
        with self.lock:
            return sorted(execution.exec_arn for execution in self.running)

    def wait_until_none_running(self, timeout: float) -> bool:
        """Every interpreter thread of every execution has returned (True), or `timeout` passed."""
        with self.lock:
            return self.lock.wait_for(lambda: not self.running, timeout)


ends = ExecutionEnds()


def _millis(moment: datetime.datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def status_change_detail(execution: Any) -> dict[str, Any]:
    """The `detail` of the event, from moto's execution (docs/aws-facts.md §4.10)."""
    status = execution.exec_status
    detail: dict[str, Any] = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status.value if status else "RUNNING",
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": to_json_str(execution.input_data),
        "inputDetails": {"included": True},
        "output": to_json_str(execution.output) if status == ExecutionStatus.SUCCEEDED else None,
        "outputDetails": {"included": status == ExecutionStatus.SUCCEEDED},
    }
    if execution.error is not None:
        detail["error"] = execution.error
    if execution.cause is not None:
        detail["cause"] = execution.cause
    return detail


def _announce(execution: Any) -> None:
    with ends.lock:
        if execution in ends.announced:
            return
        ends.announced.add(execution)
        listeners = list(ends.listeners)
    detail = status_change_detail(execution)
    for listener in listeners:
        listener(detail)


# 1. Status-change events, and the bookkeeping of running executions -------------------------------

_original_start = execution_module.Execution.start
_original_terminated = execution_module.BaseExecutionWorkerCommunication.terminated


def _start_tracked(self: Any) -> None:
    with ends.lock:
        ends.running.add(self)
    _original_start(self)


def _terminated_and_announced(self: Any) -> None:
    execution = self.execution
    try:
        _original_terminated(self)
        with ends.lock:
            aborted = ends.aborted.get(execution)
        if aborted is not None:
            # Stopped is final on AWS: what the interpreter did after the stop (a Task in flight
            # that then failed, say) does not change it.
            _set_aborted(execution, *aborted)
        _announce(execution)
    finally:
        with ends.lock:
            ends.running.discard(execution)
            ends.lock.notify_all()


# 2. StopExecution ends the execution at once --------------------------------------------------------

_original_stop = execution_module.Execution.stop


def _set_aborted(execution: Any, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = stop_date
    execution.error = error or None
    execution.cause = cause or None
    execution.output = None


def _stop_at_once(self: Any, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
    # moto's stop fails on an execution whose worker thread has not built its environment yet
    # (AWS stops a just-started execution like any other): give the worker a moment.
    deadline = time.monotonic() + 10
    while self.exec_worker is not None and self.exec_worker.env is None and time.monotonic() < deadline:
        time.sleep(0.01)
    _original_stop(self, stop_date, error, cause)
    if self.exec_status == ExecutionStatus.RUNNING:
        with ends.lock:
            ends.aborted[self] = (stop_date, error, cause)
        _set_aborted(self, stop_date, error, cause)
        _announce(self)


# 3. TimeoutSeconds on the scaled clock --------------------------------------------------------------

_original_program_eval = program_module.Program.eval


def _program_eval_on_scaled_clock(self: Any, env: Any) -> None:
    """moto's Program.eval with the join scaled: the same thread layout, the same outcome."""
    if not self.timeout_seconds:
        _original_program_eval(self, env)
        return
    env.next_state_name = self.start_at.start_at_name
    worker = threading.Thread(target=EvalComponent.eval, args=(self, env), daemon=True)
    TMP_THREADS.append(worker)
    worker.start()
    worker.join(timeout=clock.scaled(self.timeout_seconds.timeout_seconds))
    if worker.is_alive():
        env.set_timed_out()


# 4. The history limit -------------------------------------------------------------------------------

_original_environment = execution_worker.ExecutionWorker._get_evaluation_environment
_original_add_event = EventManager.add_event
_execution_envs: weakref.WeakKeyDictionary[EventManager, Any] = weakref.WeakKeyDictionary()


def _environment_with_counted_history(self: Any) -> Any:
    env = _original_environment(self)
    # Only an execution's own history counts; Distributed Map children get fresh managers.
    _execution_envs[env.event_manager] = env
    return env


def _add_event_within_limit(self: Any, *args: Any, **kwargs: Any) -> int:
    env = _execution_envs.get(self)
    if env is not None and env.is_running() and len(self._history_event_list) == ends.history_limit - 1:
        # Event number `history_limit` is about to be written: unless it ends the execution
        # successfully, the execution fails (the interpreter stops before its next state and writes
        # ExecutionFailed; a local history may so end a few events past the limit).
        event_type = kwargs.get("event_type", args[1] if len(args) > 1 else None)
        if event_type != HistoryEventType.ExecutionSucceeded:
            cause = HISTORY_LIMIT_CAUSE.format(limit=ends.history_limit)
            env.set_error(ExecutionFailedEventDetails(error=HISTORY_LIMIT_ERROR, cause=cause))
    return int(_original_add_event(self, *args, **kwargs))


def count_history_of(env: Any) -> None:
    """The history limit counts `env`'s events from now on (a redriven execution's new environment
    writes on in the history its first one started)."""
    _execution_envs[env.event_manager] = env


# 5. Redrive (redrive.py) ---------------------------------------------------------------------------


def running_again(execution: Any) -> None:
    """A redriven execution is RUNNING again, and its next end is announced like the first."""
    with ends.lock:
        ends.announced.discard(execution)
        ends.aborted.pop(execution, None)
        ends.running.add(execution)
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.error = None
    execution.cause = None
    execution.output = None


# The `method-assign` ignores mark the monkeypatches themselves (see interpreter.py).

_applied = False
_apply_lock = threading.Lock()


def apply_all(history_limit: int = AWS_HISTORY_LIMIT) -> None:
    """Set the history limit and apply the compensations once per process (idempotent)."""
    global _applied
    ends.history_limit = history_limit
    with _apply_lock:
        if _applied:
            return
        execution_module.Execution.start = _start_tracked  # type: ignore[method-assign]
        execution_module.BaseExecutionWorkerCommunication.terminated = _terminated_and_announced  # type: ignore[method-assign]
        execution_module.Execution.stop = _stop_at_once  # type: ignore[method-assign]
        program_module.Program.eval = _program_eval_on_scaled_clock  # type: ignore[method-assign]
        execution_worker.ExecutionWorker._get_evaluation_environment = _environment_with_counted_history  # type: ignore[method-assign]
        EventManager.add_event = _add_event_within_limit  # type: ignore[method-assign]
        _applied = True
