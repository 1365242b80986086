"""Fixtures every layer of tests shares (tests/fake_aws.py, tests/lambda_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fake_aws import REGION, use_fake_aws
from moto import mock_aws


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """Fake credentials and the test region; nothing from the machine; Powertools quiet."""
    use_fake_aws(monkeypatch, tmp_path)
    yield monkeypatch


@pytest.fixture
def moto_s3(fake_aws_env: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 client on moto, for tests that create their own buckets."""
    with mock_aws():
        yield boto3.client("s3", region_name=REGION)
