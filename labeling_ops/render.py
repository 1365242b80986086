"""What `follow`, `show`, `list` and `stop` print, as rich renderables (a live panel on a terminal,
plain text when piped: rich decides). Pure: a Progress or a dict in, a renderable out."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from labeling_loop.review.backends import find_backend
from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from labeling_ops import failures
from labeling_ops.progress import Progress

STATUS_STYLE = {
    "RUNNING": "bold cyan",
    "SUCCEEDED": "bold green",
    "FAILED": "bold red",
    "TIMED_OUT": "bold red",
    "ABORTED": "bold yellow",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _bar(done: int | None, total: int | None) -> ProgressBar | Text:
    if done is None or not total:
        return Text("-")
    return ProgressBar(total=float(total), completed=float(done), width=30)


def _count(done: int | None, total: int | None, unit: str) -> str:
    if total is None:
        return "-"
    return f"{done if done is not None else 0:,} / {total:,} {unit}"


def progress_lines(p: Progress, *, with_state: bool = True) -> list[tuple[str, str]]:
    """The display as (label, value) lines: the same words in the panel and in plain output (which
    leaves out the state inside a phase: a poll loop would print a line at every turn)."""
    lines = [
        ("status", p.status),
        ("phase", p.phase + (f" ({p.state})" if with_state and p.state and p.status == "RUNNING" else "")),
        ("elapsed", duration(p.elapsed_seconds)),
    ]
    if p.images_listed is not None:
        lines.append(("images listed", f"{p.images_listed:,} ({p.images_to_infer or 0:,} to infer)"))
    if p.batches_total is not None:
        inferred = p.images_inferred
        text = _count(p.batches_done, p.batches_total, "batches")
        if inferred is not None and p.images_to_infer is not None:
            text += f", images inferred {inferred:,} / {p.images_to_infer:,}"
        if p.batches_failed:
            text += f", {p.batches_failed} batches failed"
        lines.append(("inference", text))
    if p.model_arn:
        who = {True: "started by this run", False: "already running", None: ""}[p.model_started_by_run]
        model = f"{p.model_status or 'unknown'}" + (f", {who}" if who else "")
        if p.model_stopped_by_run is not None:
            model += ", stopped by this run" if p.model_stopped_by_run else ", left running for another run"
        lines.append(("model", model))
    if p.model_seconds is not None:
        lines.append(
            (
                "model time",
                f"{duration(p.model_seconds)} x {p.inference_units or 1} IU = "
                f"{p.model_billed_seconds or 0:,.0f} IU-seconds billed so far",
            )
        )
    if p.review_total is not None:
        known = find_backend(p.review_backend)
        backend = known.title if known else p.review_backend or ""
        lines.append(("review", f"{backend}: " + _count(p.review_done, p.review_total, "images reviewed")))
        for job in p.review_jobs:
            lines.append(
                (
                    f"  {job.name}",
                    f"{job.status}: {job.labeled} labeled, {job.unlabeled} waiting, {job.failed} failed",
                )
            )
    if p.error:
        lines.append(("error", failures.one_line(p.error, p.cause)))
    if p.cleanup:
        if p.cleanup.get("modelStopped"):
            done = "ran: model stopped"
        elif p.cleanup.get("modelStopPending"):
            done = "ran: the model could not be stopped yet (starting); it is stopped once it runs"
        else:
            done = "ran: no model left to stop"
        lines.append(("cleanup", done))
    if p.result:
        counts = p.result.get("counts", {})
        lines.append(
            (
                "result",
                f"{counts.get('imagesInManifest', 0):,} images in the manifest, "
                f"{counts.get('imagesSkipped', 0):,} skipped, "
                f"{counts.get('imagesDeferred', 0):,} deferred to the next run",
            )
        )
        lines.append(("manifest", str(p.result.get("manifest", ""))))
    return lines


def progress_panel(p: Progress) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in progress_lines(p):
        table.add_row(label, Text(value, style=STATUS_STYLE.get(value, "")))
        if label == "inference":
            table.add_row("", _bar(p.batches_done, p.batches_total))
        elif label == "review" and p.review_total:
            table.add_row("", _bar(p.review_done, p.review_total))
    return Panel(table, title=f"run {p.name}", border_style=STATUS_STYLE.get(p.status, "white"))


def runs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="recent runs", show_lines=False)
    for column in ("run", "status", "started", "took", "listed", "manifest", "skipped", "F1"):
        numeric = column in ("listed", "manifest", "skipped", "F1")
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=True,
            min_width=12 if column == "run" else None,
        )
    for row in rows:
        started = row["startDate"]
        table.add_row(
            str(row["name"]),
            Text(str(row["status"]), style=STATUS_STYLE.get(str(row["status"]), "")),
            started.strftime("%m-%d %H:%M") if isinstance(started, datetime) else str(started),
            duration(row.get("seconds")),
            _maybe(row.get("imagesListed")),
            _maybe(row.get("imagesInManifest")),
            _maybe(row.get("imagesSkipped")),
            f"{row['f1']:.3f}" if isinstance(row.get("f1"), int | float) else "-",
        )
    return table


def _maybe(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def budget_lines(budget: dict[str, Any] | None) -> list[tuple[str, str]]:
    """`show`: the review budget, what it bought and the images that wait (report.json `budget`)."""
    if not budget:
        return []
    limit, sent = budget.get("reviewBudget"), budget.get("sentToPeople") or 0
    backlog = budget.get("backlog") or 0
    waiting = f"{backlog:,} images wait for the next runs: {budget.get('backlogNote')}" if backlog else "none"
    return [
        (
            "review budget",
            f"{limit:,} images: {sent:,} sent to people" if limit else f"none: {sent:,} sent to people",
        ),
        ("corrections found", f"{budget.get('correctionsFound') or 0:,}"),
        ("backlog", waiting),
    ]


def result_view(description: dict[str, Any], output: dict[str, Any] | None) -> Group:
    """`show`: how the run ended, where its files are, its counts and warnings."""
    status = str(description["status"])
    parts: list[Any] = [Text(f"{description['name']}: {status}", style=STATUS_STYLE.get(status, ""))]
    if description.get("error"):
        parts.append(Text("error: " + failures.one_line(description["error"], description.get("cause"))))
    if output:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key in ("manifest", "report", "skipped"):
            if key in output:
                table.add_row(key, str(output[key]))
        for key, value in (output.get("counts") or {}).items():
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
        f1 = output.get("f1") or {}
        if f1.get("reviewed"):
            table.add_row("F1 (95 %), reviewed images", str(f1["reviewed"]))
        if f1.get("wholeRun"):
            table.add_row("F1 (95 %), whole run", str(f1["wholeRun"]))
        if output.get("autoAcceptErrorInterval"):
            low, high = output["autoAcceptErrorInterval"]
            table.add_row("auto-accept error (95 %)", f"{low:.3f}-{high:.3f}")
        if output.get("gate"):
            table.add_row("audit gate", f"{output['gate']}: {output.get('gateReason') or ''}")
        for label, value in budget_lines(output.get("budget")):
            table.add_row(label, value)
        parts.append(table)
        warnings = output.get("warnings") or []
        parts.append(Text(f"warnings ({len(warnings)})" if warnings else "no warnings", style="bold"))
        parts.extend(Text(f"  - {warning}") for warning in warnings)
    return Group(*parts)


# JSON for scripts (--json) -----------------------------------------------------------------------


def progress_document(p: Progress) -> dict[str, Any]:
    """`follow --json`: one document per update, the display's figures as numbers."""
    document = {k: v for k, v in dataclasses.asdict(p).items() if k not in ("result", "cleanup")}
    document["imagesInferred"] = p.images_inferred
    document["modelBilledSeconds"] = p.model_billed_seconds
    if p.error:
        document["failure"] = failures.one_line(p.error, p.cause)
    document["result"] = p.result
    return document


def run_document(row: dict[str, Any]) -> dict[str, Any]:
    """`list --json`: one run."""
    keys = ("name", "status", "executionArn", "startDate", "stopDate", "seconds")
    counts = ("imagesListed", "imagesInManifest", "imagesSkipped", "imagesAutoAccepted")
    return {
        **{k: row.get(k) for k in keys},
        **{k: row[k] for k in counts if k in row},
        "f1": row.get("f1"),
    }


def result_document(description: dict[str, Any], output: dict[str, Any] | None) -> dict[str, Any]:
    """`show --json`: how the run ended, and its output."""
    document = {
        k: description.get(k) for k in ("name", "status", "executionArn", "startDate", "stopDate", "error")
    }
    if description.get("error"):
        document["cause"] = failures.cause_text(description.get("cause"), description.get("error"))
        document["failure"] = failures.one_line(description["error"], description.get("cause"))
    document["output"] = output
    return document
