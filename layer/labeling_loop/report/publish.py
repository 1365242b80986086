"""Write a run's report: report.json (for programs) and report.html (for people) side by side.
Build Manifest writes both; a run that trains writes them again with the training's outcome."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labeling_loop.jsonl import write_json
from labeling_loop.layout import RunLayout
from labeling_loop.report.html import render
from labeling_loop.report.thumbnails import thumbnail


def publish(s3: Any, layout: RunLayout, report: Mapping[str, Any]) -> None:
    write_json(s3, layout.report, report)
    thumbnails = {str(item["source-ref"]): thumbnail(s3, item) for item in report.get("disagreements") or []}
    s3.put_object(
        Bucket=layout.report_html.bucket,
        Key=layout.report_html.key,
        Body=render(report, thumbnails).encode("utf-8"),
        ContentType="text/html; charset=utf-8",
    )


def run_result(layout: RunLayout, report: Mapping[str, Any]) -> dict[str, Any]:
    """The execution's output: where the files are, the counts, and the first warnings."""
    audit = report.get("audit") or {}
    whole = (report.get("quality") or {}).get("wholeRun") or {}
    return {
        "manifest": str(layout.manifest),
        "report": str(layout.report),
        "reportHtml": str(layout.report_html),
        "coco": report.get("coco"),
        "skipped": str(layout.skipped),
        "deferred": str(layout.deferred),
        "counts": report.get("counts", {}),
        "modelQuality": report.get("modelQuality", {}),
        # Small by construction: two numbers and an interval, whatever the run's size.
        "wholeRunF1": (whole.get("overall") or {}).get("f1"),
        "autoAcceptErrorInterval": audit.get("interval95"),
        "gate": (report.get("gate") or {}).get("decision"),
        "warnings": report.get("warnings", [])[:20],
    }
