"""Fixtures of the unit tests: a fake AWS account (moto) with the stack's buckets and table.

Nothing here is autouse: tests that need AWS ask for `aws`. Helpers live in fixtures_aws.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import boto3
import pytest
from fixtures_aws import IMAGES_BUCKET, OUTPUT_BUCKET, REGION, RUN_STATE_TABLE, create_run_state_table
from moto import mock_aws

# Variables that would point boto3 at a real account or endpoint if the machine has them.
_MACHINE_AWS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_REKOGNITION",
    "AWS_ENDPOINT_URL_DYNAMODB",
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Fake credentials and the test region; Powertools tracing and metrics off."""
    for name in _MACHINE_AWS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "labeling-loop",
        "POWERTOOLS_METRICS_NAMESPACE": "LabelingLoop",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    yield monkeypatch


_session: boto3.Session | None = None


def _shared_session() -> boto3.Session:
    """One boto3 session for every test: it caches the service models, so a client costs ~5 ms
    instead of ~70 ms (moto would otherwise reset boto3's default session, and its caches, per test).
    Its credentials are fake and explicit, so nothing on the machine is ever used."""
    global _session
    if _session is None:
        _session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
    return _session


@pytest.fixture
def aws(aws_env: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """moto with the stack's images and output buckets and its run-state table. Clients made with
    boto3.client() during the test (handlers' module-level clients too) are mocked."""
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        aws_env.setattr(boto3, "DEFAULT_SESSION", _shared_session())
        s3 = boto3.client("s3", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3.create_bucket(Bucket=IMAGES_BUCKET)
        s3.create_bucket(Bucket=OUTPUT_BUCKET)
        create_run_state_table(dynamodb)
        yield SimpleNamespace(s3=s3, dynamodb=dynamodb, table=RUN_STATE_TABLE, env=aws_env)
