"""What every emulated service shares: the error type, request validation against botocore's model,
and the dispatch from an operation name to its handler.

Also the pagination the emulators answer with (`page`: MaxResults and an opaque NextToken).

botocore's own `ParamValidator` checks required/unknown members, types and minimum lengths (that is
all the SDK checks client-side). The service also enforces maximum lengths/values, patterns and
enums, answering `ValidationException` with messages such as
"1 validation error detected: Value 'x' at 'labelingJobName' failed to satisfy constraint: Member
must satisfy regular expression pattern: ..." (the AWS JSON protocol's common validation error,
https://docs.aws.amazon.com/rekognition/latest/APIReference/CommonErrors.html). We check those too,
so an emulated call fails where the real one would.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import botocore.session
from botocore import xform_name
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.validate import ParamValidator

# Codes AWS answers with HTTP 5xx; everything else an emulator raises is a 400 unless it says
# otherwise (throttling_error).
_SERVER_ERRORS = {"InternalServerError": 500, "InternalFailure": 500, "ServiceUnavailable": 503}
# ThrottlingException's status differs by service: Rekognition's API reference documents it with
# HTTP 500 (docs/aws-facts.md §1.5), SageMaker's common errors with 400 (§4.4).
THROTTLING_STATUS = {"rekognition": 500, "sagemaker": 400}

_session_lock = threading.Lock()


class ServiceError(Exception):
    """An error answer of an emulated AWS service: `code` is the AWS error code, as botocore's
    `ClientError.response["Error"]["Code"]` would show it."""

    def __init__(self, code: str, message: str, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else _SERVER_ERRORS.get(code, 400)

    def to_response(self, request_id: str = "00000000-0000-0000-0000-000000000000") -> dict[str, Any]:
        """The parsed error body as botocore (and moto's Step Functions interpreter) expect it."""
        return {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": self.http_status},
        }


def throttling_error(service: str, message: str) -> ServiceError:
    """ThrottlingException as `service` answers it, with that service's HTTP status."""
    return ServiceError("ThrottlingException", message, THROTTLING_STATUS[service])


@functools.lru_cache(maxsize=8)
def _service_model(service: str) -> ServiceModel:
    # Loading a model takes ~100 ms (sagemaker's is large): once per process. botocore sessions are
    # not documented as thread-safe, hence the lock around the first load.
    with _session_lock:
        return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    return _service_model(service).operation_model(operation)


def validate_request(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise ServiceError("ValidationException") when `params` do not fit the operation's input."""
    model = operation_model(service, operation)
    shape = model.input_shape
    if shape is None:
        if params:
            raise ServiceError("ValidationException", f"{operation} takes no parameters")
        return
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ServiceError("ValidationException", report.generate_report())
    problems: list[str] = []
    _check_constraints(params, shape, "", problems)
    if problems:
        noun = "error" if len(problems) == 1 else "errors"
        raise ServiceError(
            "ValidationException", f"{len(problems)} validation {noun} detected: " + "; ".join(problems)
        )


class EmulatedService:
    """An emulated AWS service: `handle(operation, params) -> dict` answers like the service, or
    raises `ServiceError`. Subclasses name their service and the operations they emulate, each
    answered by the private method named as boto3 names the operation (`_describe_projects`)."""

    SERVICE: ClassVar[str]
    OPERATIONS: ClassVar[frozenset[str]]

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation not in self.OPERATIONS:
            # Emulator choice: an operation the workflow is not supposed to call fails loudly.
            raise ServiceError("InvalidAction", f"The emulator does not implement {self.SERVICE} {operation}")
        validate_request(self.SERVICE, operation, params)
        handler: Callable[[dict[str, Any]], dict[str, Any]] = getattr(self, "_" + xform_name(operation))
        return handler(params)


def _member_path(parent: str, name: str) -> str:
    # AWS names members in camelCase in these messages ("at 'labelingJobName'").
    camel = name[:1].lower() + name[1:]
    return f"{parent}.{camel}" if parent else camel


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: leave that check to the real service
        return None


def _check_constraints(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if isinstance(shape, StructureShape):  # type_name "structure"
        for name, member in shape.members.items():
            if name in value:
                _check_constraints(value[name], member, _member_path(path, name), problems)
        return
    if isinstance(shape, ListShape):  # type_name "list"
        _check_range(len(value), meta, path, "Member must have length", problems)
        for index, item in enumerate(value):
            _check_constraints(item, shape.member, f"{path}.{index + 1}.member", problems)
        return
    if isinstance(shape, MapShape):  # type_name "map"
        for key, item in value.items():
            _check_constraints(item, shape.value, f"{path}.{key}", problems)
        return
    if kind == "string":
        _check_range(len(value), meta, path, "Member must have length", problems)
        enum = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            problems.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        # The services match the whole value (Java `Pattern.matches`): "my_job" fails the labeling
        # job name pattern although it contains a valid substring.
        if compiled is not None and compiled.fullmatch(value) is None:
            problems.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        return
    if kind in ("integer", "long", "float", "double") and not isinstance(value, bool):
        _check_range(value, meta, path, "Member must have value", problems)


def _check_range(value: float, meta: dict[str, Any], path: str, what: str, problems: list[str]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        problems.append(
            f"Value at '{path}' failed to satisfy constraint: {what} greater than or equal to {low}"
        )
    if high is not None and value > high:
        problems.append(
            f"Value at '{path}' failed to satisfy constraint: {what} less than or equal to {high}"
        )


def page(rows: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict[str, Any]:
    """A paginated answer: one page of `rows` under `key`, with a NextToken while more remain
    (MaxResults, default 100)."""
    token = params.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ServiceError("InvalidPaginationTokenException", "Invalid pagination token") from error
    end = start + params.get("MaxResults", 100)
    response: dict[str, Any] = {key: rows[start:end]}
    if end < len(rows):
        response["NextToken"] = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode()
    return response
