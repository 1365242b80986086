"""The CLI's verbs: start, follow, list, show, report, stop. Each takes the clients and the stack
(handed in: AWS, the local cloud, or tests) and a rich Console to print on; each returns the exit
code. Pure of argument parsing (labeling_ops.cli) and of where the clients come from."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from labeling_loop.lifecycle import run_records
from rich.console import Console
from rich.live import Live

from labeling_ops import fetch, inputs, render, report_html
from labeling_ops.aws import Clients, OpsError, StackInfo, execution_arn_for, explain
from labeling_ops.progress import TERMINAL, Progress


@dataclass
class Context:
    clients: Clients
    stack: StackInfo
    console: Console
    errors: Console | None = None  # notes beside the output (stderr), kept out of JSON
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def emit(self, document: Any) -> None:
        """One JSON document on its own line, for scripts (no markup, no wrapping)."""
        self.console.out(json.dumps(document, default=_json_default), highlight=False)

    def note(self, text: str) -> None:
        (self.errors or self.console).print(text, highlight=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _describe(ctx: Context, execution_arn: str) -> dict[str, Any]:
    try:
        return dict(ctx.clients.sfn.describe_execution(executionArn=execution_arn))
    except ClientError as error:
        raise OpsError(explain(error)) from None


def default_name(now: datetime) -> str:
    return now.strftime("run-%Y%m%d-%H%M%S")


def start(
    ctx: Context, raw: dict[str, Any], name: str | None, *, dry_run: bool = False, as_json: bool = False
) -> str | None:
    """Validate locally, then start. Returns the execution ARN (None for a dry run)."""
    name = name or default_name(ctx.now())
    checked = inputs.check(raw, ctx.stack, name)
    if as_json and dry_run:
        ctx.emit({"name": name, "input": raw, "checked": checked})
        return None
    (ctx.note if as_json else ctx.console.print)(f"input valid ({checked})")
    if dry_run:
        ctx.console.print_json(json.dumps(raw))
        return None
    try:
        response = ctx.clients.sfn.start_execution(
            stateMachineArn=ctx.stack.state_machine_arn, name=name, input=json.dumps(raw)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            raise OpsError(f"a run named {name!r} exists already: pass another --name") from None
        raise OpsError(explain(error)) from None
    if as_json:
        ctx.emit({"name": name, "executionArn": response["executionArn"], "input": raw})
    else:
        ctx.console.print(f"started [bold]{name}[/]  {response['executionArn']}")
    return str(response["executionArn"])


def follow(
    ctx: Context,
    run: str,
    *,
    interval: float = 5.0,
    max_updates: int | None = None,
    as_json: bool = False,
) -> int:
    """Show the run's progress until it ends: live on a terminal, one line per change otherwise, or
    one JSON document per update (`as_json`)."""
    execution_arn = execution_arn_for(ctx.clients, ctx.stack, run)
    _describe(ctx, execution_arn)  # a wrong name fails here, once, with a clear line
    updates = 0

    def current() -> Progress:
        return fetch.run_progress(ctx.clients, execution_arn, ctx.now())

    if as_json:
        while True:
            progress = current()
            ctx.emit(render.progress_document(progress))
            updates += 1
            if progress.status in TERMINAL or (max_updates and updates >= max_updates):
                break
            ctx.sleep(interval)
    elif ctx.console.is_terminal:
        with Live(render.progress_panel(current()), console=ctx.console, auto_refresh=False) as live:
            while True:
                progress = current()
                live.update(render.progress_panel(progress), refresh=True)
                updates += 1
                if progress.status in TERMINAL or (max_updates and updates >= max_updates):
                    break
                ctx.sleep(interval)
    else:
        shown: list[tuple[str, str]] = []
        while True:
            progress = current()
            lines = render.progress_lines(progress, with_state=False)
            changed = [line for line in lines if line not in shown and line[0] != "elapsed"]
            if changed:
                elapsed = render.duration(progress.elapsed_seconds)
                ctx.console.print(
                    f"[{elapsed}] " + "; ".join(f"{k}: {v}" for k, v in changed), soft_wrap=True, markup=False
                )
                shown = lines
            updates += 1
            if progress.status in TERMINAL or (max_updates and updates >= max_updates):
                break
            ctx.sleep(interval)
    return 0 if progress.status in ("SUCCEEDED", "RUNNING") else 1


def list_runs(ctx: Context, limit: int = 10, status: str | None = None, *, as_json: bool = False) -> int:
    kwargs: dict[str, Any] = {"stateMachineArn": ctx.stack.state_machine_arn, "maxResults": limit}
    if status:
        kwargs["statusFilter"] = status
    executions = ctx.clients.sfn.list_executions(**kwargs)["executions"]
    rows = []
    for execution in executions:
        row = dict(execution)
        if execution.get("stopDate"):
            row["seconds"] = (execution["stopDate"] - execution["startDate"]).total_seconds()
        if execution["status"] == "SUCCEEDED":
            output = json.loads(_describe(ctx, execution["executionArn"]).get("output") or "{}")
            row.update(output.get("counts", {}))
            row["f1"] = (output.get("modelQuality") or {}).get("f1")
        rows.append(row)
    if as_json:
        ctx.emit([render.run_document(row) for row in rows])
        return 0
    if not rows:
        ctx.console.print("no runs yet: start one with `labeling-loop start`")
        return 0
    ctx.console.print(render.runs_table(rows))
    return 0


def show(ctx: Context, run: str, *, as_json: bool = False) -> int:
    description = _describe(ctx, execution_arn_for(ctx.clients, ctx.stack, run))
    output = json.loads(description["output"]) if description.get("output") else None
    if as_json:
        ctx.emit(render.result_document(description, output))
        return 0 if description["status"] in ("SUCCEEDED", "RUNNING") else 1
    ctx.console.print(render.result_view(description, output))
    if description["status"] == "RUNNING":
        ctx.console.print("still running: `labeling-loop follow` shows its progress")
    return 0 if description["status"] in ("SUCCEEDED", "RUNNING") else 1


def report(ctx: Context, run: str, out: Path, *, open_it: bool = False, as_json: bool = False) -> int:
    """Download the run's report.json (and report.html when the run wrote one; otherwise it is
    rendered here from report.json)."""
    description = _describe(ctx, execution_arn_for(ctx.clients, ctx.stack, run))
    if description["status"] != "SUCCEEDED":
        raise OpsError(
            f"run {description['name']} is {description['status']}: only a finished run has a report "
            "(`labeling-loop show` says why it ended)"
        )
    paths = report_html.download(ctx.clients.s3, json.loads(description["output"]), out)
    if as_json:
        ctx.emit({"run": description["name"], "files": [str(path) for path in paths]})
    for path in [] if as_json else paths:
        ctx.console.print(f"wrote {path}", markup=False, highlight=False)
    if open_it:
        import webbrowser

        webbrowser.open(paths[-1].resolve().as_uri())
    return 0


def stop(
    ctx: Context, run: str, *, wait_seconds: float = 120.0, interval: float = 5.0, as_json: bool = False
) -> int:
    """Stop the execution, then say what the cleanup did, read from durable state: the run's record
    (`cleaned-up`), the model's lease and the model's status."""
    execution_arn = execution_arn_for(ctx.clients, ctx.stack, run)
    description = _describe(ctx, execution_arn)
    if description["status"] == "RUNNING":
        ctx.clients.sfn.stop_execution(
            executionArn=execution_arn, error="StoppedByOperator", cause="labeling-loop stop"
        )
        say = ctx.note if as_json else ctx.console.print
        say(f"stopped {description['name']}: execution ABORTED; waiting for the cleanup ...")
    else:  # stopping again shows what the cleanup did since
        (ctx.note if as_json else ctx.console.print)(
            f"run {description['name']} is already {description['status']}"
        )
    facts = fetch.read_history(fetch.history(ctx.clients.sfn, execution_arn))
    model_arn = facts.data.get("config", {}).get("projectVersionArn")
    waited = 0.0
    while True:
        outcome = fetch.cleanup_outcome(ctx.clients, ctx.stack.run_state_table, execution_arn, model_arn)
        if outcome["record"] != run_records.ACTIVE or waited >= wait_seconds:
            break
        ctx.sleep(interval)
        waited += interval
    if as_json:
        ctx.emit({"run": description["name"], "stopped": description["status"] == "RUNNING", **outcome})
    else:
        for line in cleanup_lines(outcome, model_arn, execution_arn):
            ctx.console.print(line)
    return 0 if outcome["record"] != run_records.ACTIVE else 2


def cleanup_lines(outcome: dict[str, Any], model_arn: str | None, execution_arn: str) -> list[str]:
    record = outcome["record"]
    if record is None:
        lines = ["cleanup: nothing to clean up (the run stopped before it registered: no model, no jobs)"]
    elif record == run_records.CLEANED_UP:
        lines = ["cleanup: done (run record cleaned-up): labeling jobs stopped, image claims released"]
    elif record == run_records.SUCCEEDED:
        lines = ["cleanup: not needed (the run had finished)"]
    else:
        lines = [
            "cleanup: not done yet (run record still active), or a labeling job could not be stopped "
            "yet. The execution-ended rule runs it within minutes and the sweep on its schedule, until "
            "every job has ended; `labeling-loop stop` again shows the outcome"
        ]
    if model_arn:
        others = [user for user in outcome.get("modelUsers", []) if user != execution_arn]
        status = outcome.get("modelStatus") or "unknown"
        if others:
            lines.append(f"model: {status}, still used by {len(others)} other run(s)")
        elif outcome.get("modelStopDuty") and status in ("RUNNING", "STARTING"):
            lines.append(f"model: {status}, started by the workflow and not stopped yet")
        else:
            lines.append(
                f"model: {status}" + (", no run holds it" if record == run_records.CLEANED_UP else "")
            )
    return lines
