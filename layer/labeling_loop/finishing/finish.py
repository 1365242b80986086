"""BuildManifest core: reviewed records -> Custom Labels manifest, merged skip records and the run
report (docs/data-contracts.md).

Memory stays flat whatever the number of images: records are streamed, lines are spooled to disk
by JsonlWriter, model quality is summed by QualityAccumulator, and everything that must be looked
up by `source-ref` (which images are already in the manifest or skipped, the model's predictions
for a reviewed image) lives in a SQLite file under /tmp (`spill_index`) instead of a Python dict.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from labeling_loop.evaluation.measures import AUDIT, REVIEW, RunMeasures, predictions_of, reference_boxes
from labeling_loop.evaluation.quality import DEFAULT_IOU_THRESHOLD, LabeledBox, QualityAccumulator
from labeling_loop.finishing.coco import CocoWriter
from labeling_loop.finishing.manifest.lines import ClassMap, build_line, skip_record
from labeling_loop.finishing.manifest.rules import (
    REASON_INVALID,
    REASON_NO_LABEL,
    ManifestValidator,
    errors_only,
    inspect_line,
)
from labeling_loop.finishing.manifest.spill_index import DEFERRED, IN_MANIFEST, SKIPPED, SpillIndex
from labeling_loop.finishing.report.publish import publish
from labeling_loop.finishing.report.sections import SHIPPING_DECISIONS, RunContext, report_sections
from labeling_loop.kernel.deferral import defer_record
from labeling_loop.kernel.jsonl import (
    JsonlWriter,
    dumps,
    list_keys,
    read_json,
    read_jsonl,
    read_jsonl_prefix,
)
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import PREDICTION_FLOOR, RunConfig
from labeling_loop.review.selection import PlanSummary

MAX_WARNINGS = 50  # report.json stays small however broken a run is
MAX_LISTED_REFS = 20  # images named in one warning


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


def _creation_date(now: datetime) -> str:
    """Ground Truth's creation-date form (UTC, no offset, e.g. 2020-04-15T20:17:23.433061)."""
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _refs_text(count: int, sample: list[str]) -> str:
    more = f" and {count - len(sample)} more" if count > len(sample) else ""
    return ", ".join(sample) + more


class _Counts:
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


