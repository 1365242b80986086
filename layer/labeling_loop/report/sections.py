"""The report's sections beyond counts: quality with intervals (reviewed images and whole run), the
audit of auto-accept and the gate's decision, recommended thresholds, human work, cost and the
images to look at. Computed from RunMeasures (evaluation/measures.py), the gate's record
(review/gate.json) and what the plan and the model control recorded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.evaluation.measures import AUDIT, REVIEW, RunMeasures
from labeling_loop.evaluation.verdict import DEFAULT_BOX_TOLERANCE
from labeling_loop.report.cost import run_cost

# Gate decisions under which the auto-accepted images go into the manifest (evaluation/audit.py).
SHIPPING_DECISIONS = frozenset({"ship", "nothing-to-ship"})


@dataclass(frozen=True)
class RunContext:
    """What build_manifest needs to know about the run beyond its reviewed records."""

    min_confidence: float = 0.0
    images_to_review: int = 0  # audit images included (first wave)
    images_audited: int = 0
    images_auto_accepted: int = 0  # the candidates the plan did not audit
    audit_error_target: float = 0.05
    box_tolerance: float = DEFAULT_BOX_TOLERANCE
    gate: Mapping[str, Any] = field(default_factory=lambda: {"decision": "nothing-to-ship", "reason": ""})
    batches: int = 0
    model_usage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gate_decision(self) -> str:
        return str(self.gate.get("decision", "nothing-to-ship"))

    @property
    def gate_reason(self) -> str:
        return str(self.gate.get("reason", ""))


def _audit_section(measures: RunMeasures, context: RunContext) -> dict[str, Any] | None:
    audit = dict(context.gate.get("audit") or {})
    if not audit:
        return None
    held = measures.held_tally
    if held.reviewed:
        # The second wave reviewed what the audit could only estimate: how right was it?
        low, high = audit.get("wrongAutoAccepted95") or [0, audit.get("autoAcceptedImages", 0)]
        audit["secondWave"] = {
            "reviewed": held.reviewed,
            "wrong": held.wrong,
            "predicted95": [low, high],
            "withinPrediction": bool(
                held.reviewed == audit.get("autoAcceptedImages") and low <= held.wrong <= high
            ),
        }
    return audit


def _warnings(audit: Mapping[str, Any] | None, context: RunContext) -> list[str]:
    decision = context.gate_decision
    if audit is None or decision in SHIPPING_DECISIONS:
        return []
    held = int(audit.get("autoAcceptedImages") or 0)
    if decision == "review":
        return [
            f"audit gate: {held} auto-accepted images were reviewed by people instead ({context.gate_reason})"
        ]
    return [f"audit gate: {held} auto-accepted images deferred to the next run ({context.gate_reason})"]


def report_sections(
    measures: RunMeasures, context: RunContext, *, backend: str, images_in_manifest: int
) -> tuple[dict[str, Any], list[str]]:
    population = {
        REVIEW: context.images_to_review - context.images_audited,
        AUDIT: context.images_audited + context.images_auto_accepted,
    }
    audit = _audit_section(measures, context)
    shipped = context.images_auto_accepted if context.gate_decision == "ship" else 0
    wrong_shipped = (audit or {}).get("wrongAutoAccepted95") if shipped else None
    sections = {
        "quality": measures.quality(population),
        "audit": audit,
        "gate": {"decision": context.gate_decision, "reason": context.gate_reason},
        "thresholds": measures.recommendations(population, context.audit_error_target),
        "confidenceHistograms": measures.confidence_histograms(),
        "work": measures.work_done(shipped),
        "cost": run_cost(
            model_usage=context.model_usage,
            backend=backend,
            # Sent to people (Ground Truth charges per object sent), the second wave included.
            images_reviewed_by_people=context.images_to_review
            + (context.images_auto_accepted if context.gate_decision == "review" else 0),
            batches=context.batches,
            images_labeled=images_in_manifest,
            wrong_auto_accepted=wrong_shipped,
            reviewer_seconds=measures.review_seconds if measures.timed_images else None,
        ),
        "disagreements": measures.disagreements(),
    }
    return sections, _warnings(audit, context)
