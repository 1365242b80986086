"""Write a run's report: report.json (for programs) and report.html (for people) side by side.
Build Manifest writes both; a run that trains writes them again with the training's outcome."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labeling_loop.finishing.report.html import render
from labeling_loop.finishing.report.thumbnails import thumbnail
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.layout import RunLayout

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


def publish(s3: S3Client, layout: RunLayout, report: Mapping[str, Any]) -> dict[str, Any]:
    """Write report.json and report.html; return the report as written. Nothing in the HTML's
    making can fail the run: an item that cannot be drawn is shown as text or left out, and a
    warning in report.json says so."""
    thumbnails: dict[str, str | None] = {}
    for item in report.get("disagreements") or []:
        try:
            thumbnails[str(item["source-ref"])] = thumbnail(s3, item)
        except Exception:  # no picture for it: the figure says "could not be read"
            logger.warning("no thumbnail", exc_info=True)
    html, problems = render(report, thumbnails)
    final = {**report, "warnings": [*(report.get("warnings") or []), *problems]} if problems else dict(report)
    write_json(s3, layout.report, final)
    s3.put_object(
        Bucket=layout.report_html.bucket,
        Key=layout.report_html.key,
        Body=html.encode("utf-8"),
        ContentType="text/html; charset=utf-8",
    )
    return final


def run_result(layout: RunLayout, report: Mapping[str, Any]) -> dict[str, Any]:
    """The execution's output: where the files are, the counts, and the first warnings."""
    audit = report.get("audit") or {}
    quality = report.get("quality") or {}
    whole = quality.get("wholeRun") or {}
    budget = report.get("budget") or {}

    def f1_text(table: Mapping[str, Any] | None) -> str | None:
        figure = ((table or {}).get("overall") or {}).get("f1")
        return str(figure["text"]) if isinstance(figure, Mapping) else None

    return {
        "manifest": str(layout.manifest),
        "report": str(layout.report),
        "reportHtml": str(layout.report_html),
        "coco": report.get("coco"),
        "skipped": str(layout.skipped),
        "deferred": str(layout.deferred),
        "counts": report.get("counts", {}),
        "modelQuality": report.get("modelQuality", {}),
        # Small by construction: a few numbers and intervals, whatever the run's size.
        "wholeRunF1": (whole.get("overall") or {}).get("f1"),
        # F1 with its 95 % interval, as people read it: "0.87 (0.84-0.90)"
        "f1": {"reviewed": f1_text(quality.get("reviewedImages")), "wholeRun": f1_text(whole)},
        "autoAcceptErrorInterval": audit.get("interval95"),
        "gate": (report.get("gate") or {}).get("decision"),
        "gateReason": (report.get("gate") or {}).get("reason"),
        # The review budget in a few numbers and a line (report.json's `budget` has the rest).
        "budget": {
            key: budget.get(key)
            for key in (
                "reviewBudget",
                "sentToPeople",
                "correctionsFound",
                "backlog",
                "runsForBacklog",
                "backlogNote",
            )
        },
        "warnings": report.get("warnings", [])[:20],
    }