def build_manifest(
    s3: Any,
    layout: RunLayout,
    *,
    task_type: str,
    labels: list[str],
    images_listed: int,
    run_id: str,
    backend: str,
    labeling_jobs: list[str],
    job_name: str,
    now: datetime,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    context: RunContext | None = None,
) -> dict[str, Any]:
    """Write output.manifest, coco.json (detection), skipped.jsonl, report.json and report.html of
    a run; return the report.

    Raises ManifestValidationError for a terminal manifest error (nothing is written then)."""
    if task_type not in ("detection", "classification"):
        raise ValueError(f"unknown task type {task_type!r}")
    context = context or RunContext()
    measures = RunMeasures(
        task_type,
        context.min_confidence,
        PREDICTION_FLOOR,
        iou_threshold,
        box_tolerance=context.box_tolerance,
    )
    class_map = ClassMap(labels)
    creation_date = _creation_date(now)
    validator = ManifestValidator(class_map.names)
    quality = QualityAccumulator(iou_threshold)
    counts = _Counts(images_listed)
    skipped_by_reason: dict[str, int] = {}
    deferred_by_reason: dict[str, int] = {}
    fixes: dict[str, int] = {}
    notes: dict[str, int] = {}  # other countable oddities, turned into warnings at the end
    warnings: list[str] = []

    def note(key: str, n: int = 1) -> None:
        notes[key] = notes.get(key, 0) + n

    def write_skip(writer: JsonlWriter, record: Mapping[str, Any]) -> None:
        writer.write(dict(record))
        reason = str(record.get("reason"))
        skipped_by_reason[reason] = skipped_by_reason.get(reason, 0) + 1
        counts.add("imagesSkipped")

    with SpillIndex() as index:
        index.load_audited((r["source-ref"],) for r in read_jsonl(s3, layout.audit, missing_ok=True))
        coco = (
            CocoWriter(s3, layout.coco, class_map.names, f"{run_id}: reviewed labels")
            if task_type == "detection"
            else None
        )
        decision = context.gate_decision
        if decision == "defer":
            # The audit could not vouch for the auto-accepted images: they wait for the next run.
            _hold_auto_accepted(s3, layout, context.gate_reason)
        second_wave = layout.for_wave(2).reviewed
        # People's answers first (both review waves): if an image is both reviewed and auto-accepted,
        # the review wins. Auto-accepted images ship only when the audit gate let them.
        sources = [layout.reviewed, second_wave]
        if decision in SHIPPING_DECISIONS:
            sources.append(layout.auto_accepted)
        with JsonlWriter(s3, layout.manifest) as manifest, JsonlWriter(s3, layout.skipped) as skipped:
            for source in sources:
                for record in read_jsonl(s3, source, missing_ok=True):
                    ref = record.get("source-ref")
                    if not isinstance(ref, str):
                        note("records without source-ref ignored")
                        continue
                    if record.get("taskType", task_type) != task_type:
                        note(f"records with a taskType other than {task_type} (built as {task_type})")
                    result = build_line(
                        record, class_map, task_type=task_type, job_name=job_name, creation_date=creation_date
                    )
                    line, skip = result.line, result.skip
                    encoded = b""
                    line_labels: set[str] = set()
                    if line is not None:
                        found, line_labels = inspect_line(line)
                        issues = errors_only(found)
                        if issues:
                            # A builder bug, not a reviewer's: keep the run going, say which rule broke.
                            codes = ", ".join(sorted({i.code for i in issues}))
                            line, skip = None, skip_record(ref, REASON_INVALID, f"line breaks {codes}")
                        else:
                            encoded = dumps(line).encode("utf-8")
                    if not index.claim(ref, IN_MANIFEST if line is not None else SKIPPED):
                        note("duplicate reviewed records ignored (first one kept)")
                        continue
                    human = bool(record.get("humanReviewed"))
                    for kind, n in result.fixes.items():
                        fixes[kind] = fixes.get(kind, 0) + n
                    if human:
                        counts.add("imagesReviewed")
                    if line is not None or (skip is not None and skip.get("reason") == REASON_NO_LABEL):
                        # The figures count the answers the run can use: a manifest line, or people's
                        # "no label applies" (which no manifest line can hold). An answer it cannot
                        # use (10,000 boxes, a box off the image) counts in no figure.
                        counts.add_review_statuses(record, task_type)
                        if human:
                            prediction = _add_quality(
                                s3, layout, index, quality, record, ref, task_type, context
                            )
                            audited = index.is_audited(ref)
                            if source == second_wave:  # an auto-accept candidate the gate sent to people
                                measures.add(ref, record, prediction, stratum=AUDIT, held=True)
                            else:
                                stratum = AUDIT if audited else REVIEW
                                measures.add(ref, record, prediction, stratum=stratum, audited=audited)
                    if line is not None:
                        validator.count(ref, line_labels, len(encoded) + 1)
                        manifest.write(line)
                        if coco is not None:
                            coco.add(line)
                        counts.add("imagesInManifest")
                        if not human:
                            counts.add("imagesAutoAccepted")
                    elif skip is not None:
                        write_skip(skipped, skip)
            warnings.extend(validator.finish())

            # Skip records of earlier stages (every `skipped/*.jsonl`), merged once per image.
            for record in read_jsonl_prefix(s3, layout.skipped_prefix):
                ref = record.get("source-ref")
                if not isinstance(ref, str):
                    note("skip records without source-ref ignored")
                    continue
                if not index.claim(ref, SKIPPED):
                    if index.kind(ref) == IN_MANIFEST:
                        note("skip records of images that are in the manifest ignored")
                    else:
                        note("duplicate skip records ignored")
                    continue
                write_skip(skipped, record)

        # Deferred images (every `deferred/*.jsonl`): put off to the next run, once per image.
        with JsonlWriter(s3, layout.deferred) as deferred:
            for record in read_jsonl_prefix(s3, layout.deferred_prefix):
                ref = record.get("source-ref")
                if not isinstance(ref, str):
                    note("deferral records without source-ref ignored")
                    continue
                if not index.claim(ref, DEFERRED):
                    note("deferral records of images already in the manifest, skipped or deferred ignored")
                    continue
                deferred.write(record)
                reason = str(record.get("reason"))
                deferred_by_reason[reason] = deferred_by_reason.get(reason, 0) + 1
                counts.add("imagesDeferred")
        if coco is not None:
            coco.close()

        warnings.extend(
            f"{skipped_by_reason[reason]} {text}"
            for reason, text in _REVIEW_SKIP_TEXT.items()
            if reason in skipped_by_reason
        )
        warnings.extend(f"{n} {_FIX_TEXT.get(kind, kind)}" for kind, n in sorted(fixes.items()))
        warnings.extend(f"{n} {text}" for text, n in sorted(notes.items()))
        if quality.images == 0:
            warnings.append("modelQuality not measured: no image was reviewed by people")
        warnings.extend(_check_invariant(s3, layout, index, counts.values))

    sections, section_warnings = report_sections(
        measures,
        context,
        backend=backend,
        images_in_manifest=counts.values["imagesInManifest"],
        deferred_by_reason=deferred_by_reason,
    )
    warnings.extend(section_warnings)
    report = {
        "runId": run_id,
        "status": "SUCCEEDED",
        "backend": backend,
        "taskType": task_type,
        "counts": counts.values,
        "skippedByReason": dict(sorted(skipped_by_reason.items())),
        "deferredByReason": dict(sorted(deferred_by_reason.items())),
        "modelQuality": quality.result(),
        "labelingJobs": list(labeling_jobs),
        "manifest": str(layout.manifest),
        "coco": str(layout.coco) if coco is not None else None,
        "skipped": str(layout.skipped),
        "deferred": str(layout.deferred),
        "report": str(layout.report_html),
        **sections,
        # An incremental run that found nothing new (every image labeled, or in another run's review)
        # ends quietly: an empty manifest is then what was asked for, not something to warn about.
        "nothingToDo": counts.values["imagesListed"] == 0,
        "warnings": [] if counts.values["imagesListed"] == 0 else _cap(warnings),
    }
    return publish(s3, layout, report)


