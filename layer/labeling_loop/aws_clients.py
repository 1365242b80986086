"""boto3 clients with the retry behaviour each call needs, made in one place.

Handlers create their clients once per container (module level) through these functions."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and transient errors with exponential backoff and jitter
# (botocore retry modes). Adaptive adds client-side rate limiting for the hot inference loop,
# where many threads share one model's throughput.
STANDARD = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
INFERENCE = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=32,
)


def client(service: str, config: Config = STANDARD, **kwargs: Any) -> Any:
    return boto3.client(service, config=config, **kwargs)


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError, or the exception's class name."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(error).__name__
