"""The audit gate between review and manifest: what people found in the audit decides whether the
auto-accepted images ship, go to people in a second wave, or wait for the next run."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from fixtures_aws import IMAGES_BUCKET, make_config, read_json, read_jsonl, write_jsonl
from labeling_loop.evaluation.audit import AuditTally, audit_figures
from labeling_loop.evaluation.verdict import Verdict
from labeling_loop.finishing.finish import finish_run
from labeling_loop.finishing.settings import FinishSettings, RunTotals
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.review.gate import check_audit, plan_second_wave
from labeling_loop.review.selection import AutoAccept, PlanSettings, PlanSummary, plan

SIZE = {"width": 1000, "height": 1000, "depth": 3}
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def ref(i: int) -> str:
    return f"s3://{IMAGES_BUCKET}/photos/{i:04d}.jpg"


def prediction(i: int, confidence: float) -> dict[str, Any]:
    return {
        "source-ref": ref(i),
        "image_size": SIZE,
        "labels": [
            {
                "name": "cat",
                "confidence": confidence,
                "box": {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2},
            }
        ],
    }


def answer(i: int, wrong: bool) -> dict[str, Any]:
    """People's answer: the predicted cat as it was, plus a missed dog when `wrong`."""
    boxes = [{"label": "cat", "left": 100, "top": 100, "width": 200, "height": 200, "status": "kept"}]
    if wrong:
        boxes.append(
            {"label": "dog", "left": 600, "top": 600, "width": 100, "height": 100, "status": "added"}
        )
    return {"source-ref": ref(i), "taskType": "detection", "image_size": SIZE, "boxes": boxes, "labels": [],
            "removed": [], "reviewer": "labelstudio:1", "humanReviewed": True}  # fmt: skip


def planned_run(
    aws: SimpleNamespace, images: int, wrong_every: int, **settings: Any
) -> tuple[RunConfig, PlanSummary]:
    """`images` confident predictions, all auto-accept candidates, reviewed audit answers wrong
    for every `wrong_every`-th image."""
    config = make_config(autoAcceptConfidence=90, **settings)
    layout = config.layout()
    write_jsonl(aws.s3, layout.predictions_part(0), [prediction(i, 97.0) for i in range(images)])
    write_jsonl(aws.s3, layout.inventory, [{"source-ref": ref(i)} for i in range(images)])
    summary = plan(aws.s3, layout, PlanSettings(
        requested_task_type="detection", extra_labels=("dog",),
        auto_accept=AutoAccept(90.0), min_confidence=50.0, audit_fraction=config.auditFraction,
        audit_min_images=config.auditMinImages, audit_salt=config.runId,
    ))  # fmt: skip
    write_json(aws.s3, layout.review_plan, summary.to_dict())  # as Plan Review records it
    audited = [int(r["source-ref"][-8:-4]) for r in read_jsonl(aws.s3, layout.audit)]
    write_jsonl(aws.s3, layout.reviewed, [answer(i, i % wrong_every == 0) for i in audited])
    return config, summary


def test_an_audit_that_vouches_for_the_auto_accepted_images_lets_them_ship(aws: SimpleNamespace) -> None:
    # GIVEN 2,000 candidates, 200 audited (10 %), none found wrong
    config, summary = planned_run(aws, 2000, wrong_every=10**9, auditFraction=0.1)
    # WHEN the gate checks the audit
    gate = check_audit(aws.s3, config, summary)
    # THEN the auto-accepted images ship: their error rate is bounded under the target
    assert gate["decision"] == "ship" and gate["autoAccepted"] == summary.images_auto_accepted
    assert gate["shippedErrorUpperBound"] <= config.auditErrorTarget
    stored = read_json(aws.s3, config.layout().gate)
    assert stored["audit"]["errors"] == 0 and stored["audit"]["reviewed"] == summary.images_audited
    # AND the manifest holds every image
    report = finish_run(
        aws.s3, FinishSettings.from_run(aws.s3, config, summary, RunTotals(images_listed=2000), NOW)
    )
    assert report["counts"]["imagesInManifest"] == 2000 and report["counts"]["imagesAutoAccepted"] > 0


