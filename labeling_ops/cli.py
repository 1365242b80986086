"""`labeling-loop`: start, follow, list, show, report and stop runs of the deployed workflow, or of
the local cloud with --local.

    labeling-loop start --stack labeling-loop --input events/cli.json --follow
    labeling-loop list --stack labeling-loop
    labeling-loop start --local --follow     # the same against a local cloud (no AWS needed)
    labeling-loop local review               # review a local run yourself, in Label Studio

AWS profile and region as the AWS CLI takes them (--profile/--region, AWS_PROFILE, AWS_REGION,
~/.aws/config). The stack defaults to $LABELING_LOOP_STACK, else `labeling-loop` (samconfig.toml).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from labeling_ops import inputs, local_verbs, verbs
from labeling_ops.aws import Clients, OpsError, StackInfo, describe_stack, explain, session_for

VERBS = ("start", "follow", "list", "show", "report", "stop", "local")
READING_VERBS = ("start", "follow", "list", "show", "report", "stop")
# Piped output is read by scripts and other tools: no width to fit, so nothing is cut or wrapped.
PIPED_WIDTH = 100_000


class Parser(argparse.ArgumentParser):
    """argparse that answers a mistyped verb or choice with the nearest real one."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}{choice_suggestion(message)}\n")


def choice_suggestion(message: str) -> str:
    """' (did you mean ...?)' for an unknown verb or choice in argparse's message, else ''."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not choice:
        return ""
    candidates = [c.strip(" '") for c in choice[2].split(",")]
    close = difflib.get_close_matches(choice[1], candidates, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def flag_suggestion(unknown: list[str], options: list[str]) -> str:
    """' (did you mean --a, --b?)' for the mistyped flags among `unknown`, else ''."""
    hints = []
    flags = [word.split("=", 1)[0] for word in unknown if word.startswith("--")]
    for flag in flags:
        close = difflib.get_close_matches(flag, options, n=1, cutoff=0.6)
        if close:
            hints.append(close[0] if len(flags) == 1 else f"{close[0]} for {flag}")
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


def _options(parser: argparse.ArgumentParser, verb: str | None) -> list[str]:
    """The option strings of one verb's parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and verb in action.choices:
            return [o for a in action.choices[verb]._actions for o in a.option_strings]
    return [o for a in parser._actions for o in a.option_strings]


