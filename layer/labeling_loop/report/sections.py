"""The report's sections beyond counts: quality per label (reviewed images and whole run), the
auto-accept audit, recommended thresholds, human work, cost and the images to look at. Computed
from RunMeasures (manifest/measures.py) and what the plan and the model control recorded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labeling_loop.manifest.measures import AUDIT, REVIEW, RunMeasures
from labeling_loop.report.cost import run_cost


@dataclass(frozen=True)
class RunContext:
    """What build_manifest needs to know about the run beyond its reviewed records."""

    min_confidence: float = 0.0
    images_to_review: int = 0  # audit images included
    images_audited: int = 0
    images_auto_accepted: int = 0
    audit_error_target: float = 0.05
    precision_target: float = 0.98
    batches: int = 0
    model_usage: Mapping[str, Any] = field(default_factory=dict)


def report_sections(
    measures: RunMeasures, context: RunContext, *, backend: str, images_in_manifest: int
) -> tuple[dict[str, Any], list[str]]:
    population = {
        REVIEW: context.images_to_review - context.images_audited,
        AUDIT: context.images_audited + context.images_auto_accepted,
    }
    warnings: list[str] = []
    audit = measures.audit(
        population[AUDIT] if context.images_audited or context.images_auto_accepted else 0,
        context.images_audited,
        context.audit_error_target,
    )
    if audit is not None:
        low, high = audit["interval95"]
        if not audit["reviewed"]:
            warnings.append(
                f"auto-accept not audited: {audit['autoAcceptedImages']} images went into the manifest "
                "unchecked (auditFraction 0, or no audited image was answered)"
            )
        elif not audit["meetsTarget"]:
            warnings.append(
                f"auto-accept error rate {audit['errorRate']:.3f} (95 % interval {low:.3f}-{high:.3f}) may "
                f"exceed auditErrorTarget {context.audit_error_target:g}: raise autoAcceptConfidence or use "
                "the recommended per-label thresholds"
            )
    quality = measures.quality(population)
    sections = {
        "quality": quality,
        "audit": audit,
        "thresholds": measures.recommendations(population, context.precision_target),
        "work": measures.work_saved(context.images_auto_accepted),
        "cost": run_cost(
            model_usage=context.model_usage,
            backend=backend,
            images_reviewed_by_people=context.images_to_review,
            batches=context.batches,
            images_labeled=images_in_manifest,
        ),
        "disagreements": measures.disagreements(),
    }
    return sections, warnings
