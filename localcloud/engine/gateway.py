"""The local cloud on loopback HTTP, for processes other than the one it runs in (the `labeling-loop`
command run again and again against one background cloud, Label Studio reading images, a browser).

One endpoint answers as AWS would, the way the in-process hooks do: moto's server app for the
services moto serves (S3, Step Functions, DynamoDB, Secrets Manager, ...: it shares the in-process
mock's state), the emulators for Rekognition Custom Labels and SageMaker (their JSON protocol names
the operation in `X-Amz-Target`), and a few `/_localcloud/...` paths the owner of the cloud answers
(health, Label Studio on demand). A boto3 client reaches it with `endpoint_url` and fake credentials.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from localcloud.engine import hooks

CONTROL_PREFIX = "/_localcloud/"
# X-Amz-Target prefixes of the JSON-protocol services the emulators answer (botocore's service
# models: Rekognition's targetPrefix `RekognitionService`, SageMaker's `SageMaker`).
EMULATED_TARGETS = {"RekognitionService": "rekognition", "SageMaker": "sagemaker"}
# A control request: (method, path after the prefix, JSON body) -> (HTTP status, JSON answer).
Control = Callable[[str, str, dict[str, Any]], tuple[int, dict[str, Any]]]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Gateway:
    """`Gateway(control).start()` serves on 127.0.0.1 (a free port unless given) until `stop()`."""

    def __init__(self, control: Control | None = None, port: int = 0) -> None:
        self._control = control
        self._port = port
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Gateway:
        # The development server logs every request on stderr; the cloud's owner logs what matters.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server(
            "127.0.0.1", self._port, self._app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PREFIX):
            return self._answer_control(environ, path.removeprefix(CONTROL_PREFIX), start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        prefix, _, operation = target.partition(".")
        service = EMULATED_TARGETS.get(prefix)
        if service and operation:
            answer = hooks.respond(service, operation, json.loads(_body(environ) or b"{}"))
            if answer is not None:
                status, headers, body = answer
                headers = {"Content-Type": "application/x-amz-json-1.1", **headers}
                start_response(_status_line(status), list(headers.items()))
                return [body]
        return self._moto(environ, start_response)

    def _answer_control(
        self, environ: dict[str, Any], action: str, start_response: StartResponse
    ) -> Iterable[bytes]:
        if action == "health":
            status, answer = 200, {"status": "up"}
        elif self._control is None:
            status, answer = 404, {"error": f"no control action {action!r}"}
        else:
            try:
                request = json.loads(_body(environ) or b"{}")
                status, answer = self._control(str(environ["REQUEST_METHOD"]), action, request)
            except Exception as error:  # the caller gets the reason, the cloud goes on
                logging.getLogger(__name__).exception("control action %s failed", action)
                first = (str(error).strip().splitlines() or [""])[0]  # e.g. a server's log tail follows
                status, answer = 500, {"error": f"{type(error).__name__}: {first}"}
        body = json.dumps(answer).encode("utf-8")
        start_response(_status_line(status), [("Content-Type", "application/json")])
        return [body]


def _body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length else b""


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"
