"""A small Label Studio REST client over the standard library.

Why a hand-written client over `http.client` rather than `requests` or the official
`label-studio-sdk`: the backend needs seven REST calls. The SDK pulls in httpx, pydantic, lxml, numpy
and more (tens of MB in the layer, slower cold starts, version pins that fight the layer's pydantic),
and `requests` is not in the Lambda runtime either. `http.client` gives what matters here that
`urllib.request` does not: a short *connect* timeout separate from the *read* timeout, so an
unreachable server fails in seconds while a large export may still take a minute.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from labeling_loop.kernel.errors import LabelStudioUnavailableError, ReviewBackendError

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# REST client
# --------------------------------------------------------------------------------------------


def _is_jwt(token: str) -> bool:
    """A personal access token is a JWT (header.payload.signature); a legacy token is a hex key."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(_b64url(parts[0]))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and "alg" in header


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _jwt_expiry(token: str) -> float | None:
    try:
        exp = json.loads(_b64url(token.split(".")[1])).get("exp")
    except (ValueError, IndexError, binascii.Error):
        return None
    return float(exp) if isinstance(exp, int | float) else None


@dataclass(frozen=True)
class ConnectionSettings:
    """How long the client waits for Label Studio and how often it tries again."""

    connect_timeout: float = 3.0
    read_timeout: float = 60.0
    retries: int = 2  # after the first attempt, on connection errors and 502/503/504
    backoff_seconds: float = 0.5  # doubled after each retry
    sleep: Callable[[float], None] = time.sleep


