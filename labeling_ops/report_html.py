"""`report`: a run's report.json, downloaded, and an HTML page of it a person can open (the run's
own report.html when it wrote one; otherwise rendered here from report.json)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from labeling_loop.kernel.s3_uri import S3Uri

from labeling_ops.aws import OpsError, explain


def _get(s3: Any, uri: S3Uri) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise OpsError(explain(error)) from None


def download(s3: Any, output: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write report.json and report.html into out_dir; return their paths (the HTML last)."""
    if "report" not in output:
        raise OpsError("the run's output names no report: it did not reach Build Manifest")
    report_uri = S3Uri.parse(str(output["report"]))
    body = _get(s3, report_uri)
    if body is None:
        raise OpsError(f"{report_uri} is gone (deleted, or a lifecycle rule expired it)")
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    json_path.write_bytes(body)
    html_path = out_dir / "report.html"
    written = _get(s3, S3Uri(report_uri.bucket, report_uri.key.removesuffix(".json") + ".html"))
    html_path.write_bytes(written if written is not None else render(json.loads(body), output).encode())
    return [json_path, html_path]


def _rows(mapping: dict[str, Any]) -> str:
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>" for k, v in mapping.items()
    )


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def render(report: dict[str, Any], output: dict[str, Any]) -> str:
    """A self-contained page: where the files are, the counts, the model's quality, the warnings,
    and every other section of report.json as a table."""
    sections = [
        "<h2>Files</h2><table>"
        + _rows({k: output[k] for k in ("manifest", "skipped", "report") if k in output})
        + "</table>"
    ]
    for key in ("counts", "modelQuality"):
        if isinstance(report.get(key), dict):
            sections.append(f"<h2>{html.escape(key)}</h2><table>{_rows(report[key])}</table>")
    warnings = report.get("warnings") or []
    sections.append(
        f"<h2>Warnings ({len(warnings)})</h2><ul>"
        + "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
        + "</ul>"
    )
    rest = {k: v for k, v in report.items() if k not in ("counts", "modelQuality", "warnings")}
    if rest:
        sections.append(f"<h2>Everything else</h2><table>{_rows(rest)}</table>")
    title = html.escape(str(report.get("runId", "labeling run")))
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "th{text-align:left;padding-right:2em;vertical-align:top}td{font-family:monospace}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Report {title}</title>"
        f"<style>{style}</style></head><body><h1>Report {title}</h1>{''.join(sections)}</body></html>\n"
    )
