"""Finishing a run (Build Manifest): reviewed records -> the Custom Labels manifest with its merged
skip and deferral records, the COCO export and the run report, written in that order
(docs/data-contracts.md).

Memory stays flat whatever the number of images: records are streamed, lines are spooled to disk
by JsonlWriter (and CocoWriter), model quality is summed by QualityAccumulator, and everything that
must be looked up by `source-ref` (which images are already in the manifest or skipped, the model's
predictions for a reviewed image) lives in a SQLite file under /tmp (`spill_index`) instead of a
Python dict.
"""

from __future__ import annotations

from typing import Any

from labeling_loop.finishing.coco import CocoWriter
from labeling_loop.finishing.invariant import check_invariant
from labeling_loop.finishing.manifest.spill_index import SpillIndex
from labeling_loop.finishing.manifest_files import write_manifest
from labeling_loop.finishing.run_report import write_report
from labeling_loop.finishing.settings import FinishSettings
from labeling_loop.finishing.tally import RunTally


def finish_run(s3: Any, settings: FinishSettings) -> dict[str, Any]:
    """Write output.manifest, skipped.jsonl and deferred.jsonl, coco.json (detection), then
    report.json and report.html of a run; return the report.

    Raises ManifestValidationError for a terminal manifest error (nothing is written then)."""
    tally = RunTally.for_run(settings)
    labels = settings.class_map.names  # a label Custom Labels refuses stops the run here
    with SpillIndex() as index:
        coco = (
            CocoWriter(s3, settings.layout.coco, labels, f"{settings.run_id}: reviewed labels")
            if settings.task_type == "detection"
            else None
        )
        warnings = write_manifest(s3, settings, index, tally, coco)
        if coco is not None:
            # Fed each manifest line as it was written, so both hold the same boxes; uploaded now.
            coco.close()
        warnings += tally.warnings()
        warnings += check_invariant(s3, settings.layout, index, tally.counts.values)
    return write_report(s3, settings, tally, warnings)
