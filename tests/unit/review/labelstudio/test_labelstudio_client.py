"""What the Label Studio client lets reach the execution history: the URL, the request, the HTTP
status, never the server's answer (which may hold anything, the token it was sent included)."""

from __future__ import annotations

import pytest
from labeling_loop.kernel.errors import LabelStudioUnavailableError, ReviewBackendError
from labeling_loop.review.labelstudio import project
from labeling_loop.review.labelstudio.client import LabelStudioClient

CANARY = "SERVER-ANSWER-legacy-token-of-the-stack"


def _answering(monkeypatch: pytest.MonkeyPatch, status: int, body: bytes) -> LabelStudioClient:
    client = LabelStudioClient("https://labelstudio.example.com", "legacy-token-of-the-stack")
    monkeypatch.setattr(client, "_send", lambda *args: (status, body))
    return client


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b'{"detail": "%s"}', ReviewBackendError),
        (403, b'{"detail": "%s"}', ReviewBackendError),
        (404, b"<html>%s</html>", ReviewBackendError),
        (500, b"Traceback ... %s", LabelStudioUnavailableError),
        (200, b"not json %s", ReviewBackendError),
    ],
)
def test_errors_name_the_request_not_the_answer(
    monkeypatch: pytest.MonkeyPatch, status: int, body: bytes, error: type[Exception]
) -> None:
    # GIVEN a server whose answer echoes what it received
    client = _answering(monkeypatch, status, body.replace(b"%s", CANARY.encode()))
    # WHEN a request fails on it
    with pytest.raises(error) as raised:
        client.get("/api/projects/1/")
    # THEN the error (the cause in the execution history) names the server and the status only
    message = str(raised.value)
    assert "labelstudio.example.com" in message and "/api/projects/1/" in message
    assert CANARY not in message and "token-of-the-stack" not in message


def test_the_preflight_returns_nothing_of_the_servers_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a server whose whoami answer holds who the token belongs to
    client = _answering(
        monkeypatch, 200, b'{"id": 1, "email": "admin@example.com", "token": "%s"}' % CANARY.encode()
    )
    # THEN the preflight says only that it answered and accepted the token
    assert project.preflight(client) == {"reachable": True, "authenticated": True}
