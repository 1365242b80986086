"""The review budget (review/budget.py): which images people review first, which wait for the next
run, and what the report says the budget bought."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fixtures_aws import IMAGES_BUCKET, make_config, read_json, read_jsonl, write_jsonl
from labeling_loop.finishing.finish import finish_run
from labeling_loop.finishing.report.publish import run_result
from labeling_loop.finishing.settings import FinishSettings, RunTotals
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.jsonl import write_json
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.review.budget import LABEL_SHARE, ReviewQueue, correction_score, share_per_group
from labeling_loop.review.gate import check_audit, plan_second_wave
from labeling_loop.review.selection import AutoAccept, PlanSettings, PlanSummary, audit_key, plan, to_task

SIZE = {"width": 1000, "height": 1000, "depth": 3}
NOW = datetime(2026, 12, 5, tzinfo=UTC)
BOX = {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}
# People's answers: the predicted cat (BOX in pixels) kept, and a dog the model missed
KEPT_CAT = {"label": "cat", "left": 100, "top": 100, "width": 200, "height": 200, "status": "kept"}
ADDED_DOG = {"label": "dog", "left": 600, "top": 600, "width": 100, "height": 100, "status": "added"}


def ref(name: str) -> str:
    return f"s3://{IMAGES_BUCKET}/photos/{name}.jpg"


def record(name: str, *predictions: tuple[str, float]) -> dict[str, Any]:
    """A prediction record: boxes of (label, confidence)."""
    return {
        "source-ref": ref(name),
        "image_size": SIZE,
        "labels": [{"name": label, "confidence": c, "box": BOX} for label, c in predictions],
    }


def planned(
    aws: SimpleNamespace,
    records: list[dict[str, Any]],
    budget: int | None,
    *,
    inventory: list[dict[str, Any]] | None = None,
    auto_accept: float | None = None,
    audit_fraction: float = 0.0,
    audit_min_images: int = 0,
) -> tuple[PlanSummary, list[dict[str, Any]], list[str], list[dict[str, Any]], RunConfig]:
    """Plan the review of `records` (min confidence 50); returns the summary, the order's lines,
    the reviewed refs (tasks.jsonl, in order), the deferral records, and the run's config."""
    config = make_config()
    layout = config.layout()
    write_jsonl(aws.s3, layout.predictions_part(0), records)
    write_jsonl(aws.s3, layout.inventory, inventory or [{"source-ref": r["source-ref"]} for r in records])
    summary = plan(aws.s3, layout, PlanSettings(
        requested_task_type="detection", auto_accept=AutoAccept(auto_accept),
        min_confidence=50.0, audit_fraction=audit_fraction, audit_min_images=audit_min_images,
        audit_salt=config.runId, review_budget=budget,
    ))  # fmt: skip
    order = read_jsonl(aws.s3, layout.review_order)
    tasks = [t["source-ref"] for t in read_jsonl(aws.s3, layout.review_tasks)]
    deferred = read_jsonl(aws.s3, layout.deferred_part("review", 0))
    return summary, order, tasks, deferred, config


# The score ----------------------------------------------------------------------------------------


def test_the_score_is_the_chance_that_people_change_something() -> None:
    # GIVEN an image with two shown boxes (90 and 80) and one below minConfidence 50 (at 30)
    rec = record("a", ("cat", 90.0), ("cat", 80.0), ("dog", 30.0))
    task = to_task(rec, "detection", 50.0)
    # THEN it is 1 - 0.9 x 0.8 x (1 - 0.3): a shown box wrong, or the hidden one a real object
    assert correction_score(task, rec, 50.0) == pytest.approx(1 - 0.9 * 0.8 * 0.7)
    # AND an image with nothing predicted at all scores 0; more, or less sure, predictions score more
    empty = record("b")
    assert correction_score(to_task(empty, "detection", 50.0), empty, 50.0) == 0.0
    one, two = record("c", ("cat", 90.0)), record("d", ("cat", 90.0), ("dog", 90.0))
    assert correction_score(to_task(one, "detection", 50), one, 50) < correction_score(
        to_task(two, "detection", 50), two, 50
    )


