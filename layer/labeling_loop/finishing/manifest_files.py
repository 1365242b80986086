"""The manifest and the files beside it: output.manifest from people's answers and the
auto-accepted images the audit gate let ship, skipped.jsonl merging every stage's skip records,
deferred.jsonl every deferral, each image once (the spill index says where each one went)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from labeling_loop.evaluation.measures import AUDIT, REVIEW
from labeling_loop.finishing.coco import CocoWriter
from labeling_loop.finishing.manifest.lines import build_line, skip_record
from labeling_loop.finishing.manifest.rules import (
    REASON_INVALID,
    REASON_NO_LABEL,
    ManifestValidator,
    errors_only,
    inspect_line,
)
from labeling_loop.finishing.manifest.spill_index import DEFERRED, IN_MANIFEST, SKIPPED, SpillIndex
from labeling_loop.finishing.model_quality import add_quality
from labeling_loop.finishing.report.sections import SHIPPING_DECISIONS
from labeling_loop.finishing.settings import FinishSettings
from labeling_loop.finishing.tally import RunTally
from labeling_loop.kernel.deferral import defer_record
from labeling_loop.kernel.jsonl import JsonlWriter, dumps, read_jsonl, read_jsonl_prefix


def write_manifest(
    s3: Any, settings: FinishSettings, index: SpillIndex, tally: RunTally, coco: CocoWriter | None
) -> list[str]:
    """Write output.manifest and skipped.jsonl, then deferred.jsonl; hand each manifest line to
    `coco` as it is written. Return the manifest's warnings.

    Raises ManifestValidationError for a terminal manifest error (nothing is written then)."""
    layout = settings.layout
    index.load_audited((r["source-ref"],) for r in read_jsonl(s3, layout.audit, missing_ok=True))
    if settings.context.gate_decision == "defer":
        # The audit could not vouch for the auto-accepted images: they wait for the next run.
        _hold_auto_accepted(s3, settings)
    with JsonlWriter(s3, layout.manifest) as manifest, JsonlWriter(s3, layout.skipped) as skipped:
        answers = _ManifestPass(s3, settings, index, tally, _Outputs(manifest, skipped, coco))
        answers.add_answers()
        warnings = answers.validator.finish()
        answers.merge_skips()
    _write_deferred(s3, settings, index, tally)
    return warnings


def _hold_auto_accepted(s3: Any, settings: FinishSettings) -> None:
    """The auto-accepted images as deferral records (`deferred/manifest-00000.jsonl`)."""
    layout = settings.layout
    with JsonlWriter(s3, layout.deferred_part("manifest", 0)) as held:
        held.write_all(
            defer_record(str(r["source-ref"]), "manifest", "held-by-audit-gate", settings.context.gate_reason)
            for r in read_jsonl(s3, layout.auto_accepted, missing_ok=True)
        )


def _write_deferred(s3: Any, settings: FinishSettings, index: SpillIndex, tally: RunTally) -> None:
    """Deferred images (every `deferred/*.jsonl`): put off to the next run, once per image."""
    layout = settings.layout
    with JsonlWriter(s3, layout.deferred) as deferred:
        for record in read_jsonl_prefix(s3, layout.deferred_prefix):
            ref = record.get("source-ref")
            if not isinstance(ref, str):
                tally.note("deferral records without source-ref ignored")
                continue
            if not index.claim(ref, DEFERRED):
                tally.note("deferral records of images already in the manifest, skipped or deferred ignored")
                continue
            deferred.write(record)
            tally.deferred(record)


class _Built(NamedTuple):
    """What became of one answer: a manifest line (and its labels) or a skip record, and the
    fixes made."""

    line: dict[str, Any] | None
    skip: dict[str, Any] | None
    fixes: Mapping[str, int]
    labels: set[str]


@dataclass(frozen=True)
class _Outputs:
    manifest: JsonlWriter
    skipped: JsonlWriter
    coco: CocoWriter | None


class _ManifestPass:
    """One pass over people's answers and the auto-accepted images, then the skip records."""

    def __init__(
        self, s3: Any, settings: FinishSettings, index: SpillIndex, tally: RunTally, outputs: _Outputs
    ) -> None:
        self.s3, self.settings, self.index, self.tally, self.out = s3, settings, index, tally, outputs
        self.validator = ManifestValidator(settings.class_map.names)

    def add_answers(self) -> None:
        """People's answers first (both review waves): if an image is both reviewed and
        auto-accepted, the review wins. Auto-accepted images ship only when the audit gate let them."""
        layout = self.settings.layout
        second_wave = layout.for_wave(2).reviewed
        sources = [layout.reviewed, second_wave]
        if self.settings.context.gate_decision in SHIPPING_DECISIONS:
            sources.append(layout.auto_accepted)
        for source in sources:
            for record in read_jsonl(self.s3, source, missing_ok=True):
                self._add_answer(record, second_wave=source == second_wave)

    def _add_answer(self, record: Mapping[str, Any], *, second_wave: bool) -> None:
        task_type = self.settings.task_type
        ref = record.get("source-ref")
        if not isinstance(ref, str):
            self.tally.note("records without source-ref ignored")
            return
        if record.get("taskType", task_type) != task_type:
            self.tally.note(f"records with a taskType other than {task_type} (built as {task_type})")
        built = self._line(record, ref)
        line, skip = built.line, built.skip
        if not self.index.claim(ref, IN_MANIFEST if line is not None else SKIPPED):
            self.tally.note("duplicate reviewed records ignored (first one kept)")
            return
        human = bool(record.get("humanReviewed"))
        self.tally.add_fixes(built.fixes)
        if human:
            self.tally.counts.add("imagesReviewed")
        if line is not None or (skip is not None and skip.get("reason") == REASON_NO_LABEL):
            # The figures count the answers the run can use: a manifest line, or people's "no
            # label applies" (which no manifest line can hold). An answer it cannot use (10,000
            # boxes, a box off the image) counts in no figure.
            self._measure(record, ref, human=human, second_wave=second_wave)
        if line is not None:
            self._write_line(line, ref, built.labels, human=human)
        elif skip is not None:
            self._write_skip(skip)

    def _line(self, record: Mapping[str, Any], ref: str) -> _Built:
        settings = self.settings
        result = build_line(
            record,
            settings.class_map,
            task_type=settings.task_type,
            job_name=settings.job_name,
            creation_date=settings.creation_date,
        )
        if result.line is None:
            return _Built(None, result.skip, result.fixes, set())
        found, labels = inspect_line(result.line)
        issues = errors_only(found)
        if issues:
            # A builder bug, not a reviewer's: keep the run going, say which rule broke.
            codes = ", ".join(sorted({i.code for i in issues}))
            return _Built(None, skip_record(ref, REASON_INVALID, f"line breaks {codes}"), result.fixes, set())
        return _Built(result.line, result.skip, result.fixes, labels)

    def _measure(self, record: Mapping[str, Any], ref: str, *, human: bool, second_wave: bool) -> None:
        tally = self.tally
        tally.counts.add_review_statuses(record, self.settings.task_type)
        if not human:
            return
        prediction = add_quality(self.s3, self.settings, self.index, tally.quality, record)
        audited = self.index.is_audited(ref)
        if second_wave:  # an auto-accept candidate the gate sent to people
            tally.measures.add(ref, record, prediction, stratum=AUDIT, held=True)
        else:
            stratum = AUDIT if audited else REVIEW
            tally.measures.add(ref, record, prediction, stratum=stratum, audited=audited)

    def _write_line(self, line: dict[str, Any], ref: str, labels: set[str], *, human: bool) -> None:
        self.validator.count(ref, labels, len(dumps(line).encode("utf-8")) + 1)
        self.out.manifest.write(line)
        if self.out.coco is not None:
            self.out.coco.add(line)
        self.tally.counts.add("imagesInManifest")
        if not human:
            self.tally.counts.add("imagesAutoAccepted")

    def _write_skip(self, record: Mapping[str, Any]) -> None:
        self.out.skipped.write(dict(record))
        self.tally.skipped(record)

    def merge_skips(self) -> None:
        """Skip records of earlier stages (every `skipped/*.jsonl`), merged once per image."""
        for record in read_jsonl_prefix(self.s3, self.settings.layout.skipped_prefix):
            ref = record.get("source-ref")
            if not isinstance(ref, str):
                self.tally.note("skip records without source-ref ignored")
                continue
            if not self.index.claim(ref, SKIPPED):
                if self.index.kind(ref) == IN_MANIFEST:
                    self.tally.note("skip records of images that are in the manifest ignored")
                else:
                    self.tally.note("duplicate skip records ignored")
                continue
            self._write_skip(record)
