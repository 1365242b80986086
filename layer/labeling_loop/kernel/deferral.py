"""Deferral: "not now" is a state, not a loss.

An image a run cannot or should not finish now is *deferred*: it is listed with its reason in the
run's `deferred.jsonl`, counted (`imagesListed = imagesInManifest + imagesSkipped + imagesDeferred`)
and, in incremental runs, its claim becomes `deferred` in the run-state table, so the next run takes
it again, before the images nobody has seen yet (`inference/claims.py`). One mechanism for every
reason the workflow has:

- `over-manifest-limit`: more images than one Custom Labels manifest may hold (decided at listing,
  before any work is spent on them);
- `over-review-budget`: the run's review budget was spent on images more likely to need a
  correction (decided when the review is planned);
- `held-by-audit-gate`: auto-accepted images whose audit could not show their error within
  `auditErrorTarget`, held back instead of shipped unchecked (decided after the review).

A step writes its records to `deferred/<stage>-<part>.jsonl`; Build Manifest merges them into
`deferred.jsonl`, one line per image (docs/data-contracts.md).
"""

from __future__ import annotations

from typing import Any, Literal

DeferReason = Literal["over-manifest-limit", "over-review-budget", "held-by-audit-gate"]
DEFER_REASONS: tuple[DeferReason, ...] = ("over-manifest-limit", "over-review-budget", "held-by-audit-gate")
DeferStage = Literal["listing", "review", "manifest"]

# What each reason tells a person (report, notification, CLI).
REASON_TEXT: dict[str, str] = {
    "over-manifest-limit": "over the manifest line limit: the next run takes them",
    "over-review-budget": "over the review budget: the next run takes them first",
    "held-by-audit-gate": "auto-accepted but held back by the audit gate: the next run reviews them",
}


def defer_record(source_ref: str, stage: DeferStage, reason: DeferReason, detail: str) -> dict[str, Any]:
    """One line of `deferred/*.jsonl` and `deferred.jsonl`."""
    if reason not in DEFER_REASONS:
        raise ValueError(f"unknown deferral reason {reason!r}")
    return {"source-ref": source_ref, "stage": stage, "reason": reason, "detail": detail}
