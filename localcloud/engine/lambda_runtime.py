"""Run the real handlers from `functions/` in process when something invokes a Lambda function.

Each function is registered from `template.yaml` (its CodeUri, Handler and environment). An invoke
loads the handler module once (like a warm container), calls it with a Lambda-like context and
answers as the Lambda service does: a raised exception becomes `FunctionError: "Unhandled"` with
`{"errorType", "errorMessage", "stackTrace"}`, which Step Functions matches by `errorType`.

Difference from AWS, on purpose: all functions share one process, hence one `os.environ`. The
runtime sets the union of the functions' variables (their names never clash) before any handler
runs; `tests/contract` checks that each function's own template environment has what it reads.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from localcloud.engine.hooks import json_error

LOG = logging.getLogger(__name__)


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int


@dataclass
class LambdaContext:
    """What Powertools and handlers read from the Lambda context object."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_ms: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self._deadline) * 1000))


# A fault hook may raise (the function crashes) or return a response to send instead of running it.
FaultHook = Callable[[FunctionSpec, dict[str, Any], int], dict[str, Any] | None]

# What the Lambda service reports when the function's process dies mid-invocation (killed, out of
# memory): the same payload for every cause.
PROCESS_DIED = {
    "errorType": "Runtime.ExitError",
    "errorMessage": "RequestId: emulated Error: Runtime exited with error: signal: killed",
}


class ProcessKilled(BaseException):
    """Raised inside a running handler to emulate its process dying at that instant. A BaseException
    so that no `except Exception` in the product can swallow it, as nothing survives a SIGKILL."""


_current = threading.local()


def current_function() -> FunctionSpec | None:
    """The function whose handler the calling thread is running, None outside any handler."""
    return getattr(_current, "spec", None)


class LambdaRuntime:
    def __init__(self) -> None:
        self.functions: dict[str, FunctionSpec] = {}
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()
        self.invocations: dict[str, int] = {}
        self.fault_hooks: list[FaultHook] = []
        # Invoke requests in order, for tests that assert on what was called with what.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.record_calls = False

    def register(self, spec: FunctionSpec) -> None:
        self.functions[spec.arn] = spec
        self.functions[spec.name] = spec

    def find(self, function_name: str) -> FunctionSpec:
        # FunctionName may be a name, an ARN, or an ARN with a version/alias qualifier.
        spec = self.functions.get(function_name) or self.functions.get(function_name.rsplit(":", 1)[0])
        if spec is None:
            raise KeyError(function_name)
        return spec

    def _module(self, spec: FunctionSpec) -> ModuleType:
        with self._lock:
            module = self._modules.get(spec.logical_id)
            if module is None:
                module_file, _ = spec.handler.rsplit(".", 1)
                path = spec.code_dir / f"{module_file}.py"
                loaded = importlib.util.spec_from_file_location(f"localcloud_fn_{spec.logical_id}", path)
                assert loaded and loaded.loader
                module = importlib.util.module_from_spec(loaded)
                loaded.loader.exec_module(module)
                self._modules[spec.logical_id] = module
            return module

    def invoke(self, function_name: str, payload: Any) -> tuple[Any, str | None]:
        """Run a function; returns (result or error payload, FunctionError or None)."""
        spec = self.find(function_name)
        with self._lock:
            count = self.invocations.get(spec.logical_id, 0) + 1
            self.invocations[spec.logical_id] = count
            if self.record_calls:
                self.calls.append((spec.logical_id, payload))
        for hook in self.fault_hooks:
            injected = hook(spec, payload, count)
            if injected is not None:
                return injected, "Unhandled"
        module = self._module(spec)
        _, function = spec.handler.rsplit(".", 1)
        context = LambdaContext(spec.name, spec.arn, spec.memory, spec.timeout * 1000)
        caller, _current.spec = current_function(), spec
        try:
            result = getattr(module, function)(payload, context)
        except ProcessKilled:
            LOG.info("function %s: process killed (emulated fault)", spec.logical_id)
            return dict(PROCESS_DIED), "Unhandled"
        except Exception as error:  # the Lambda runtime reports every exception the same way
            LOG.info("function %s raised %s: %s", spec.logical_id, type(error).__name__, error)
            return {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_tb(error.__traceback__)[-5:],
            }, "Unhandled"
        finally:
            _current.spec = caller
        # The real service serialises the result as JSON; do the same so nothing unserialisable slips by.
        return json.loads(json.dumps(result)), None

    def responder(self, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """The `lambda` service as the hooks see it: Invoke only, answered as the Lambda API does."""
        if operation != "Invoke":
            return json_error("InvalidRequestContentException", f"{operation} is not emulated", 400)
        raw = params.get("Payload") or b"{}"
        payload = json.loads(raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw)
        try:
            result, function_error = self.invoke(params["FunctionName"], payload)
        except KeyError:
            return json_error(
                "ResourceNotFoundException", f"Function not found: {params['FunctionName']}", 404
            )
        except LambdaServiceError as error:
            return json_error(error.code, error.message, error.status)
        headers = {"X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"}
        if function_error:
            headers["X-Amz-Function-Error"] = function_error
        return 200, headers, json.dumps(result).encode("utf-8")


class LambdaServiceError(Exception):
    """An error of the Lambda service itself (throttling, 5xx), raised by fault hooks."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
