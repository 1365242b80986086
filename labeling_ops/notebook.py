"""The labeling loop from a Jupyter notebook, on the Step Functions Data Science SDK (`stepfunctions`,
optional extra `notebook`: `pip install -e '.[notebook]'`).

    from labeling_ops.notebook import LabelingLoop
    loop = LabelingLoop.attach("labeling-loop", region="us-east-1")
    loop.graph()                                   # the deployed workflow, drawn
    run = loop.start({"minConfidence": 60})        # validated here first; an SDK Execution
    loop.follow(run)                               # progress until it ends (like `labeling-loop follow`)
    loop.events(run)                               # the SDK's event table
    loop.progress_graph(run)                       # the SDK's execution graph
    loop.runs()                                    # past runs
    loop.report(run)                               # the run's report, inline

Executions are the SDK's `Execution` (describe, get_output, list_events, render-ready HTML). Its
`Workflow.attach` cannot parse this definition (it predates Distributed Map and recurses without
end, stepfunctions 2.3.0), so the graphs are drawn by the SDK's widgets from the deployed
definition's JSON directly. The local cloud never imports this module.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
import warnings
from typing import Any

# The SDK's imports speak up: stepfunctions 2.3.0 imports pkg_resources (deprecated, pinned
# setuptools<81 keeps it), and sagemaker logs where it looked for its config file at INFO. Neither is
# news to someone following a run.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
logging.getLogger("sagemaker.config").setLevel(logging.WARNING)

from IPython import get_ipython
from IPython.display import HTML, display
from rich.console import Console
from stepfunctions.workflow import Execution
from stepfunctions.workflow.stepfunctions import EventsList
from stepfunctions.workflow.widgets.graph import ExecutionGraphWidget, WorkflowGraphWidget

from labeling_ops import fetch, inputs, render, report_html, verbs
from labeling_ops.aws import Clients, StackInfo, describe_stack, execution_arn_for, session_for
from labeling_ops.progress import TERMINAL, Progress


class LabelingLoop:
    """The deployed state machine, for a notebook."""

    def __init__(self, clients: Clients, stack: StackInfo, console: Console | None = None) -> None:
        self.clients = clients
        self.stack = stack
        self.console = console or Console()
        self._local: Any = None

    @classmethod
    def attach(
        cls, stack: str = "labeling-loop", *, profile: str | None = None, region: str | None = None
    ) -> LabelingLoop:
        """Attach to the stack `sam deploy` created (profile and region as the AWS CLI takes them)."""
        clients = Clients.from_session(session_for(profile, region))
        return cls(clients, describe_stack(clients, stack))

    @classmethod
    def local(cls, count: int = 12) -> LabelingLoop:
        """The same, against a local cloud in this kernel (template deployed, `count` synthetic
        images, a stopped model as the stack's default). `close()` shuts it down."""
        from labeling_ops.local import local_stack

        context = local_stack(count=count)
        session = context.__enter__()
        loop = cls(session.clients, session.stack)
        loop._local = context
        return loop

    def close(self) -> None:
        """Shut a local cloud down (nothing to do for a deployed stack)."""
        context = getattr(self, "_local", None)
        if context is not None:
            self._local = None
            context.__exit__(None, None, None)

    # The workflow -------------------------------------------------------------------------------

    def definition(self) -> str:
        """The deployed definition (JSON text), substitutions resolved."""
        described = self.clients.sfn.describe_state_machine(stateMachineArn=self.stack.state_machine_arn)
        return str(described["definition"])

    def graph(self, portrait: bool = True) -> Any:
        """The workflow's graph (the SDK's widget; the browser loads its drawing library)."""
        return WorkflowGraphWidget(self.definition()).show(portrait=portrait)

    # Runs ---------------------------------------------------------------------------------------

    def execution(self, run: str | Execution = "latest") -> Execution:
        """An SDK Execution for a run name, an execution ARN, `latest`, or an Execution."""
        if isinstance(run, Execution):
            return run
        arn = execution_arn_for(self.clients, self.stack, run)
        described = self.clients.sfn.describe_execution(executionArn=arn)
        return Execution(
            workflow=None,
            execution_arn=arn,
            start_date=described["startDate"],
            status=described["status"],
            client=self.clients.sfn,
            name=described["name"],
            stop_date=described.get("stopDate"),
        )

    def start(self, run_input: dict[str, Any] | None = None, name: str | None = None) -> Execution:
        """Validate the input as the first state will, then start a run."""
        raw = dict(run_input or {})
        name = name or time.strftime("nb-%Y%m%d-%H%M%S", time.gmtime())
        inputs.check(raw, self.stack, name)
        response = self.clients.sfn.start_execution(
            stateMachineArn=self.stack.state_machine_arn, name=name, input=json.dumps(raw)
        )
        return Execution(
            workflow=None,
            execution_arn=response["executionArn"],
            start_date=response["startDate"],
            status="RUNNING",
            client=self.clients.sfn,
            name=name,
        )

    def progress(self, run: str | Execution = "latest") -> Progress:
        return fetch.run_progress(self.clients, self.execution(run).execution_arn)

    def follow(
        self, run: str | Execution = "latest", interval: float = 30.0, max_updates: int | None = None
    ) -> Progress:
        """The run's progress panel until it ends (or max_updates): in a notebook one display,
        updated in place at every change; elsewhere printed at every change."""
        shown: list[tuple[str, str]] = []
        handle: Any = None
        updates = 0
        while True:
            current = self.progress(run)
            lines = [line for line in render.progress_lines(current) if line[0] != "elapsed"]
            if lines != shown:
                if get_ipython() is None:
                    self.console.print(render.progress_panel(current))
                elif handle is None:
                    handle = display(_Panel(current), display_id=True)
                else:
                    handle.update(_Panel(current))
                shown = lines
            updates += 1
            if current.status in TERMINAL or (max_updates and updates >= max_updates):
                return current
            time.sleep(interval)

    def events(self, run: str | Execution = "latest") -> HTML:
        """The SDK's event table of the run. Use this rather than `Execution.list_events(html=True)`:
        the SDK's table calls json.loads on every detail value and fails on the booleans and numbers
        current histories carry (`inputDetails.truncated`, stepfunctions 2.3.0); they are given as
        text."""
        execution = self.execution(run)
        events = [
            _scalars_as_text(event) for event in fetch.history(self.clients.sfn, execution.execution_arn)
        ]
        return HTML(EventsList(events).to_html())

    def progress_graph(self, run: str | Execution = "latest", portrait: bool = True) -> Any:
        """The SDK's execution graph: the states the run went through, coloured by outcome."""
        execution = self.execution(run)
        events = fetch.history(self.clients.sfn, execution.execution_arn)
        widget = ExecutionGraphWidget(
            self.definition(), json.dumps(events, default=str), execution_arn=execution.execution_arn
        )
        return widget.show(portrait=portrait)

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """Recent runs: name, status, start, and counts for the finished ones (also printed)."""
        context = verbs.Context(self.clients, self.stack, self.console)
        verbs.list_runs(context, limit)
        executions = self.clients.sfn.list_executions(
            stateMachineArn=self.stack.state_machine_arn, maxResults=limit
        )["executions"]
        return [
            {k: execution.get(k) for k in ("name", "status", "startDate", "stopDate", "executionArn")}
            for execution in executions
        ]

    def report(self, run: str | Execution = "latest") -> HTML:
        """The run's report as a page, inline (report.html if the run wrote one, else from report.json)."""
        execution = self.execution(run)
        output = execution.get_output()
        if not output:
            raise ValueError(f"run {execution.name} has no output ({execution.describe()['status']})")
        return HTML(report_html.fetch(self.clients.s3, output).html_body.decode("utf-8"))


class _Panel:
    """The progress panel as a notebook shows it: HTML (rich's export), text as a fallback."""

    def __init__(self, progress: Progress) -> None:
        self.console = Console(record=True, width=100, file=io.StringIO(), force_jupyter=False)
        self.console.print(render.progress_panel(progress))

    def _repr_html_(self) -> str:
        return self.console.export_html(inline_styles=True, clear=False, code_format="<pre>{code}</pre>")

    def __repr__(self) -> str:
        return self.console.export_text(clear=False)


def _scalars_as_text(value: Any, top: bool = True) -> Any:
    """Every number, boolean and null inside an event's details as JSON text (the event's own
    `id`, `previousEventId` and `timestamp` stay as they are)."""
    if isinstance(value, dict):
        return {
            k: v
            if top and k in ("id", "previousEventId", "timestamp", "type")
            else _scalars_as_text(v, False)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scalars_as_text(v, False) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    return value