def test_a_classification_score_counts_image_labels_only() -> None:
    rec = {
        "source-ref": ref("a"),
        "image_size": SIZE,
        "labels": [
            {"name": "day", "confidence": 95.0},
            {"name": "striped", "confidence": 20.0},
            {"name": "cat", "confidence": 40.0, "box": BOX},  # a box: not part of a classification task
        ],
    }
    task = to_task(rec, "classification", 50.0)
    assert correction_score(task, rec, 50.0) == pytest.approx(1 - 0.95 * 0.8)


# The order, and the budget's cut ---------------------------------------------------------------


def test_without_a_budget_every_image_is_reviewed_most_likely_wrong_first(aws: SimpleNamespace) -> None:
    records = [
        record("sure", ("cat", 99.0)),
        record("unsure", ("cat", 55.0)),
        record("middle", ("cat", 80.0)),
    ]
    summary, order, tasks, deferred, _ = planned(aws, records, None)
    assert tasks == [ref("unsure"), ref("middle"), ref("sure")]
    assert [line["rank"] for line in order] == [1, 2, 3] and all(line["review"] for line in order)
    assert {line["priority"] for line in order} == {"uncertainty"}
    assert deferred == [] and summary.images_deferred == 0 and summary.images_to_review == 3


def test_a_budget_reviews_the_first_of_the_order_and_defers_the_rest(aws: SimpleNamespace) -> None:
    # GIVEN 20 images of one label with confidences 51..70 and a budget of 5
    records = [record(f"{i:02d}", ("cat", 50.0 + i)) for i in range(1, 21)]
    summary, order, tasks, deferred, _ = planned(aws, records, 5)
    # THEN people get 5 images: the label's share (LABEL_SHARE of 5, at least 1) and then the least sure
    assert share_per_group(5, 1) == 1
    assert tasks == [ref(f"{i:02d}") for i in range(1, 6)]
    assert [line["priority"] for line in order[:5]] == ["label-share"] + ["uncertainty"] * 4
    assert order[0]["shareOf"] == "cat"
    # AND the other 15 are deferred over the budget, each with its rank, and counted
    assert [(line["review"], line["rank"]) for line in order[5:]] == [(False, r) for r in range(6, 21)]
    assert summary.images_to_review == 5 and summary.images_deferred == 15
    assert {d["reason"] for d in deferred} == {"over-review-budget"}
    assert {d["source-ref"] for d in deferred} == {ref(f"{i:02d}") for i in range(6, 21)}
    assert deferred[0]["detail"].startswith("over reviewBudget 5 images: rank 6 in review/order.jsonl")
    # AND every line says why and how likely a correction is (1 - c for one box)
    assert order[0]["score"] == pytest.approx(0.49) and order[-1]["score"] == pytest.approx(0.30)


def test_every_label_keeps_a_share_of_the_budget(aws: SimpleNamespace) -> None:
    # GIVEN 90 unsure cats and 10 dogs the model is sure of, and a budget of 20
    cats = [record(f"cat-{i:02d}", ("cat", 55.0 + i * 0.1)) for i in range(90)]
    dogs = [record(f"dog-{i:02d}", ("dog", 95.0 + i * 0.1)) for i in range(10)]
    _, order, tasks, _, _ = planned(aws, cats + dogs, 20)
    # THEN the dogs get their share: LABEL_SHARE of the budget split between the two labels
    share = math.floor(20 * LABEL_SHARE / 2)
    reviewed_dogs = [t for t in tasks if "dog-" in t]
    assert share == 2 and len(reviewed_dogs) == share
    # their least sure first, taken before the cats' uncertainty order (the rarer label goes first)
    assert reviewed_dogs == [ref("dog-00"), ref("dog-01")]
    assert [(line["priority"], line.get("shareOf")) for line in order[:4]] == [
        ("label-share", "dog"), ("label-share", "cat"), ("label-share", "dog"), ("label-share", "cat"),
    ]  # fmt: skip
    # AND without shares the budget would have gone to cats only (every cat is less sure)
    assert len(tasks) == 20 and sum("cat-" in t for t in tasks) == 18


