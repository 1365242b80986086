"""boto3 clients with the retry behaviour each call needs, made in one place.

Handlers create their clients once per container (module level) through these functions."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries import standard

from labeling_loop.kernel.errors import TransientServiceError

# The typed clients come from the types-boto3 stubs, a development dependency (requirements-dev.txt):
# the Lambda runtime never imports them, only mypy reads these names.
if TYPE_CHECKING:
    from types_boto3_cloudwatch import CloudWatchClient
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_rekognition import RekognitionClient
    from types_boto3_s3 import S3Client
    from types_boto3_sagemaker import SageMakerClient
    from types_boto3_secretsmanager import SecretsManagerClient
    from types_boto3_sns import SNSClient
    from types_boto3_stepfunctions import SFNClient

# Standard mode retries throttling and transient errors with exponential backoff and jitter
# (botocore retry modes). The inference client uses it too, with more attempts, and every attempt
# goes through the batch's flow control (inference/flow.py, which says why botocore's adaptive mode
# is not used). Its connection pools hold one connection per call a batch may have in flight.
STANDARD = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
INFERENCE = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=64,  # inference.flow.MAX_IN_FLIGHT
)
IMAGE_READS = STANDARD.merge(Config(max_pool_connections=64))


# The services the layer and the handlers call; each name gives its typed client below.
Service = Literal[
    "cloudwatch", "dynamodb", "rekognition", "s3", "sagemaker", "secretsmanager", "sns", "stepfunctions"
]


@overload
def client(service: Literal["cloudwatch"], config: Config = ..., **kwargs: Any) -> CloudWatchClient: ...
@overload
def client(service: Literal["dynamodb"], config: Config = ..., **kwargs: Any) -> DynamoDBClient: ...
@overload
def client(service: Literal["rekognition"], config: Config = ..., **kwargs: Any) -> RekognitionClient: ...
@overload
def client(service: Literal["s3"], config: Config = ..., **kwargs: Any) -> S3Client: ...
@overload
def client(service: Literal["sagemaker"], config: Config = ..., **kwargs: Any) -> SageMakerClient: ...
@overload
def client(
    service: Literal["secretsmanager"], config: Config = ..., **kwargs: Any
) -> SecretsManagerClient: ...
@overload
def client(service: Literal["sns"], config: Config = ..., **kwargs: Any) -> SNSClient: ...
@overload
def client(service: Literal["stepfunctions"], config: Config = ..., **kwargs: Any) -> SFNClient: ...
def client(service: Service, config: Config = STANDARD, **kwargs: Any) -> Any:
    return boto3.client(service, config=config, **kwargs)


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError, or the exception's class name."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(error).__name__


# What botocore's standard retry mode itself treats as transient or throttled: when such an error
# is left after the client's own retries, the state machine retries the step later, with backoff
# (it matches TransientServiceError), instead of failing the run.
# These class attributes are botocore internals, absent from botocore-stubs (attr-defined below);
# the layer pins botocore so they stay what the tests saw (docs/aws-facts.md §4.16).
TRANSIENT_CODES = frozenset(
    standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES  # type: ignore[attr-defined]
    + standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES  # type: ignore[attr-defined]
    + [
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    ]
)
TRANSIENT_STATUS = frozenset(standard.TransientRetryableChecker._TRANSIENT_STATUS_CODES)  # type: ignore[attr-defined]
TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    standard.TransientRetryableChecker._TRANSIENT_EXCEPTION_CLS  # type: ignore[attr-defined]
)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TRANSIENT_EXCEPTIONS):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error_code(error) in TRANSIENT_CODES or status in TRANSIENT_STATUS
    return False


F = TypeVar("F", bound=Callable[..., Any])


def retryable_transient_errors(handler: F) -> F:
    """Wrap a Lambda handler: an AWS error botocore gave up on as transient is re-raised as
    TransientServiceError, which the definition's Retry blocks name."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            if is_transient(error):
                raise TransientServiceError(f"{type(error).__name__}: {error}") from error
            raise

    return wrapped  # type: ignore[return-value]
