"""The local cloud's gateway: a boto3 client pointed at it with `endpoint_url` is answered by the
emulator serving that service (Rekognition here) or by moto's server (S3), and its control paths
answer their owner's actions, a failure as one line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.engine import hooks
from localcloud.engine.gateway import Gateway


def control(method: str, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if action == "echo":
        return 200, {"method": method, "body": body}
    raise RuntimeError("the server did not start\nlog tail line 1\nlog tail line 2")


@pytest.fixture
def gateway(fake_aws_env: pytest.MonkeyPatch) -> Iterator[Gateway]:
    with mock_aws():
        served = Gateway(control).start()
        try:
            yield served
        finally:
            served.stop()


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_emulated_service_and_a_moto_service_answer_over_http(gateway: Gateway) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def rekognition(operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        seen.append((operation, params))
        return (
            200,
            {},
            hooks.json_body({"ProjectDescriptions": [{"ProjectArn": "arn:p", "Status": "CREATED"}]}),
        )

    hooks.serve("rekognition", rekognition)
    try:
        client = boto3.client("rekognition", region_name="us-east-1", endpoint_url=gateway.url)
        answer = client.describe_projects(ProjectNames=["shapes"])
    finally:
        hooks.stop_serving("rekognition")
    assert seen == [("DescribeProjects", {"ProjectNames": ["shapes"]})]
    assert answer["ProjectDescriptions"][0]["ProjectArn"] == "arn:p"

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=gateway.url)
    s3.create_bucket(Bucket="through-the-gateway")
    inside = boto3.client("s3", region_name="us-east-1")  # the in-process mock: the same state
    assert "through-the-gateway" in [b["Name"] for b in inside.list_buckets()["Buckets"]]


def test_control_paths_answer_and_fail_in_one_line(gateway: Gateway) -> None:
    with urllib.request.urlopen(f"{gateway.url}/_localcloud/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "up"}
    assert _post(f"{gateway.url}/_localcloud/echo", {"name": "r1"}) == (
        200,
        {"method": "POST", "body": {"name": "r1"}},
    )
    assert _post(f"{gateway.url}/_localcloud/labelstudio", {}) == (
        500,
        {"error": "RuntimeError: the server did not start"},
    )
