"""The audit of auto-accept, and the gate that decides whether auto-accepted images may ship.

The plan sends a simple random sample of the auto-accept candidates to people anyway (the audit:
review/selection.py draws it by a hash of each image salted with the run id, so it is independent of the
predictions and differs from run to run). People's answers say, image by image, whether what
auto-accept would have written was wrong (`verdict`). From x wrong in the m answered audit images
of the N candidates:

- the candidates' error rate with its exact two-sided 95 % interval, hypergeometric because the
  candidates are a finite population sampled without replacement (intervals.defects_interval);
- the wrong images among those shipped unseen (the N - n candidates not audited): between
  D_low - x and D_high - x, a 95 % predictive interval;
- the gate: the shipped images' error rate, by its one-sided 95 % upper bound (D_upper - x) /
  (N - n), must be within `auditErrorTarget`. When it is not, the run does not ship them unchecked:
  per `auditGateAction` they go to people in a second review wave of the same run (`review`) or wait
  for the next run (`defer`, deferral.py).

Audit images nobody answered leave the sample (m < n): the bound then assumes they are missing at
random, and the report says how many were lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from labeling_loop.evaluation.intervals import audit_size_needed, defects_interval, defects_upper
from labeling_loop.evaluation.verdict import Verdict

GATE_ALPHA = 0.05  # the gate decides on a one-sided 95 % upper bound
GateAction = Literal["review", "defer"]
Decision = Literal["ship", "review", "defer", "nothing-to-ship"]


@dataclass
class AuditTally:
    """What people found in the audit images, image by image."""

    reviewed: int = 0
    wrong: int = 0
    out_of_tolerance: int = 0
    wrong_label: int = 0
    extra: int = 0
    missed: int = 0

    def add(self, verdict: Verdict) -> None:
        self.reviewed += 1
        self.wrong += int(verdict.wrong)
        self.out_of_tolerance += verdict.out_of_tolerance
        self.wrong_label += verdict.wrong_label
        self.extra += verdict.extra
        self.missed += verdict.missed


def audit_figures(
    tally: AuditTally, *, candidates: int, audited: int, target: float, action: GateAction
) -> dict[str, Any] | None:
    """The audit section of the report, with the gate's decision; None when nothing was a
    candidate for auto-accept."""
    if candidates <= 0:
        return None
    shipped = candidates - audited  # auto-accepted images nobody looks at
    m, x = tally.reviewed, tally.wrong
    frame = candidates - (audited - m)  # the unanswered audit images leave the sample
    figures: dict[str, Any] = {
        "candidates": candidates,
        "audited": audited,
        "reviewed": m,
        "unanswered": audited - m,
        "errors": x,
        "errorKinds": {
            "outOfTolerance": tally.out_of_tolerance,
            "wrongLabel": tally.wrong_label,
            "extra": tally.extra,
            "missed": tally.missed,
        },
        "target": target,
        "autoAcceptedImages": shipped,
    }
    if m == 0:
        figures.update(errorRate=None, interval95=[0.0, 1.0], wrongAutoAccepted95=[0, shipped])
        upper = 1.0 if shipped else 0.0
    else:
        low, high = defects_interval(x, m, frame)
        upper_defects = defects_upper(x, m, frame, GATE_ALPHA)
        upper = (upper_defects - x) / shipped if shipped else 0.0
        figures.update(
            errorRate=round(x / m, 4),
            interval95=[round(low / frame, 4), round(high / frame, 4)],
            wrongInCandidates95=[low, high],
            wrongAutoAccepted95=[max(0, low - x), min(shipped, high - x)],
        )
    figures["shippedErrorUpperBound"] = round(min(1.0, upper), 4)
    figures["gate"] = _gate(figures, shipped=shipped, upper=upper, target=target, action=action, frame=frame)
    return figures


def _gate(
    figures: dict[str, Any], *, shipped: int, upper: float, target: float, action: GateAction, frame: int
) -> dict[str, Any]:
    if shipped <= 0:
        return {
            "decision": "nothing-to-ship",
            "reason": "every auto-accept candidate was audited: people reviewed them all",
        }
    if figures["reviewed"] and upper <= target:
        return {
            "decision": "ship",
            "reason": (
                f"the {shipped} auto-accepted images are at most {upper:.1%} wrong (95 % upper bound), "
                f"within auditErrorTarget {target:g}"
            ),
        }
    needed = audit_size_needed(target, frame, GATE_ALPHA)
    found = (
        "no audit image was answered"
        if not figures["reviewed"]
        else f"{figures['errors']} of {figures['reviewed']} audit images were wrong"
    )
    why = (
        f"{found}: the {shipped} auto-accepted images may be up to {min(upper, 1.0):.1%} wrong "
        f"(95 % upper bound), above auditErrorTarget {target:g}"
    )
    if needed is not None and needed < frame:
        why += (
            f"; an audit of at least {needed} of the {frame} candidates could vouch for them "
            "if it found none wrong"
        )
    outcome = (
        "they go to people in a second review wave"
        if action == "review"
        else "they are held for the next run, not shipped"
    )
    return {"decision": action, "reason": f"{why}; {outcome}"}
