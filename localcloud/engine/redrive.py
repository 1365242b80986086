"""RedriveExecution, which moto's Step Functions does not have, as AWS documents it (docs/aws-facts.md
§4.15), for the executions moto's interpreter runs:

- only a Standard execution that ended FAILED, ABORTED or TIMED_OUT, within 14 days of its end, and
  not one that ended at the history limit; otherwise ExecutionNotRedrivable (ExecutionDoesNotExist
  for an unknown ARN);
- it continues at the unsuccessful state: the last state entered with no exit after it, with the
  input it entered with, under the same ARN and definition; its history goes on after an
  ExecutionRedriven event (redriveCount), the states that succeeded are not rerun, and the state
  machine's TimeoutSeconds counts again from 0;
- a Distributed Map state it continues at reruns only the children that did not succeed; the
  others' outputs are reused (interpreter.resume_map_run);
- DescribeExecution says RUNNING again, with redriveCount and redriveDate, and the execution's end is
  announced again (the Execution Status Change event of executions.py).

Where it differs from AWS: a child execution that is rerun starts at its first state (AWS continues a
Standard child at its own unsuccessful state); the answer's `redriveDate` and the clientToken's
idempotency are not emulated beyond the documented shape.
"""

from __future__ import annotations

import datetime
import json
import threading
import weakref
from typing import Any, cast

from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.responses import StepFunctionResponse

from localcloud.engine import executions, hooks, interpreter

REDRIVABLE_DAYS = 14  # docs/aws-facts.md §4.15
REDRIVABLE = frozenset({ExecutionStatus.FAILED, ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT})

# moto's execution -> (redriveCount, redriveDate). Keyed by the objects, not ARNs: a later local
# cloud reuses the same names.
_counts: weakref.WeakKeyDictionary[Any, tuple[int, datetime.datetime]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class RedriveRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def unsuccessful_state(events: list[dict[str, Any]]) -> tuple[str, Any]:
    """The state a redrive continues at, and its input: the last state entered that has no exit
    after it (a Task in flight when the execution was stopped, a Map whose run failed, a Fail state)."""
    for index in range(len(events) - 1, -1, -1):
        entered = events[index].get("stateEnteredEventDetails")
        if entered is None:
            continue
        name = entered["name"]
        exited = any(e.get("stateExitedEventDetails", {}).get("name") == name for e in events[index + 1 :])
        if exited:
            break
        return name, json.loads(entered.get("input") or "{}")
    raise RedriveRefused("ExecutionNotRedrivable", "The execution has no unsuccessful state to redrive.")


class _ResumingWorker(ExecutionWorker):
    """moto's worker, started at `state` with `state_input`, writing on in the execution's history."""

    def __init__(self, previous: ExecutionWorker, state: str, state_input: Any, count: int) -> None:
        super().__init__(
            evaluation_details=previous._evaluation_details,
            exec_comm=previous._execution_communication,
            cloud_watch_logging_session=previous._cloud_watch_logging_session,
            activity_store=previous._activity_store,
            mock_test_case=previous._mock_test_case,
        )
        assert previous.env is not None
        self._history = previous.env.event_manager
        self._state = state
        self._input = state_input
        self._count = count

    def _get_evaluation_entrypoint(self) -> Any:
        # The same definition, entered at the unsuccessful state: what "continues from the
        # unsuccessful step" means for an interpreter that always starts at StartAt.
        definition = json.loads(self._evaluation_details.state_machine_details.definition)
        definition["StartAt"] = self._state
        return AmazonStateLanguageParser.parse(json.dumps(definition))[0]

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        env = self._get_evaluation_environment()
        env.event_manager = self._history
        executions.count_history_of(env)  # the history limit counts the whole history
        last_id = len(self._history.get_event_history())
        env.event_history_context.source_event_id = last_id
        env.event_history_context.last_published_event_id = last_id
        env.states.reset(self._input)
        self.env = env
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            # moto's EventDetails (a total TypedDict) has no executionRedrivenEventDetails key; the
            # event's details are AWS's (docs/aws-facts.md §4.15): hence the cast.
            event_details=cast(
                EventDetails, {"executionRedrivenEventDetails": {"redriveCount": self._count}}
            ),
            update_source_event_id=False,
        )
        program.eval(env)
        self._execution_communication.terminated()


def redrive(execution: Any, now: datetime.datetime | None = None) -> datetime.datetime:
    """Redrive one of moto's executions; returns the redrive date."""
    now = now or datetime.datetime.now(datetime.UTC)
    status = execution.exec_status
    if status not in REDRIVABLE:
        raise RedriveRefused("ExecutionNotRedrivable", f"Execution is {status.value} and cannot be redriven.")
    stopped = execution.stop_date
    if stopped is not None and stopped.tzinfo is None:  # moto's StopExecution stamps a naive UTC time
        stopped = stopped.replace(tzinfo=datetime.UTC)
    if stopped is not None and now - stopped > datetime.timedelta(days=REDRIVABLE_DAYS):
        raise RedriveRefused("ExecutionNotRedrivable", "Execution redrivable period exceeded.")
    if execution.error == executions.HISTORY_LIMIT_ERROR and "history events" in (execution.cause or ""):
        raise RedriveRefused("ExecutionNotRedrivable", "Execution history event limit exceeded.")
    worker = execution.exec_worker
    state, state_input = unsuccessful_state(worker.env.event_manager.get_event_history())
    with _lock:
        count = _counts.get(execution, (0, now))[0] + 1
        _counts[execution] = (count, now)
    interpreter.resume_map_run(execution.exec_arn, state)
    executions.running_again(execution)
    execution.exec_worker = _ResumingWorker(worker, state, state_input, count)
    execution.exec_worker.start()
    return now


def answer(operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
    """The hooks interceptor: RedriveExecution, answered for moto's Step Functions backend."""
    if operation != "RedriveExecution":
        return None
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from localcloud.engine.deployment import ACCOUNT

    request = json.loads(params.get("body") or b"{}")
    arn = str(request.get("executionArn", ""))
    region = arn.split(":")[3] if arn.count(":") >= 3 else ""
    try:
        execution = stepfunctions_parser_backends[ACCOUNT][region].describe_execution(arn)
    except Exception as error:  # moto's ExecutionDoesNotExist or InvalidArn, as AWS names them
        return hooks.json_error(type(error).__name__, str(error), 400)
    try:
        date = redrive(execution)
    except RedriveRefused as refused:
        return hooks.json_error(refused.code, refused.message, 400)
    return 200, {}, hooks.json_body({"redriveDate": date})


_original_describe = StepFunctionResponse.describe_execution


def _describe_with_redrives(self: Any) -> Any:
    answer = _original_describe(self)
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    with _lock:
        counted = _counts.get(execution)
    if counted and isinstance(answer.result, dict):
        answer.result["redriveCount"], answer.result["redriveDate"] = counted
    return answer


_applied = False


def apply() -> None:
    """DescribeExecution says how often an execution was redriven (idempotent)."""
    global _applied
    if not _applied:
        StepFunctionResponse.describe_execution = _describe_with_redrives  # type: ignore[method-assign]
        _applied = True
