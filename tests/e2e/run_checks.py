"""Assertions the e2e scenarios share: the endings a user wants whatever happened on the way."""

from __future__ import annotations

from collections import Counter

from localcloud.runner import LocalRunResult


def assert_model_not_left_running(result: LocalRunResult) -> None:
    """A run that started the model stops it, on every path (STOPPING is accepted: the stop is in
    flight and billing has ended on the emulator's meter)."""
    if result.model_meter["start_calls"]:
        assert result.summary["model_status_at_end"] in ("STOPPED", "STOPPING", "FAILED"), result.summary
        intervals = result.model_meter["intervals"]
        assert intervals and all(end is not None for _, end in intervals), intervals


def assert_no_job_created_twice(cloud_jobs: list[str]) -> None:
    duplicates = [name for name, n in Counter(cloud_jobs).items() if n > 1]
    assert not duplicates, f"labeling jobs created twice: {duplicates}"


def assert_every_image_accounted_for(result: LocalRunResult, images: int) -> None:
    # Listed: handed to inference (inventory.jsonl) or skipped by the listing itself.
    listed = [r["source-ref"] for r in result.inventory] + [
        r["source-ref"] for r in result.skipped if r.get("stage") == "listing"
    ]
    listed += [r["source-ref"] for r in result.deferred if r.get("stage") == "listing"]
    in_manifest = [line["source-ref"] for line in result.manifest]
    skipped = [r["source-ref"] for r in result.skipped]
    deferred = [r["source-ref"] for r in result.deferred]
    assert len(set(listed)) == len(listed) == images
    assert len(set(in_manifest)) == len(in_manifest), "an image is twice in the manifest"
    assert len(set(skipped)) == len(skipped), "an image is twice in skipped.jsonl"
    assert len(set(deferred)) == len(deferred), "an image is twice in deferred.jsonl"
    assert set(in_manifest) | set(skipped) | set(deferred) == set(listed), (
        "every listed image ends in the manifest, skipped.jsonl or deferred.jsonl"
    )
    assert not set(in_manifest) & set(skipped), "no image is both labeled and skipped"
    assert not (set(in_manifest) | set(skipped)) & set(deferred), "no deferred image is labeled or skipped"
    counts = result.report["counts"]
    ended = counts["imagesInManifest"] + counts["imagesSkipped"] + counts["imagesDeferred"]
    assert counts["imagesListed"] == ended == images
    assert counts["imagesInManifest"] == len(in_manifest) and counts["imagesSkipped"] == len(skipped)
    assert counts["imagesDeferred"] == len(deferred)


def assert_failed_clearly(result: LocalRunResult, error: str, *cause_mentions: str) -> None:
    summary = result.summary
    assert summary["status"] == "FAILED", summary
    assert summary["error"] == error, (summary["error"], summary["cause"])
    for text in cause_mentions:
        assert text in (summary["cause"] or ""), (text, summary["cause"])
    states = entered_states(result)
    assert "Clean Up After Failure" in states and states[-1] == "Run Failed", states


def entered_states(result: LocalRunResult) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e]