class LabelStudioClient:
    """The few Label Studio REST calls the review backend makes, with its own retries.

    `token` may be a personal access token (a JWT refresh token, Label Studio >= 1.17's default):
    it is exchanged at POST /api/token/refresh/ for a short-lived access token sent as
    `Authorization: Bearer`, renewed before it expires. Any other string is a legacy token, sent as
    `Authorization: Token` (the organization must have legacy tokens enabled).
    """

    def __init__(self, url: str, token: str, connection: ConnectionSettings = ConnectionSettings()) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReviewBackendError(f"Label Studio URL {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path
        self._token = token.strip()
        self.token_kind: Literal["personal", "legacy"] = "personal" if _is_jwt(self._token) else "legacy"
        self._access: str | None = None
        self._access_expiry = 0.0
        self.connection = connection

    # -- public helpers ------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, params=params, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body)

    def paginate(self, path: str, params: Mapping[str, Any], results_key: str = "results") -> Iterator[Any]:
        """Yield the items of a page-numbered list endpoint (`page`, `page_size`) to its end.

        Projects answer `{"results", "next"}`, the data manager's task list `{"tasks", "total"}`."""
        page_size = int(params.get("page_size", 100))
        seen = 0
        for page in range(1, 1_000_000):
            data = self.get(path, {**params, "page": page})
            items = data.get(results_key) or [] if isinstance(data, dict) else data or []
            yield from items
            seen += len(items)
            # Trust the server's own end marker: it may cap page_size below what was asked.
            if not items or not isinstance(data, dict):
                return
            if "next" in data:
                if not data["next"]:
                    return
            elif "total" in data:
                if seen >= int(data["total"]):
                    return
            elif len(items) < page_size:
                return

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        body: Any = None,
        authenticate: bool = True,
    ) -> Any:
        """Send one JSON request; return the decoded body (None when empty).

        Raises LabelStudioUnavailableError (transient: the state machine retries, a review poll
        waits) when the server cannot be reached, times out or answers 5xx after the retries, and
        ReviewBackendError when it rejects the token or refuses the request. Errors name the URL,
        the request and the HTTP status, never the server's answer: they end up in the execution
        history, which more people may read than the server's data (the answer is logged instead).
        An expired access token is refreshed once on 401.
        """
        target = self._base_path + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        for auth_attempt in range(2):
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            if authenticate:
                headers["Authorization"] = self._authorization(force_refresh=auth_attempt > 0)
            status, payload = self._send(method, target, data, headers)
            if status == 401 and authenticate and self.token_kind == "personal" and auth_attempt == 0:
                continue  # the access token may have expired between check and use
            break
        if status >= 400:
            logger.warning(
                "Label Studio refused a request",
                extra={"method": method, "path": path, "status": status, "answer": _detail(payload)},
            )
        if status in (401, 403):
            raise ReviewBackendError(
                f"Label Studio at {self.url} rejected the {self.token_kind} token "
                f"(HTTP {status} on {method} {path})"
            )
        if status >= 500:
            raise LabelStudioUnavailableError(
                f"Label Studio at {self.url} failed {method} {path} (HTTP {status})"
            )
        if status >= 400:
            raise ReviewBackendError(f"Label Studio at {self.url} refused {method} {path} (HTTP {status})")
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise ReviewBackendError(
                f"Label Studio at {self.url} answered {method} {path} with non-JSON (HTTP {status})"
            ) from exc

    # -- internals -----------------------------------------------------------------------------

    def _authorization(self, *, force_refresh: bool = False) -> str:
        if self.token_kind == "legacy":
            return f"Token {self._token}"
        if force_refresh or self._access is None or time.time() > self._access_expiry - 30:
            answer = self.request(
                "POST", "/api/token/refresh/", body={"refresh": self._token}, authenticate=False
            )
            access = answer.get("access") if isinstance(answer, dict) else None
            if not access:
                raise ReviewBackendError(f"Label Studio at {self.url} gave no access token for the PAT")
            self._access = access
            # Without an `exp` claim, refresh every few minutes (Label Studio's default is 5 min).
            self._access_expiry = _jwt_expiry(access) or time.time() + 240
        return f"Bearer {self._access}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.connection.connect_timeout
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.connection.connect_timeout)

    def _send(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """One HTTP exchange with retries on connection failures and 502/503/504.

        Only failures where the server cannot have acted are retried (refused/timed-out connects,
        gateway errors), so a retried POST never imports the same tasks twice.
        """
        last_error = ""
        for attempt in range(self.connection.retries + 1):
            if attempt:
                self.connection.sleep(self.connection.backoff_seconds * 2 ** (attempt - 1))
            conn = self._connection()
            try:
                try:
                    conn.connect()
                except OSError as exc:  # refused, unreachable, DNS, connect timeout
                    last_error = f"{type(exc).__name__}: {exc}"
                    continue
                if conn.sock is not None:
                    conn.sock.settimeout(self.connection.read_timeout)
                try:
                    conn.request(method, target, body=data, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                except TimeoutError as exc:
                    raise LabelStudioUnavailableError(
                        f"Label Studio at {self.url} did not answer {method} {path_of(target)} "
                        f"within {self.connection.read_timeout:g} s"
                    ) from exc
                except (OSError, http.client.HTTPException) as exc:
                    raise LabelStudioUnavailableError(
                        f"Label Studio at {self.url} dropped {method} {path_of(target)}: {type(exc).__name__}"
                    ) from exc
                if response.status in (502, 503, 504) and attempt < self.connection.retries:
                    last_error = f"HTTP {response.status}"
                    continue
                return response.status, payload
            finally:
                conn.close()
        raise LabelStudioUnavailableError(
            f"Label Studio at {self.url} is unreachable after {self.connection.retries + 1} attempts: "
            f"{last_error}"
        )


def path_of(target: str) -> str:
    """The request's path without its query (which may hold task ids or titles)."""
    return target.split("?", 1)[0]


def _detail(payload: bytes) -> str:
    """The server's own explanation, short: DRF answers `{"detail": ...}`."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload[:200].decode("utf-8", "replace") or "(empty body)"
    if isinstance(doc, dict) and "detail" in doc:
        return str(doc["detail"])[:300]
    return json.dumps(doc)[:300]
