"""Last step of a run: build the manifest and report, then record in the ledger which images are
labeled (incremental runs skip them next time) and release the claims of skipped ones (so the next
run tries them again)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labeling_loop import ledger
from labeling_loop.build_manifest import build_manifest
from labeling_loop.jsonl import read_json, read_jsonl
from labeling_loop.run_config import RunConfig


def _optional_json(s3: Any, uri: Any) -> Any:
    try:
        return read_json(s3, uri)
    except s3.exceptions.NoSuchKey:
        return None


def finish_run(
    s3: Any, dynamodb: Any, table: str, config: RunConfig, *, images_listed: int, now: datetime
) -> dict[str, Any]:
    layout = config.layout()
    plan = _optional_json(s3, layout.review_plan) or {}
    jobs = _optional_json(s3, layout.review_jobs) or []
    task_type = plan.get("taskType") or (config.taskType if config.taskType != "auto" else "detection")
    report = build_manifest(
        s3,
        layout,
        task_type=task_type,
        labels=list(plan.get("labels") or config.labels),
        images_listed=images_listed,
        run_id=config.runId or "",
        backend=config.reviewBackend,
        labeling_jobs=[job["jobName"] for job in jobs],
        job_name=f"{config.jobNamePrefix}-{config.runId}",
        now=now,
    )
    if config.incremental and table:
        run_id = config.runId or ""
        labeled = (line["source-ref"] for line in read_jsonl(s3, layout.manifest, missing_ok=True))
        ledger.for_each(lambda ref: ledger.mark_labeled(dynamodb, table, ref, run_id), labeled)
        skipped = (line["source-ref"] for line in read_jsonl(s3, layout.skipped, missing_ok=True))
        ledger.for_each(lambda ref: ledger.release(dynamodb, table, ref, run_id), skipped)
    return {
        "manifest": str(layout.manifest),
        "report": str(layout.report),
        "skipped": str(layout.skipped),
        "counts": report.get("counts", {}),
        "modelQuality": report.get("modelQuality", {}),
        "warnings": report.get("warnings", [])[:20],
    }
