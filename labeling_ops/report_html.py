"""`report`: a run's report.json, downloaded, and the run's report as a page a person can open: the
run's own report.html, or, when the run wrote none, the same page rendered here from report.json by
the renderer Build Manifest uses (finishing/report/html.py), without the thumbnails (those are drawn
from the images when the run writes its report)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from labeling_loop.finishing.report.html import render
from labeling_loop.kernel.s3_uri import S3Uri

from labeling_ops.aws import OpsError, explain


def _get(s3: Any, uri: S3Uri) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise OpsError(explain(error)) from None


@dataclass(frozen=True)
class RunReport:
    """report.json as the run wrote it, and the page for people (UTF-8)."""

    json_body: bytes
    html_body: bytes


def fetch(s3: Any, output: dict[str, Any]) -> RunReport:
    """The run's report (`output`: the execution's output, which names report.json)."""
    if "report" not in output:
        raise OpsError("the run's output names no report: it did not reach Build Manifest")
    report_uri = S3Uri.parse(str(output["report"]))
    body = _get(s3, report_uri)
    if body is None:
        raise OpsError(f"{report_uri} is gone (deleted, or a lifecycle rule expired it)")
    written = _get(s3, S3Uri(report_uri.bucket, report_uri.key.removesuffix(".json") + ".html"))
    page = written if written is not None else render(json.loads(body), {})[0].encode("utf-8")
    return RunReport(body, page)


def download(s3: Any, output: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write report.json and report.html into out_dir; return their paths (the HTML last)."""
    report = fetch(s3, output)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    json_path.write_bytes(report.json_body)
    html_path = out_dir / "report.html"
    html_path.write_bytes(report.html_body)
    return [json_path, html_path]
