"""The model's answer beside people's for each reviewed image: its predictions (read once into the
spill index, on first need) compared with the reviewed record, summed by QualityAccumulator."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from labeling_loop.evaluation.measures import predictions_of, reference_boxes
from labeling_loop.evaluation.quality import LabeledBox, QualityAccumulator
from labeling_loop.finishing.manifest.spill_index import SpillIndex
from labeling_loop.finishing.settings import FinishSettings
from labeling_loop.kernel.jsonl import list_keys
from labeling_loop.kernel.layout import RunLayout


def _prediction_rows(s3: Any, layout: RunLayout) -> Iterator[tuple[str, bytes]]:
    """(source-ref, raw JSON line) per prediction record. The line is stored as read and only
    parsed again for the images people reviewed, which saves re-encoding every prediction."""
    for key in list_keys(s3, layout.predictions_prefix):
        if not key.endswith(".jsonl"):
            continue
        body = s3.get_object(Bucket=layout.predictions_prefix.bucket, Key=key)["Body"]
        for raw in body.iter_lines():
            if not raw.strip():
                continue
            ref = json.loads(raw).get("source-ref")
            if isinstance(ref, str):
                yield ref, bytes(raw)


def _predicted(record: Mapping[str, Any], task_type: str, min_confidence: float = 0.0) -> list[Any]:
    """A prediction record as the model's answer at `min_confidence` (what reviewers were shown):
    pixel boxes for detection (converted exactly as PlanReview converts them for the review
    tasks), label names for classification."""
    shown = [p for p in predictions_of(record, task_type) if p.confidence >= min_confidence]
    if task_type != "detection":
        return sorted({p.label for p in shown})
    return [LabeledBox(p.label, p.box) for p in shown]


def add_quality(
    s3: Any,
    settings: FinishSettings,
    index: SpillIndex,
    quality: QualityAccumulator,
    record: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Compare the model's predictions for one human-reviewed image with the reviewed answer;
    return its prediction record."""
    if not index.predictions_loaded:
        # Loaded on first need: a run with only auto-accepted images never reads the predictions.
        index.load_predictions(_prediction_rows(s3, settings.layout))
    task_type = settings.task_type
    prediction = index.prediction(str(record["source-ref"]))
    predicted = _predicted(prediction, task_type, settings.context.min_confidence) if prediction else []
    if task_type == "detection":
        quality.add_detection(predicted, reference_boxes(record))
    else:
        reference = [
            item.get("label") if isinstance(item, Mapping) else item for item in record.get("labels") or []
        ]
        quality.add_classification(predicted, [str(r) for r in reference if r is not None])
    return prediction
