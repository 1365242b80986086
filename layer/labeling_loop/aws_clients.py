"""boto3 clients with the retry behaviour each call needs, made in one place.

Handlers create their clients once per container (module level) through these functions."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and transient errors with exponential backoff and jitter
# (botocore retry modes). The inference loop uses it too, with more attempts: measured in bench/
# (5 IU, 3,000 images, same emulated model), adaptive mode's client-side rate limiter kept the
# model at 0.62 of its capacity, standard mode at 0.98, with no image lost.
STANDARD = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
INFERENCE = Config(
    retries={"mode": "standard", "max_attempts": 10},
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
