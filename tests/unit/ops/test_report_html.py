"""`report`: the run's report.json downloaded as written, and its page for people: the run's own
report.html, or the same renderer's page from report.json when the run wrote none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from fixtures_aws import OUTPUT_BUCKET
from labeling_loop.finishing.report.html import render

from labeling_ops import report_html
from labeling_ops.aws import OpsError

REPORT_KEY = "labeling-runs/run-1/report.json"
OUTPUT = {"report": f"s3://{OUTPUT_BUCKET}/{REPORT_KEY}"}
REPORT = {
    "runId": "run-1",
    "status": "SUCCEEDED",
    "taskType": "detection",
    "backend": "groundtruth",
    "counts": {"imagesInManifest": 12},
    "warnings": ["2 boxes clipped"],
}


def _put(aws: SimpleNamespace, key: str, body: bytes) -> None:
    aws.s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=body)


def test_the_runs_own_page_is_downloaded_as_it_is(aws: SimpleNamespace, tmp_path: Path) -> None:
    body = json.dumps(REPORT).encode()
    _put(aws, REPORT_KEY, body)
    _put(aws, REPORT_KEY.replace(".json", ".html"), "<p>the run's own – page</p>".encode())
    json_path, html_path = report_html.download(aws.s3, OUTPUT, tmp_path / "out")
    assert json_path.read_bytes() == body
    assert html_path.read_bytes() == "<p>the run's own – page</p>".encode()


def test_without_the_runs_page_it_is_rendered_as_build_manifest_renders_it(
    aws: SimpleNamespace, tmp_path: Path
) -> None:
    _put(aws, REPORT_KEY, json.dumps(REPORT).encode())
    report = report_html.fetch(aws.s3, OUTPUT)
    page = report.html_body.decode("utf-8")
    assert page == render(REPORT, {})[0]
    assert "<title>Labeling run run-1</title>" in page and "imagesInManifest" in page
    assert "2 boxes clipped" in page
    _, html_path = report_html.download(aws.s3, OUTPUT, tmp_path)
    assert html_path.read_text(encoding="utf-8") == page


def test_a_run_without_a_report_is_told(aws: SimpleNamespace) -> None:
    with pytest.raises(OpsError, match="did not reach Build Manifest"):
        report_html.fetch(aws.s3, {})
    with pytest.raises(OpsError, match="is gone"):
        report_html.fetch(aws.s3, OUTPUT)


def test_the_cli_renders_reports_without_the_local_clouds_packages() -> None:
    # The CLI installs with boto3, pydantic and rich only (pyproject.toml): the renderer it shares with
    # Build Manifest must not need Pillow (the thumbnails do) or the local cloud.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PIL', 'moto', 'numpy', 'aws_lambda_powertools'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import labeling_ops.cli, labeling_ops.report_html\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