def test_images_without_a_prediction_are_first_in_line_for_their_share(aws: SimpleNamespace) -> None:
    # GIVEN unsure cats, two images where the model saw nothing, one where it saw only a faint box
    cats = [record(f"cat-{i:02d}", ("cat", 60.0)) for i in range(20)]
    nothing = [record("empty-a"), record("empty-b")]
    faint = [record("faint", ("dog", 40.0))]  # below minConfidence 50: reviewers see no prediction
    _, order, tasks, _, _ = planned(aws, cats + nothing + faint, 10)
    # THEN the first share of the budget goes to an image showing no prediction: the faint one first
    # (the model saw something there, perhaps an object people must add), then one it saw nothing on
    assert order[0]["source-ref"] == ref("faint") and order[0]["shareOf"] == "(no prediction)"
    assert order[0]["labels"] == [] and order[0]["score"] == pytest.approx(0.4)
    shown_nothing = [t for t in tasks if "empty-" in t or "faint" in t]
    assert len(shown_nothing) == share_per_group(10, 2) == 1
    # AND images with nothing at all score 0: beyond their share they wait (most are empty scenes)
    assert {line["score"] for line in order if "empty-" in line["source-ref"]} == {0.0}
    assert [line["rank"] for line in order if "empty-" in line["source-ref"]] == [22, 23]


def test_images_an_earlier_run_deferred_go_first_oldest_first(aws: SimpleNamespace) -> None:
    # GIVEN new unsure images, and three a run deferred (two of them a day before the third)
    new = [record(f"new-{i}", ("cat", 55.0)) for i in range(5)]
    old = [record("old-1", ("cat", 99.0)), record("old-2", ("cat", 98.0)), record("old-3", ("cat", 60.0))]
    since = {"old-1": 1_000, "old-2": 1_000, "old-3": 90_000}
    inventory = [{"source-ref": r["source-ref"]} for r in new] + [
        {"source-ref": ref(name), "deferredSince": t} for name, t in since.items()
    ]
    _, order, tasks, _, _ = planned(aws, new + old, 4, inventory=inventory)
    # THEN the waiting images come first, the oldest deferral first (then the least sure), though
    # the new ones are less sure, before even the labels' shares: the backlog clears at the pace
    # the report promised, whatever arrives meanwhile
    assert tasks[:3] == [ref("old-2"), ref("old-1"), ref("old-3")] and "new-" in tasks[3]
    assert [line["priority"] for line in order[:4]] == ["waited", "waited", "waited", "label-share"]
    assert [line.get("deferredSince") for line in order[:3]] == [1_000, 1_000, 90_000]


def test_the_audit_is_always_reviewed_and_counted_in_the_budget(aws: SimpleNamespace) -> None:
    # GIVEN 30 auto-accept candidates (99) with an audit of at least 4, 30 unsure images, budget 10
    sure = [record(f"sure-{i:02d}", ("cat", 99.0)) for i in range(30)]
    unsure = [record(f"unsure-{i:02d}", ("cat", 60.0 + i)) for i in range(30)]
    summary, order, tasks, deferred, _ = planned(aws, sure + unsure, 10, auto_accept=95.0, audit_min_images=4)
    # THEN the 4 audited images come first in the order, then 6 of the unsure ones
    assert summary.images_audited == 4 and summary.images_to_review == 10
    assert [line["priority"] for line in order[:4]] == ["audit"] * 4
    assert all("sure-" in t and "unsure" not in t for t in tasks[:4])
    assert sum("unsure-" in t for t in tasks) == 6
    assert summary.by_priority == {"audit": 4, "label-share": 1, "uncertainty": 5}
    # AND the other 24 unsure images are deferred; the 26 candidates not audited are auto-accepted
    assert len(deferred) == 24 and summary.images_auto_accepted == 26


def test_a_budget_smaller_than_the_audit_fraction_keeps_the_lowest_hashes(aws: SimpleNamespace) -> None:
    # GIVEN 50 candidates, an audit of half of them, and a budget of 10
    sure = [record(f"sure-{i:02d}", ("cat", 99.0)) for i in range(50)]
    summary, order, tasks, _, config = planned(aws, sure, 10, auto_accept=95.0, audit_fraction=0.5)
    # THEN the audit takes the whole budget and no more, the rest of the candidates auto-accepted
    assert summary.images_audited == 10 and summary.images_to_review == 10
    assert summary.images_auto_accepted == 40 and summary.audit_capped > 0
    # AND the plan records how many the budget left out of the audit
    assert summary.to_dict()["auditCappedByBudget"] == summary.audit_capped
    # (the 10 lowest audit hashes: a simple random sample, so the audit's bounds stay exact)
    keys = sorted(audit_key(r["source-ref"], config.runId) for r in sure)
    assert sorted(audit_key(t, config.runId) for t in tasks) == keys[:10]
    assert [line["priority"] for line in order] == ["audit"] * 10


