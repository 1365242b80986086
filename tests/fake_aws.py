"""Fake AWS credentials for every test: nothing on the machine (profiles, config files, instance
metadata, endpoints) is ever used, and no test needs real credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    # What the functions would have in Lambda, and Powertools' switches for a test process.
    "POWERTOOLS_SERVICE_NAME": "labeling-loop",
    "POWERTOOLS_METRICS_NAMESPACE": "LabelingLoop",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# Variables that would point boto3 at a real account or endpoint if the machine has them.
MACHINE_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_REKOGNITION",
    "AWS_ENDPOINT_URL_DYNAMODB",
)


def use_fake_aws(monkeypatch: pytest.MonkeyPatch, empty_dir: Path) -> None:
    for name in MACHINE_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty_dir / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty_dir / "no-aws-credentials"))