def test_an_audit_that_finds_too_many_wrong_images_holds_them_back(aws: SimpleNamespace) -> None:
    # GIVEN an audit finding every 5th image wrong (a missed object), and the `defer` action
    config, summary = planned_run(aws, 400, wrong_every=5, auditGateAction="defer")
    gate = check_audit(aws.s3, config, summary)
    # THEN the gate defers them, saying why
    assert gate["decision"] == "defer"
    reason = read_json(aws.s3, config.layout().gate)["reason"]
    assert "above auditErrorTarget" in reason and "held for the next run" in reason
    # AND the manifest holds only what people reviewed; the rest is deferred, counted and listed
    report = finish_run(
        aws.s3, FinishSettings.from_run(aws.s3, config, summary, RunTotals(images_listed=400), NOW)
    )
    counts = report["counts"]
    assert counts["imagesAutoAccepted"] == 0
    assert counts["imagesDeferred"] == summary.images_auto_accepted
    assert counts["imagesInManifest"] + counts["imagesDeferred"] == 400
    assert report["deferredByReason"] == {"held-by-audit-gate": summary.images_auto_accepted}
    assert any(w.startswith("audit gate:") for w in report["warnings"])
    assert report["gate"]["decision"] == "defer"


def test_the_review_action_plans_a_second_wave_of_the_held_images(aws: SimpleNamespace) -> None:
    config, summary = planned_run(aws, 400, wrong_every=5)
    assert check_audit(aws.s3, config, summary)["decision"] == "review"
    # WHEN the second wave is planned
    second = plan_second_wave(aws.s3, config, summary, region="us-east-1", verification_lambdas=("", ""))
    # THEN it reviews exactly the auto-accepted images, in wave 2's files
    wave2 = config.layout().for_wave(2)
    tasks = read_jsonl(aws.s3, wave2.review_tasks)
    held = {r["source-ref"] for r in read_jsonl(aws.s3, config.layout().auto_accepted)}
    assert {t["source-ref"] for t in tasks} == held and second["imagesToReview"] == len(held)
    assert second["wave"] == 2 and second["jobsKey"] == wave2.review_jobs.key
    # AND after people answer them (every 5th wrong), the manifest holds all, none auto-accepted,
    # and the report compares what the audit predicted with what the second wave found
    write_jsonl(aws.s3, wave2.reviewed, [answer(int(r[-8:-4]), int(r[-8:-4]) % 5 == 0) for r in sorted(held)])
    again = check_audit(aws.s3, config, PlanSummary.from_state(second))
    assert again["decision"] == "review"  # the stored decision: the wave is done, nothing re-planned
    report = finish_run(
        aws.s3,
        FinishSettings.from_run(
            aws.s3, config, PlanSummary.from_state(second), RunTotals(images_listed=400), NOW
        ),
    )
    assert report["counts"]["imagesInManifest"] == 400 and report["counts"]["imagesAutoAccepted"] == 0
    found = report["audit"]["secondWave"]
    assert found["reviewed"] == len(held) and found["wrong"] == sum(int(r[-8:-4]) % 5 == 0 for r in held)
    assert found["withinPrediction"] is True
    # the held images are a census of the audit stratum now: whole-run figures are exact
    assert report["quality"]["strata"]["audit"]["reviewed"] == 400


def test_without_an_audit_auto_accepted_images_never_ship_unchecked() -> None:
    figures = audit_figures(AuditTally(), candidates=50, audited=0, target=0.05, action="review")
    assert figures is not None and figures["gate"]["decision"] == "review"
    assert "no audit image was answered" in figures["gate"]["reason"]


def test_a_fully_audited_stratum_has_nothing_to_ship() -> None:
    tally = AuditTally()
    for _ in range(10):
        tally.add(Verdict(kept=1))
    figures = audit_figures(tally, candidates=10, audited=10, target=0.05, action="review")
    assert figures is not None and figures["gate"]["decision"] == "nothing-to-ship"