def _hold_auto_accepted(s3: Any, layout: RunLayout, reason: str) -> None:
    """The auto-accepted images as deferral records (`deferred/manifest-00000.jsonl`)."""
    with JsonlWriter(s3, layout.deferred_part("manifest", 0)) as held:
        held.write_all(
            defer_record(str(r["source-ref"]), "manifest", "held-by-audit-gate", reason)
            for r in read_jsonl(s3, layout.auto_accepted, missing_ok=True)
        )


def _add_quality(
    s3: Any,
    layout: RunLayout,
    index: SpillIndex,
    quality: QualityAccumulator,
    record: Mapping[str, Any],
    ref: str,
    task_type: str,
    context: RunContext,
) -> dict[str, Any] | None:
    """Compare the model's predictions for one human-reviewed image with the reviewed answer;
    return its prediction record."""
    if not index.predictions_loaded:
        # Loaded on first need: a run with only auto-accepted images never reads the predictions.
        index.load_predictions(_prediction_rows(s3, layout))
    prediction = index.prediction(ref)
    predicted = _predicted(prediction, task_type, context.min_confidence) if prediction else []
    if task_type == "detection":
        quality.add_detection(predicted, reference_boxes(record))
    else:
        reference = [
            item.get("label") if isinstance(item, Mapping) else item for item in record.get("labels") or []
        ]
        quality.add_classification(predicted, [str(r) for r in reference if r is not None])
    return prediction