def test_the_order_is_the_same_when_the_step_is_retried(aws: SimpleNamespace) -> None:
    records = [record(f"{i:02d}", ("cat", 70.0)) for i in range(30)]  # all tied: the hash decides
    _, first, _, _, _ = planned(aws, records, 7)
    _, again, _, _, _ = planned(aws, records, 7)
    assert first == again
    assert [line["source-ref"] for line in first] != [r["source-ref"] for r in records]  # not listing order


def test_the_queue_holds_its_images_on_disk() -> None:
    # The order is built in SQLite, not memory: only the share's picks are held
    with ReviewQueue("salt") as queue:
        for i in range(2_000):
            task = {"source-ref": ref(f"{i}"), "taskType": "detection", "predictions": []}
            queue.add(task, (i % 97) / 97)
        placed = list(queue.order(100))
    assert len(placed) == 2_000 and sum(p.review for p in placed) == 100
    assert [p.rank for p in placed] == list(range(1, 2_001))


# Settings -----------------------------------------------------------------------------------------


def test_a_budget_that_cannot_hold_the_audit_is_refused_in_the_first_state() -> None:
    with pytest.raises(InvalidInput) as caught:
        make_config(reviewBudget=30, autoAcceptConfidence=95, auditMinImages=60)
    message = str(caught.value)
    assert (
        message.startswith("reviewBudget: 30 images cannot hold the audit") and "auditMinImages 60" in message
    )
    # without auto-accept there is no audit to hold; "none" is no budget
    assert make_config(reviewBudget=30).reviewBudget == 30
    assert make_config(reviewBudget=30, autoAcceptConfidence=95, auditMinImages=20).reviewBudget == 30
    assert make_config(reviewBudget="none").reviewBudget is None
    assert make_config().reviewBudget is None  # the stack's default: none


def test_the_stack_default_budget_is_a_number_or_none() -> None:
    assert make_config(stack={"ReviewBudget": "250"}).reviewBudget == 250
    assert make_config(stack={"ReviewBudget": "250"}, reviewBudget="none").reviewBudget is None
    with pytest.raises(InvalidInput) as caught:
        make_config(reviewBudget=0)
    assert str(caught.value).startswith("reviewBudget:")


# The second wave ----------------------------------------------------------------------------------


def _gate_held_run(
    aws: SimpleNamespace, budget: int
) -> tuple[RunConfig, PlanSummary, dict[str, Any], list[dict[str, Any]]]:
    """40 candidates (audit 10, every audited answer wrong: the gate holds the rest for people),
    5 unsure images, `budget`; the second wave planned."""
    config = make_config(autoAcceptConfidence=95, auditMinImages=10, reviewBudget=budget)
    layout = config.layout()
    records = [record(f"sure-{i:02d}", ("cat", 99.0 - i * 0.1)) for i in range(40)]
    records += [record(f"unsure-{i}", ("cat", 60.0)) for i in range(5)]
    write_jsonl(aws.s3, layout.predictions_part(0), records)
    write_jsonl(aws.s3, layout.inventory, [{"source-ref": r["source-ref"]} for r in records])
    summary = plan(aws.s3, layout, PlanSettings(
        requested_task_type="detection", extra_labels=("dog",), auto_accept=AutoAccept(95.0),
        min_confidence=50.0, audit_fraction=0.0, audit_min_images=10, audit_salt=config.runId,
        review_budget=budget,
    ))  # fmt: skip
    write_json(aws.s3, layout.review_plan, summary.to_dict())
    answers = []
    for line in read_jsonl(aws.s3, layout.review_tasks):
        boxes = [KEPT_CAT, ADDED_DOG]
        answers.append({"source-ref": line["source-ref"], "taskType": "detection", "image_size": SIZE,
                        "boxes": boxes, "labels": [], "removed": [], "reviewer": "labelstudio:1",
                        "humanReviewed": True})  # fmt: skip
    write_jsonl(aws.s3, layout.reviewed, answers)
    assert check_audit(aws.s3, config, summary)["decision"] == "review"
    second = plan_second_wave(aws.s3, config, summary, region="us-east-1", verification_lambdas=("", ""))
    return config, summary, second, answers


