"""What a run's finishing counts as it writes the manifest: images and their statuses, skips and
deferrals by reason, the fixes made to lines, other oddities, the model's quality and the measures
the report's sections are computed from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.evaluation.measures import RunMeasures
from labeling_loop.evaluation.quality import QualityAccumulator
from labeling_loop.finishing.settings import FinishSettings
from labeling_loop.kernel.run_config import PREDICTION_FLOOR

# Skips a reviewer should hear about: the review did not end as planned for these images.
_REVIEW_SKIP_TEXT = {
    "review-failed": "images not reviewed: their labeling job failed (review-failed in skipped.jsonl)",
    "not-reviewed": "images not reviewed: the review ended without an answer (not-reviewed in skipped.jsonl)",
}
_FIX_TEXT = {
    "box-clipped": "boxes clipped to the image",
    "box-dropped-outside-or-too-small": "boxes dropped (outside the image or <= 1 px after clipping)",
    "box-dropped-too-small-after-resize": "boxes dropped (<= 1 px once the image is resized to 1280 px)",
    "box-dropped-unknown-label": "boxes dropped (label not in the run's label set)",
    "box-dropped-malformed": "boxes dropped (missing coordinates)",
    "label-dropped-unknown": "labels dropped (not in the run's label set)",
    "label-dropped-duplicate": "duplicate labels dropped",
}


class Counts:
    KEYS = (
        "imagesListed", "imagesInManifest", "imagesAutoAccepted", "imagesSkipped", "imagesDeferred",
        "imagesReviewed",
        "boxesKept", "boxesAdjusted", "boxesAdded", "boxesRemoved",
        "labelsKept", "labelsAdded", "labelsRemoved",
    )  # fmt: skip

    def __init__(self, images_listed: int) -> None:
        self.values = dict.fromkeys(self.KEYS, 0)
        self.values["imagesListed"] = images_listed

    def add(self, key: str, n: int = 1) -> None:
        self.values[key] += n

    def add_review_statuses(self, record: Mapping[str, Any], task_type: str) -> None:
        """Statuses as people left them (before any clipping fix); auto-accepted boxes are `kept`."""
        prefix, items = (
            ("boxes", record.get("boxes")) if task_type == "detection" else ("labels", record.get("labels"))
        )
        for item in items or []:
            status = item.get("status") if isinstance(item, Mapping) else None
            key = f"{prefix}{str(status).capitalize()}"
            if key in self.values and key != f"{prefix}Removed":
                self.values[key] += 1
        self.values[f"{prefix}Removed"] += len(record.get("removed") or [])


def _add(tally: dict[str, int], key: str, n: int = 1) -> None:
    tally[key] = tally.get(key, 0) + n


@dataclass
class RunTally:
    counts: Counts
    quality: QualityAccumulator
    measures: RunMeasures
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    deferred_by_reason: dict[str, int] = field(default_factory=dict)
    fixes: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # other countable oddities, warnings at the end

    @classmethod
    def for_run(cls, settings: FinishSettings) -> RunTally:
        measures = RunMeasures(
            settings.task_type,
            settings.context.min_confidence,
            PREDICTION_FLOOR,
            settings.iou_threshold,
            box_tolerance=settings.context.box_tolerance,
        )
        return cls(Counts(settings.images_listed), QualityAccumulator(settings.iou_threshold), measures)

    def note(self, key: str, n: int = 1) -> None:
        _add(self.notes, key, n)

    def add_fixes(self, fixes: Mapping[str, int]) -> None:
        for kind, n in fixes.items():
            _add(self.fixes, kind, n)

    def skipped(self, record: Mapping[str, Any]) -> None:
        _add(self.skipped_by_reason, str(record.get("reason")))
        self.counts.add("imagesSkipped")

    def deferred(self, record: Mapping[str, Any]) -> None:
        _add(self.deferred_by_reason, str(record.get("reason")))
        self.counts.add("imagesDeferred")

    def warnings(self) -> list[str]:
        """The review's skips, the fixes made and the other oddities, as the report words them."""
        warnings = [
            f"{self.skipped_by_reason[reason]} {text}"
            for reason, text in _REVIEW_SKIP_TEXT.items()
            if reason in self.skipped_by_reason
        ]
        warnings.extend(f"{n} {_FIX_TEXT.get(kind, kind)}" for kind, n in sorted(self.fixes.items()))
        warnings.extend(f"{n} {text}" for text, n in sorted(self.notes.items()))
        if self.quality.images == 0:
            warnings.append("modelQuality not measured: no image was reviewed by people")
        return warnings