def _check_invariant(s3: Any, layout: RunLayout, index: SpillIndex, counts: dict[str, int]) -> list[str]:
    """imagesListed == imagesInManifest + imagesSkipped + imagesDeferred, or warnings naming the
    images that differ."""
    listed, in_manifest = counts["imagesListed"], counts["imagesInManifest"]
    skipped, deferred = counts["imagesSkipped"], counts["imagesDeferred"]
    if listed == in_manifest + skipped + deferred:
        return []
    warnings = [
        f"imagesListed ({listed}) != imagesInManifest ({in_manifest}) + imagesSkipped ({skipped})"
        f" + imagesDeferred ({deferred})"
    ]
    try:
        index.load_listed(
            (r["source-ref"],)
            for r in itertools.chain(
                read_jsonl(s3, layout.inventory),
                # Listed but never inventoried: refused or deferred at listing.
                read_jsonl(s3, layout.skipped_part("listing", 0), missing_ok=True),
                read_jsonl(s3, layout.deferred_part("listing", 0), missing_ok=True),
            )
            if isinstance(r.get("source-ref"), str)
        )
    except s3.exceptions.NoSuchKey:
        return [*warnings, f"cannot name the images: {layout.inventory} is missing"]
    count, sample = index.unaccounted(MAX_LISTED_REFS)
    if count:
        warnings.append(
            f"{count} listed images neither in the manifest, skipped nor deferred: "
            + _refs_text(count, sample)
        )
    count, sample = index.unlisted(MAX_LISTED_REFS)
    if count:
        warnings.append(
            f"{count} images in the manifest, skipped or deferred but not listed: {_refs_text(count, sample)}"
        )
    return warnings


def _cap(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_WARNINGS:
        return warnings
    return [*warnings[: MAX_WARNINGS - 1], f"{len(warnings) - MAX_WARNINGS + 1} more warnings not shown"]


def build_run_manifest(
    s3: Any,
    config: RunConfig,
    plan: PlanSummary,
    *,
    images_listed: int,
    now: datetime,
    batches: int = 0,
    model_usage: Mapping[str, Any] | None = None,
    engine_usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`build_manifest` for one run: its task type, labels and strata from the first review wave's
    plan, the audit gate's decision from `review/gate.json`, its labeling jobs (if any) from both
    waves' `jobs.json`."""
    layout = config.layout()
    if plan.wave > 1:
        plan = PlanSummary.from_state(read_json(s3, layout.review_plan))
    second_wave: PlanSummary | None = None
    try:
        second_wave = PlanSummary.from_state(read_json(s3, layout.for_wave(2).review_plan))
    except s3.exceptions.NoSuchKey:
        pass
    jobs: list[str] = []
    for wave in (1, 2):
        try:
            jobs += [job["jobName"] for job in read_json(s3, layout.for_wave(wave).review_jobs)]
        except s3.exceptions.NoSuchKey:
            continue
    try:
        gate = dict(read_json(s3, layout.gate))
    except s3.exceptions.NoSuchKey:
        # Every path of the workflow records one; without it nothing auto-accepted ships unchecked.
        gate = {
            "decision": "defer" if plan.images_auto_accepted else "nothing-to-ship",
            "reason": "no audit gate decision was recorded (review/gate.json)",
        }
    by_priority = dict(plan.by_priority)
    if second_wave is not None and second_wave.images_to_review:
        by_priority["second-wave"] = second_wave.images_to_review
    return build_manifest(
        s3,
        layout,
        task_type=plan.task_type,
        labels=plan.labels,
        images_listed=images_listed,
        run_id=config.runId,
        backend=config.reviewBackend,
        labeling_jobs=jobs,
        job_name=f"{config.jobNamePrefix}-{config.runId}",
        now=now,
        context=RunContext(
            min_confidence=config.minConfidence,
            images_to_review=plan.images_to_review,
            images_audited=plan.images_audited,
            images_auto_accepted=plan.images_auto_accepted,
            images_second_wave=(
                second_wave.images_to_review
                if second_wave is not None
                # A gate that sent them to people records a second wave; without its plan, all went.
                else plan.images_auto_accepted
                if gate["decision"] == "review"
                else 0
            ),
            review_budget=config.reviewBudget,
            max_images_per_run=config.maxImagesPerRun,
            incremental=config.incremental,
            reviewed_by_priority=by_priority,
            order=str(layout.review_order),
            audit_error_target=config.auditErrorTarget,
            box_tolerance=config.boxTolerance,
            gate=gate,
            batches=batches,
            model_usage=dict(model_usage or {}),
            engine_usage=engine_usage,
            reviewer_hourly_usd=config.reviewerHourlyUsd,
        ),
    )
