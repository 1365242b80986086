"""Answer AWS calls in process through botocore's public event system.

The handler sits on `before-send`, the last event before bytes would go on the wire, inside
botocore's retry loop: the emulators receive the serialized request and return an HTTP response
(status, headers, body) that botocore parses itself. So error parsing, retry modes (standard and
adaptive backoff on ThrottlingException) and Step Functions' own error naming all run the real code.
(Answering in `before-call` instead would skip the retry loop entirely: measured, every throttled
call then failed at once.)

It is added to `botocore.handlers.BUILTIN_HANDLERS` with REGISTER_FIRST, ahead of moto's own
`before-send` stub, so it reaches every client made afterwards (boto3's default session and private
sessions alike, including the clients moto's Step Functions interpreter makes), and it is also
registered first on the default session if one already exists. It only answers for the services a
local cloud currently serves.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

import botocore.handlers
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

if TYPE_CHECKING:
    from botocore.compat import HTTPHeaders

# A responder gets (operation, API parameters) and returns (HTTP status, headers, body bytes).
Responder = Callable[[str, dict[str, Any]], tuple[int, dict[str, str], bytes]]

_responders: dict[str, Responder] = {}
# Interceptors may answer some calls of a service moto serves (fault injection, an operation moto
# lacks) or only watch them; None lets the next interceptor, then moto, answer. They see the
# operation and the request's `url`, `method`, `headers` and raw `body` (not parsed here).
Interceptor = Callable[[str, dict[str, Any]], tuple[int, dict[str, str], bytes] | None]
_interceptors: dict[str, list[Interceptor]] = {}
_answered = threading.local()
_lock = threading.Lock()
_installed = False
_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()  # the JSON protocols send timestamps as epoch seconds
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, default=_json_default).encode("utf-8")


def json_error(code: str, message: str, status: int) -> tuple[int, dict[str, str], bytes]:
    """An error as the AWS JSON protocols send it (`__type` + `message`)."""
    return status, {"x-amzn-ErrorType": code}, json_body({"__type": code, "message": message})


def _params(service: str, operation: str, request: Any) -> dict[str, Any]:
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if service == "lambda" and operation == "Invoke":
        match = _INVOKE_PATH.search(request.url)
        return {"FunctionName": unquote(match.group(1)) if match else "", "Payload": body}
    if service not in _responders:
        return {"url": request.url, "method": request.method, "headers": dict(request.headers), "body": body}
    return json.loads(body) if body else {}


def _answer(request: Any, event_name: str, **_kwargs: Any) -> AWSResponse | None:
    _, service, operation = event_name.split(".", 2)
    _answered.request = None
    responder = _responders.get(service)
    interceptors = _interceptors.get(service, [])
    if responder is None and not interceptors:
        return None
    params = _params(service, operation, request)
    answer = None
    for interceptor in interceptors:
        answer = interceptor(operation, params)
        if answer is not None:
            break
    if answer is None:
        if responder is None:
            return None
        answer = responder(operation, params)
    # moto's stub still runs after us (see _moto_stub_unless_served): remember this request is answered.
    _answered.request = request
    status, headers, body = answer
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/x-amz-json-1.1", **headers}
    # botocore-stubs say HTTPHeaders; AWSResponse (a botocore internal) copies any mapping into a HeadersDict.
    return AWSResponse(request.url, status, cast("HTTPHeaders", headers), MockRawResponse(body))


_moto_stub_call = BotocoreStubber.__call__


def _moto_stub_unless_served(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
    # botocore emits `before-send` to every handler (not until the first answer), so moto's stub
    # would still run, and raise NotImplementedError, for a call an emulator already answered.
    if event_name.split(".")[1] in _responders or getattr(_answered, "request", None) is request:
        return None
    return _moto_stub_call(self, event_name, request, **kwargs)


def install() -> None:
    """Idempotent: register the handler once per process, ahead of moto's stub."""
    global _installed
    with _lock:
        if _installed:
            return
        BotocoreStubber.__call__ = _moto_stub_unless_served  # type: ignore[method-assign]
        botocore.handlers.BUILTIN_HANDLERS.append(("before-send", _answer, botocore.handlers.REGISTER_FIRST))
        import boto3

        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION._session.get_component("event_emitter").register_first(
                "before-send", _answer
            )
        _installed = True


def respond(service: str, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
    """Answer a call that arrived another way (over HTTP: engine/gateway.py) as a client in this
    process would be answered; None when no emulator serves the service."""
    responder = _responders.get(service)
    return responder(operation, params) if responder is not None else None


def serve(service: str, responder: Responder) -> None:
    _responders[service] = responder


def stop_serving(service: str) -> None:
    _responders.pop(service, None)
    _interceptors.pop(service, None)


def intercept(service: str, interceptor: Interceptor) -> None:
    _interceptors.setdefault(service, []).append(interceptor)
