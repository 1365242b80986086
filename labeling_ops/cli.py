"""`labeling-loop`: start, follow, list, show, report and stop runs of the deployed workflow, or of
the local cloud with --local.

    labeling-loop start --stack labeling-loop --input events/cli.json --follow
    labeling-loop list --stack labeling-loop
    labeling-loop local            # every verb once, against the local cloud, no AWS needed

AWS profile and region as the AWS CLI takes them (--profile/--region, AWS_PROFILE, AWS_REGION,
~/.aws/config). The stack defaults to $LABELING_LOOP_STACK, else `labeling-loop` (samconfig.toml).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from labeling_ops import inputs, verbs
from labeling_ops.aws import Clients, OpsError, StackInfo, describe_stack, explain, session_for

VERBS = ("start", "follow", "list", "show", "report", "stop")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument("--stack", default=os.environ.get("LABELING_LOOP_STACK", "labeling-loop"))
    where.add_argument("--profile", help="AWS profile (as aws --profile)")
    where.add_argument("--region", help="AWS region (as aws --region)")
    where.add_argument("--local", action="store_true", help="run against the local cloud, in this process")
    where.add_argument("--count", type=int, default=40, help="--local: synthetic images to label")
    return common


def parser() -> argparse.ArgumentParser:
    common = _common()
    root = argparse.ArgumentParser(
        prog="labeling-loop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = root.add_subparsers(dest="verb", required=True, metavar="VERB")
    start = sub.add_parser("start", parents=[common], help="validate an input and start a run")
    start.add_argument("--input", metavar="FILE", help="JSON file with the run input (events/*.json)")
    start.add_argument("--name", help="execution name, becomes the run id (default run-<UTC time>)")
    start.add_argument("--follow", action="store_true", help="then show its progress until it ends")
    start.add_argument("--dry-run", action="store_true", help="validate and print the input, start nothing")
    start.add_argument("--interval", type=float, default=None, help="seconds between progress updates")
    inputs.add_input_flags(start)
    follow = sub.add_parser("follow", parents=[common], help="show a run's progress until it ends")
    follow.add_argument("run", nargs="?", default="latest", help="run name, execution ARN, or latest")
    follow.add_argument("--interval", type=float, default=None, help="seconds between updates")
    follow.add_argument("--updates", type=int, default=None, help="stop following after N updates")
    runs = sub.add_parser("list", parents=[common], help="recent runs, their status and counts")
    runs.add_argument("--limit", type=int, default=10)
    runs.add_argument("--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])
    show = sub.add_parser("show", parents=[common], help="a run's result, counts and warnings")
    show.add_argument("run", nargs="?", default="latest")
    report = sub.add_parser("report", parents=[common], help="download a run's report (json and html)")
    report.add_argument("run", nargs="?", default="latest")
    report.add_argument("--out", type=Path, default=Path("."), help="folder to write report.json/html")
    report.add_argument("--open", action="store_true", help="open report.html in the browser")
    stop = sub.add_parser("stop", parents=[common], help="stop a run and say what the cleanup did")
    stop.add_argument("run")
    stop.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the cleanup")
    local = sub.add_parser(
        "local", parents=[common], help="run verbs against the local cloud (no AWS): the tour by default"
    )
    local.add_argument("lines", nargs="*", metavar="VERB_LINE", help='e.g. "start --follow" "list"')
    return root


def dispatch(args: argparse.Namespace, ctx: verbs.Context, local: bool) -> int:
    interval = args.interval if getattr(args, "interval", None) is not None else (0.5 if local else 5.0)
    if args.verb == "start":
        arn = verbs.start(ctx, inputs.gather(args.input, args), args.name, dry_run=args.dry_run)
        if arn and args.follow:
            return verbs.follow(ctx, arn, interval=interval)
        return 0
    if args.verb == "follow":
        return verbs.follow(ctx, args.run, interval=interval, max_updates=args.updates)
    if args.verb == "list":
        return verbs.list_runs(ctx, args.limit, args.status)
    if args.verb == "show":
        return verbs.show(ctx, args.run)
    if args.verb == "report":
        return verbs.report(ctx, args.run, args.out, open_it=args.open)
    if args.verb == "stop":
        return verbs.stop(ctx, args.run, wait_seconds=args.wait, interval=0.5 if local else 5.0)
    raise OpsError(f"unknown verb {args.verb!r}")


def run_lines(lines: list[str], ctx: verbs.Context, parse: Callable[[list[str]], argparse.Namespace]) -> int:
    """A local session: each line is a verb with its flags, run in order; stops at the first error."""
    for line in lines:
        ctx.console.rule(f"labeling-loop {line}")
        args = parse(shlex.split(line))
        if args.verb == "local":
            raise OpsError("a local session cannot start another one")
        code = dispatch(args, ctx, local=True)
        if code not in (0, 2) and args.verb != "follow":
            return code
    return 0


def _local(
    args: argparse.Namespace, console: Console, parse: Callable[[list[str]], argparse.Namespace]
) -> int:
    try:
        from labeling_ops import local
        from localcloud.runner import local_cloud  # noqa: F401  (moto, the handlers' packages)
    except ImportError as error:
        raise OpsError(
            f"--local needs the development environment ({error.name} is missing): "
            "run `make venv` in a clone of the repository and use .venv/bin/labeling-loop"
        ) from None

    lines = args.lines if args.verb == "local" else None
    with console.status("starting the local cloud (deploying template.yaml, generating images)"):
        session = local.local_stack(count=args.count)
        cloud = session.__enter__()
    try:
        ctx = verbs.Context(cloud.clients, cloud.stack, console)
        if lines is None:  # one verb with --local
            return dispatch(args, ctx, local=True)
        return run_lines(lines or local.TOUR, ctx, parse)
    finally:
        session.__exit__(None, None, None)


def main(
    argv: list[str] | None = None,
    *,
    clients: Clients | None = None,
    stack: StackInfo | None = None,
    console: Console | None = None,
) -> int:
    """The entry point. Tests (and notebooks) may hand in clients and a stack: then nothing is read
    from the machine's AWS configuration."""
    console = console or Console()
    errors = Console(stderr=True, soft_wrap=True)
    root = parser()
    args = root.parse_args(argv)
    try:
        if args.local or args.verb == "local":
            return _local(args, console, root.parse_args)
        if clients is None:
            clients = Clients.from_session(session_for(args.profile, args.region))
        if stack is None:
            stack = describe_stack(clients, args.stack)
        return dispatch(args, verbs.Context(clients, stack, console), local=False)
    except OpsError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    except (ClientError, BotoCoreError) as error:
        errors.print(f"[bold red]error:[/] {explain(error)}", highlight=False)
        return 1
    except KeyboardInterrupt:
        errors.print("interrupted: the run goes on (`labeling-loop stop RUN` stops it)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