def parse(root: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parse_args, but an unknown flag is answered with the verb's nearest flag."""
    args, unknown = root.parse_known_args(argv)
    if unknown:
        hint = flag_suggestion(unknown, _options(root, getattr(args, "verb", None)))
        root.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return args


def _common() -> Parser:
    common = Parser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument(
        "--stack",
        default=os.environ.get("LABELING_LOOP_STACK", "labeling-loop"),
        help="the stack `sam deploy` created (default: $LABELING_LOOP_STACK, else labeling-loop)",
    )
    where.add_argument("--profile", help="AWS profile (as aws --profile)")
    where.add_argument("--region", help="AWS region (as aws --region)")
    where.add_argument(
        "--local",
        action="store_true",
        help="act on the local cloud instead of AWS (started in the background on first use; "
        "`labeling-loop local down` stops it)",
    )
    where.add_argument(
        "--count",
        type=int,
        default=local_verbs.DEFAULT_COUNT,
        help="--local: synthetic images the local cloud starts with (default: %(default)s)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", help="more detail: logs, and tracebacks of bugs"
    )
    return common


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of text")


def parser() -> argparse.ArgumentParser:
    common = _common()
    root = Parser(
        prog="labeling-loop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = root.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=Parser)

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=text, description=text)

    start = verb("start", "validate an input and start a run")
    start.add_argument("--input", metavar="FILE", help="JSON file with the run input (events/*.json)")
    start.add_argument("--name", help="execution name, becomes the run id (default: run-<UTC time>)")
    start.add_argument("--follow", action="store_true", help="then show its progress until it ends")
    start.add_argument("--dry-run", action="store_true", help="validate and print the input, start nothing")
    start.add_argument("--interval", type=float, default=None, help="seconds between progress updates")
    _json_flag(start)
    inputs.add_input_flags(start)
    follow = verb("follow", "show a run's progress until it ends")
    follow.add_argument("run", nargs="?", default="latest", help="run name, execution ARN, or latest")
    follow.add_argument("--interval", type=float, default=None, help="seconds between updates")
    follow.add_argument("--updates", type=int, default=None, help="stop following after N updates")
    _json_flag(follow)
    runs = verb("list", "recent runs, their status and counts")
    runs.add_argument("--limit", type=int, default=10, help="how many (default: %(default)s)")
    runs.add_argument("--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])
    _json_flag(runs)
    show = verb("show", "a run's result, counts and warnings, or its error")
    show.add_argument("run", nargs="?", default="latest", help="run name, execution ARN, or latest")
    _json_flag(show)
    report = verb("report", "download a run's report (json and html)")
    report.add_argument("run", nargs="?", default="latest", help="run name, execution ARN, or latest")
    report.add_argument("--out", type=Path, default=Path("."), help="folder to write report.json/html")
    report.add_argument("--open", action="store_true", help="open report.html in the browser")
    _json_flag(report)
    stop = verb("stop", "stop a run and say what the cleanup did")
    stop.add_argument("run", help="run name or execution ARN")
    stop.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the cleanup")
    _json_flag(stop)
    local_verbs.add_parser(sub, root)
    return root


def stdout_console() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPED_WIDTH, soft_wrap=True)
    return console


def dispatch(args: argparse.Namespace, ctx: verbs.Context, local: bool) -> int:
    interval = args.interval if getattr(args, "interval", None) is not None else (0.5 if local else 5.0)
    as_json = bool(getattr(args, "json", False))
    if args.verb == "start":
        arn = verbs.start(
            ctx, inputs.gather(args.input, args), args.name, dry_run=args.dry_run, as_json=as_json
        )
        if arn and args.follow:
            return verbs.follow(ctx, arn, interval=interval, as_json=as_json)
        return 0
    if args.verb == "follow":
        return verbs.follow(ctx, args.run, interval=interval, max_updates=args.updates, as_json=as_json)
    if args.verb == "list":
        return verbs.list_runs(ctx, args.limit, args.status, as_json=as_json)
    if args.verb == "show":
        return verbs.show(ctx, args.run, as_json=as_json)
    if args.verb == "report":
        return verbs.report(ctx, args.run, args.out, open_it=args.open, as_json=as_json)
    if args.verb == "stop":
        return verbs.stop(
            ctx, args.run, wait_seconds=args.wait, interval=0.5 if local else 5.0, as_json=as_json
        )
    raise OpsError(f"unknown verb {args.verb!r}")


def main(
    argv: list[str] | None = None,
    *,
    clients: Clients | None = None,
    stack: StackInfo | None = None,
    console: Console | None = None,
) -> int:
    """The entry point. Tests (and notebooks) may hand in clients and a stack: then nothing is read
    from the machine's AWS configuration."""
    console = console or stdout_console()
    errors = Console(stderr=True, soft_wrap=True)
    root = parser()
    args = parse(root, argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        if args.verb == "local":
            return local_verbs.run(args, console, errors, lambda line: parse(root, line))
        if args.local and clients is None:
            cloud = local_verbs.cloud_for(args, errors)
            clients, stack = cloud.clients(), cloud.stack()
        if clients is None:
            clients = Clients.from_session(session_for(args.profile, args.region))
        if stack is None:
            stack = describe_stack(clients, args.stack)
        return dispatch(args, verbs.Context(clients, stack, console, errors), local=args.local)
    except OpsError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    except (ClientError, BotoCoreError) as error:
        errors.print(f"[bold red]error:[/] {explain(error)}", highlight=False)
        return 1
    except KeyboardInterrupt:
        errors.print("interrupted: the run goes on (`labeling-loop stop RUN` stops it)")
        return 130
    except Exception as error:  # a bug: one line, and the traceback with -v
        if args.verbose:
            raise
        errors.print(
            f"[bold red]error:[/] unexpected {type(error).__name__}: {_first_line(error)} "
            "(this is a bug; run again with -v for the details, and report it)",
            highlight=False,
        )
        return 70


def _first_line(error: BaseException) -> Any:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


if __name__ == "__main__":
    sys.exit(main())
