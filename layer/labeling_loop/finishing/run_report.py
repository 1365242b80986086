"""The run's report as finishing writes it: the counts and reasons the manifest's pass tallied,
the model's quality, the report's sections (finishing/report/sections.py) and the warnings, then
report.json and report.html (finishing/report/publish.py)."""

from __future__ import annotations

from typing import Any

from labeling_loop.finishing.report.publish import publish
from labeling_loop.finishing.report.sections import report_sections
from labeling_loop.finishing.settings import FinishSettings
from labeling_loop.finishing.tally import RunTally

MAX_WARNINGS = 50  # report.json stays small however broken a run is


def _cap(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_WARNINGS:
        return warnings
    return [*warnings[: MAX_WARNINGS - 1], f"{len(warnings) - MAX_WARNINGS + 1} more warnings not shown"]


def write_report(s3: Any, settings: FinishSettings, tally: RunTally, warnings: list[str]) -> dict[str, Any]:
    """Write report.json and report.html; return the report as written."""
    counts = tally.counts.values
    sections, section_warnings = report_sections(
        tally.measures,
        settings.context,
        backend=settings.backend,
        images_in_manifest=counts["imagesInManifest"],
        deferred_by_reason=tally.deferred_by_reason,
    )
    layout = settings.layout
    report = {
        "runId": settings.run_id,
        "status": "SUCCEEDED",
        "backend": settings.backend,
        "taskType": settings.task_type,
        "counts": counts,
        "skippedByReason": dict(sorted(tally.skipped_by_reason.items())),
        "deferredByReason": dict(sorted(tally.deferred_by_reason.items())),
        "modelQuality": tally.quality.result(),
        "labelingJobs": list(settings.labeling_jobs),
        "manifest": str(layout.manifest),
        "coco": str(layout.coco) if settings.task_type == "detection" else None,
        "skipped": str(layout.skipped),
        "deferred": str(layout.deferred),
        "report": str(layout.report_html),
        **sections,
        # An incremental run that found nothing new (every image labeled, or in another run's review)
        # ends quietly: an empty manifest is then what was asked for, not something to warn about.
        "nothingToDo": counts["imagesListed"] == 0,
        "warnings": [] if counts["imagesListed"] == 0 else _cap([*warnings, *section_warnings]),
    }
    return publish(s3, layout, report)
