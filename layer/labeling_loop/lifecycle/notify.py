"""Messages to the stack's SNS topic (optional: no topic, nothing sent): a review is waiting, the
run ended, the run failed. Plain text, for an email subscription; the subject within SNS's 100
characters. Each message names the run and where to look; none lists the run's images."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from labeling_loop.kernel.jsonl import read_json
from labeling_loop.kernel.run_config import RunConfig
from labeling_loop.kernel.s3_uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_sns import SNSClient

MAX_SUBJECT = 100  # SNS Publish: Subject up to 100 characters


def console_url(uri: str, region: str) -> str:
    """The S3 console page of an object, where Open shows it (report.html renders there)."""
    location = S3Uri.parse(uri)
    return (
        f"https://s3.console.aws.amazon.com/s3/object/{location.bucket}?region={region}&prefix={location.key}"
    )


def _read(s3: S3Client, uri: S3Uri) -> Any:
    try:
        return read_json(s3, uri)
    except s3.exceptions.NoSuchKey:
        return None


def review_waiting(
    s3: S3Client, config: RunConfig, plan: Mapping[str, Any], now: datetime
) -> tuple[str, str]:
    wave = int(plan.get("wave", 1))
    layout = config.layout().for_wave(wave)
    deadline = (now + timedelta(hours=config.reviewDeadlineHours)).astimezone(UTC)
    images = int(plan.get("imagesToReview", 0))
    second = (
        " A second wave: the audit could not vouch for the auto-accepted images, so people check them."
        if wave == 2
        else ""
    )
    lines = [
        f"Run {config.runId}: {images} images wait for review ({plan.get('taskType')}).{second}",
        f"Review deadline: {deadline:%Y-%m-%d %H:%M} UTC "
        f"(reviewDeadlineHours {config.reviewDeadlineHours:g}).",
    ]
    recorded = _read(s3, layout.review_plan) or {}
    if recorded.get("reviewBudget") is not None:
        lines.append(
            f"Review budget {recorded['reviewBudget']}: the images most likely to need a correction come "
            f"first; {recorded.get('imagesDeferred', 0)} more wait for the next run."
        )
    lines += config.backend.where_to_review(lambda uri: _read(s3, uri), layout)
    return _subject(f"Review waiting: {images} images, run {config.runId}"), "\n".join(lines)


def run_ended(
    config: RunConfig, result: Mapping[str, Any], training: Mapping[str, Any] | None, region: str
) -> tuple[str, str]:
    counts = result.get("counts") or {}
    quality = result.get("modelQuality") or {}
    interval = result.get("autoAcceptErrorInterval")
    lines = [
        f"Run {config.runId} ended.",
        f"Images: {counts.get('imagesListed', 0)} listed, "
        f"{counts.get('imagesInManifest', 0)} in the manifest "
        f"({counts.get('imagesAutoAccepted', 0)} auto-accepted, {counts.get('imagesReviewed', 0)} reviewed), "
        f"{counts.get('imagesSkipped', 0)} skipped, "
        f"{counts.get('imagesDeferred', 0)} deferred to the next run.",
        "Model F1 with its 95 % interval, on reviewed images: "
        f"{(result.get('f1') or {}).get('reviewed') or quality.get('f1', 0)}; "
        f"whole run: {(result.get('f1') or {}).get('wholeRun') or 'not measured'}.",
    ]
    if interval:
        lines.append(f"Auto-accept error rate, 95 % interval: {interval[0]:.3f}-{interval[1]:.3f}.")
    if result.get("gate") not in (None, "ship", "nothing-to-ship"):
        lines.append(f"Audit gate: {result.get('gate')}: {result.get('gateReason')}")
    lines.extend(budget_lines(result.get("budget")))
    if training:
        lines.append(
            f"Next version: {training.get('status')}, "
            f"F1 {training.get('previousF1')} -> {training.get('newF1')}"
            + (f" ({training['error']})" if training.get("error") else "")
            + (
                f"; {training['decision'].get('reason')}"
                if isinstance(training.get("decision"), Mapping)
                else ""
            )
        )
    for warning in (result.get("warnings") or [])[:5]:
        lines.append(f"Warning: {warning}")
    report = str(result.get("reportHtml") or result.get("report"))
    lines += [f"Report: {report}", f"Open in the S3 console: {console_url(report, region)}",
              f"Manifest: {result.get('manifest')}"]  # fmt: skip
    subject = f"Run ended: {counts.get('imagesInManifest', 0)} images labeled, run {config.runId}"
    return _subject(subject), "\n".join(lines)


def budget_lines(budget: Mapping[str, Any] | None) -> list[str]:
    """The review budget, what it bought, and how long the backlog waits (report.json `budget`)."""
    budget = budget or {}
    lines = []
    if budget.get("reviewBudget") is not None:
        lines.append(
            f"Review budget {budget['reviewBudget']}: {budget.get('sentToPeople', 0)} images sent to people, "
            f"{budget.get('correctionsFound', 0)} corrections found."
        )
    backlog = int(budget.get("backlog") or 0)
    if backlog:
        lines.append(f"Waiting for the next runs: {backlog} images: {budget.get('backlogNote')}.")
    return lines


def run_failed(config: RunConfig, cleanup: Mapping[str, Any]) -> tuple[str, str]:
    lines = [
        f"Run {config.runId} failed: {cleanup.get('error')}",
        f"Cause: {str(cleanup.get('cause', ''))[:2000]}",
        f"Model {config.projectVersionArn}: "
        + (
            "stopped by the cleanup."
            if cleanup.get("modelStopped")
            else f"not stopped by this run ({cleanup.get('modelStatus', 'left as it was')})."
        ),
        f"Run folder: {config.layout().root}",
    ]
    return _subject(f"Run failed: {cleanup.get('error')}, run {config.runId}"), "\n".join(lines)


def _subject(text: str) -> str:
    # SNS subjects: printable ASCII, no line breaks, at most 100 characters.
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return clean[: MAX_SUBJECT - 3] + "..." if len(clean) > MAX_SUBJECT else clean


def publish(sns: SNSClient, topic_arn: str, subject: str, message: str) -> dict[str, Any]:
    if not topic_arn:
        return {"published": False}
    response = sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    return {"published": True, "messageId": response.get("MessageId")}
