"""Emulators of the AWS services moto does not cover: Rekognition Custom Labels and SageMaker Ground
Truth. Each exposes `handle(operation, params) -> dict` and raises `ServiceError` like the service."""

from localcloud.emulators.base import ServiceError, validate_request

__all__ = ["ServiceError", "validate_request"]
