"""Puts a batch's Limiter (flow.py) in front of every DetectCustomLabels attempt of a boto3 client,
through botocore's event system:

- `before-send.rekognition.DetectCustomLabels` waits for the limiter before each attempt, the first
  and every retry botocore's standard mode makes (the event is emitted once per attempt, inside
  botocore's retry loop; handlers of the most specific event name run first);
- `needs-retry.rekognition.DetectCustomLabels` tells the limiter how the attempt ended (answered,
  throttled, or another error) and returns None, so botocore's own retry handler still decides
  whether and when to retry.

One client serves every batch a container runs (it is created once, at cold start), and in the local
cloud every concurrent batch of a run: the limiter is the calling thread's (`pacing`), not the
client's, so batches never share an estimate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.retries import standard

from labeling_loop.inference.flow import Limiter

if TYPE_CHECKING:
    from types_boto3_rekognition import RekognitionClient

OPERATION = "rekognition.DetectCustomLabels"
# What botocore's standard mode treats as throttling: ProvisionedThroughputExceededException and
# ThrottlingException among them (docs/aws-facts.md §1.5). A botocore internal, absent from
# botocore-stubs; the layer pins botocore so it stays what the tests saw (docs/aws-facts.md §4.16).
THROTTLING_CODES = frozenset(
    standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES  # type: ignore[attr-defined]
)

_current = threading.local()


def install(client: RekognitionClient) -> RekognitionClient:
    """Register the hooks on a client (idempotent); returns the client."""
    events = client.meta.events
    events.register(f"before-send.{OPERATION}", _before_send, unique_id="labeling-loop-flow-before-send")
    events.register(f"needs-retry.{OPERATION}", _after_attempt, unique_id="labeling-loop-flow-after-attempt")
    return client


@contextmanager
def pacing(limiter: Limiter) -> Iterator[None]:
    """DetectCustomLabels calls made by this thread inside the block go through `limiter`."""
    previous = getattr(_current, "limiter", None)
    _current.limiter = limiter
    try:
        yield
    finally:
        sent_at = getattr(_current, "sent_at", None)
        if sent_at is not None:  # an attempt that never reported back (an exception in between)
            limiter.release(sent_at, "error")
        _current.limiter = previous
        _current.sent_at = None


def _before_send(**_: Any) -> None:
    limiter = getattr(_current, "limiter", None)
    if limiter is not None:
        _current.sent_at = limiter.acquire()


def outcome_of(response: Any, caught_exception: Any) -> str:
    """ "answered", "throttled" or "error" for one attempt, as the needs-retry event describes it."""
    if caught_exception is not None or response is None:
        return "error"
    http, parsed = response
    if 200 <= getattr(http, "status_code", 0) < 300:
        return "answered"
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return "throttled" if code in THROTTLING_CODES else "error"


def _after_attempt(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    limiter = getattr(_current, "limiter", None)
    sent_at = getattr(_current, "sent_at", None)
    if limiter is None or sent_at is None:
        return
    _current.sent_at = None
    limiter.release(sent_at, outcome_of(response, caught_exception))
