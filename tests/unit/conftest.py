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


@pytest.fixture
def aws_env(fake_aws_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Fake credentials and the test region (tests/conftest.py); Powertools tracing and metrics off."""
    return fake_aws_env


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