def test_the_second_wave_spends_only_what_the_budget_left(aws: SimpleNamespace) -> None:
    # GIVEN a budget of 20: the first wave sends the 10 audited and the 5 unsure images
    config, first, second, _ = _gate_held_run(aws, 20)
    assert first.images_to_review == 15 and first.images_auto_accepted == 30
    # THEN the gate says how far the budget goes
    reason = read_json(aws.s3, config.layout().gate)["reason"]
    assert reason.endswith("as far as reviewBudget 20 goes: 5 of the 30, the other 25 wait for the next run")
    # AND the second wave reviews 5 of the 30 held images, the least sure first, and defers 25
    wave2 = config.layout().for_wave(2)
    tasks = read_jsonl(aws.s3, wave2.review_tasks)
    assert second["imagesToReview"] == 5 and second["imagesDeferred"] == 25 and len(tasks) == 5
    deferred = read_jsonl(aws.s3, wave2.deferred_part("review", 0))
    assert wave2.deferred_part("review", 0).key.endswith("deferred/review-00000-wave-2.jsonl")
    assert len(deferred) == 25 and {d["reason"] for d in deferred} == {"over-review-budget"}
    assert "held by the audit gate" in deferred[0]["detail"]
    # AND the manifest holds what people reviewed; the held images over the budget wait, counted
    kept = [KEPT_CAT]
    write_jsonl(aws.s3, wave2.reviewed, [
        {"source-ref": t["source-ref"], "taskType": "detection", "image_size": SIZE, "boxes": kept,
         "labels": [], "removed": [], "reviewer": "labelstudio:2", "humanReviewed": True}
        for t in tasks
    ])  # fmt: skip
    report = finish_run(
        aws.s3,
        FinishSettings.from_run(
            aws.s3, config, PlanSummary.from_state(second), RunTotals(images_listed=45), NOW
        ),
    )
    counts = report["counts"]
    assert (
        counts["imagesInManifest"] == 20
        and counts["imagesDeferred"] == 25
        and counts["imagesAutoAccepted"] == 0
    )
    assert report["deferredByReason"] == {"over-review-budget": 25}
    budget = report["budget"]
    assert budget["reviewBudget"] == 20 and budget["sentToPeople"] == 20
    assert budget["reviewedByPriority"]["second-wave"] == 5
    assert report["cost"]["review"]["quantity"] == 20  # Ground Truth charges what was sent, no more
    assert any("deferred to the next run: over reviewBudget 20" in w for w in report["warnings"])


def test_a_spent_budget_leaves_the_second_wave_empty(aws: SimpleNamespace) -> None:
    # GIVEN a budget of 12: the first wave spends it all (10 audited, 2 unsure)
    config, first, second, _ = _gate_held_run(aws, 12)
    assert first.images_to_review == 12 and first.images_deferred == 3
    # THEN the second wave has nothing to review (the definition goes on to the manifest) and
    # all 30 held images wait for the next run with the 3 unsure ones
    assert second["imagesToReview"] == 0 and second["imagesDeferred"] == 30 and second["jobs"] == 0
    report = finish_run(
        aws.s3,
        FinishSettings.from_run(
            aws.s3, config, PlanSummary.from_state(second), RunTotals(images_listed=45), NOW
        ),
    )
    assert report["counts"]["imagesDeferred"] == 33 and report["counts"]["imagesInManifest"] == 12


# What the report says -----------------------------------------------------------------------------


