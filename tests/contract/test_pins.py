"""The layer ships the SDK the tests ran with: layer/requirements.txt pins boto3 and botocore at the
versions installed in the test environment, because the clients and the pacing hooks read
botocore's retry internals (docs/aws-facts.md §4.16)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s#]+)", re.MULTILINE)


@pytest.mark.parametrize("package", ["boto3", "botocore"])
def test_the_layer_pins_the_sdk_version_the_tests_run_with(repo_root: Path, package: str) -> None:
    pins = dict(PIN.findall((repo_root / "layer" / "requirements.txt").read_text()))
    assert package in pins, f"layer/requirements.txt does not pin {package}"
    assert pins[package] == version(package), (
        f"layer/requirements.txt pins {package}=={pins[package]}, the tests run {version(package)}"
    )