def test_the_report_says_what_the_budget_bought_and_how_long_the_backlog_waits(aws: SimpleNamespace) -> None:
    # GIVEN 40 images of which a budget of 15 is reviewed (people add a missed dog to each)
    records = [record(f"{i:02d}", ("cat", 60.0 + i)) for i in range(40)]
    summary, _, tasks, _, _ = planned(aws, records, 15)
    config = make_config(reviewBudget=15, incremental=True)
    layout = config.layout()
    write_json(aws.s3, layout.review_plan, summary.to_dict())
    answers = [
        {"source-ref": t, "taskType": "detection", "image_size": SIZE, "labels": [], "removed": [],
         "boxes": [KEPT_CAT, ADDED_DOG],
         "reviewer": "labelstudio:1", "humanReviewed": True}
        for t in tasks
    ]  # fmt: skip
    write_jsonl(aws.s3, layout.reviewed, answers)
    write_json(aws.s3, layout.gate, {"decision": "nothing-to-ship", "reason": "", "audit": None})
    report = finish_run(
        aws.s3, FinishSettings.from_run(aws.s3, config, summary, RunTotals(images_listed=40), NOW)
    )
    # THEN the budget section: 15 sent and reviewed, 15 corrections on 15 images, 25 waiting,
    # two more runs at this pace (15 a run)
    budget = report["budget"]
    assert budget["reviewBudget"] == 15 and budget["sentToPeople"] == 15 and budget["imagesReviewed"] == 15
    assert budget["correctionsFound"] == 15 and budget["imagesCorrected"] == 15
    assert budget["correctionsPerReviewedImage"] == 1.0
    assert budget["backlog"] == 25 and budget["pace"] == 15 and budget["runsForBacklog"] == 2
    assert budget["backlogNote"] == "about 2 runs at this run's pace (15 a run), the deferred images first"
    assert budget["order"].endswith("/review/order.jsonl")
    assert report["counts"]["imagesDeferred"] == 25
    # AND the whole-run figures say the deferred images are not in them
    assert (
        "the 25 images deferred over the review budget are not this run's"
        in report["quality"]["wholeRunNote"]
    )
    # AND the execution's output carries the five numbers `show` prints
    assert run_result(layout, report)["budget"] == {
        "reviewBudget": 15, "sentToPeople": 15, "correctionsFound": 15, "backlog": 25, "runsForBacklog": 2,
        "backlogNote": budget["backlogNote"],
    }  # fmt: skip
    stored = read_json(aws.s3, layout.report)
    assert stored["budget"] == budget
    # AND a run that is not incremental promises no pace: nothing remembers its deferrals
    once = finish_run(
        aws.s3,
        FinishSettings.from_run(
            aws.s3, make_config(reviewBudget=15), summary, RunTotals(images_listed=40), NOW
        ),
    )
    assert once["budget"]["runsForBacklog"] is None
    assert once["budget"]["backlogNote"].startswith("this run is not incremental")


def _budget(**overrides: Any) -> dict[str, Any]:
    return {"reviewBudget": 30, "sentToPeople": 30, "audited": 10, "imagesReviewed": 30,
            "correctionsFound": 41, "imagesCorrected": 24, "correctionsPerReviewedImage": 1.3667,
            "backlog": 170, "backlogByReason": {"over-review-budget": 170}, "pace": 20, "runsForBacklog": 9,
            "backlogNote": "about 9 runs at this run's pace (20 a run), the deferred images first",
            "reviewedByPriority": {"audit": 10, "label-share": 4, "uncertainty": 16},
            "order": "s3://out/runs/r/review/order.jsonl", **overrides}  # fmt: skip


def test_the_run_ended_message_and_show_say_the_budget_and_the_backlog() -> None:
    from labeling_loop.lifecycle.notify import run_ended

    from labeling_ops.render import budget_lines

    config = make_config(reviewBudget=30)
    result = {"counts": {"imagesListed": 200, "imagesDeferred": 170}, "report": "s3://out/runs/r/report.json",
              "budget": _budget()}  # fmt: skip
    _, message = run_ended(config, result, None, "us-east-1")
    assert "Review budget 30: 30 images sent to people, 41 corrections found." in message
    assert (
        "Waiting for the next runs: 170 images: about 9 runs at this run's pace (20 a run), "
        "the deferred images first." in message
    )
    assert dict(budget_lines(_budget())) == {
        "review budget": "30 images: 30 sent to people",
        "corrections found": "41",
        "backlog": "170 images wait for the next runs: about 9 runs at this run's pace (20 a run), "
        "the deferred images first",
    }
    # a run without a budget says so
    assert (
        dict(budget_lines(_budget(reviewBudget=None, backlog=0)))["review budget"]
        == "none: 30 sent to people"
    )


def test_report_html_has_the_budget_section() -> None:
    from labeling_loop.finishing.report.html import render

    html, problems = render({"runId": "r", "budget": _budget()}, {})
    assert problems == []
    section = html.split("<h2>Review budget</h2>")[1].split("<h2>")[0]
    assert "Review budget 30 images, the audit included: 30 sent to people (10 of them the audit)" in section
    assert "corrected 41 objects on 24 images" in section
    assert "170 images wait for the next runs" in section and "about 9 runs" in section
    assert "review/order.jsonl" in section and "<td>label-share</td><td>4</td>" in section
