"""`labeling-loop local up|down|status|review|tour`, and where `--local` verbs find their cloud.

labeling-loop local up [--labelstudio]   # the local cloud in the background (and Label Studio)
labeling-loop start --local --follow     # any verb with --local acts on it (started if needed)
labeling-loop local review               # a run whose review waits in Label Studio for you
labeling-loop local status               # where it listens, its images, Label Studio's sign-in
labeling-loop local tour                 # every verb once
labeling-loop local down                 # stop it (its runs are forgotten)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from labeling_loop.kernel.run_input import run_id_for
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.review.backends import find_backend
from labeling_loop.review.labelstudio.backend import LabelStudioBackend
from labeling_loop.review.labelstudio.project import review_title
from rich.console import Console

from labeling_ops import inputs, local, report_html, verbs
from labeling_ops.aws import OpsError
from labeling_ops.progress import TERMINAL

DEFAULT_COUNT = local.DEFAULT_COUNT
ACTIONS = ("up", "down", "status", "review", "tour")
# Every verb once, in an order that works: a run to its end, then a second run stopped half way.
# {first} and {second} are names unique to this tour (the local cloud keeps earlier runs).
TOUR = [
    "start --name {first} --follow",
    "list",
    "show {first}",
    "report {first} --out local-report",
    # a long model poll (3600 s, 7 s at the local time scale) keeps it waiting for the model
    "start --name {second} --min-confidence 60 --model-poll-seconds 3600",
    "follow {second} --updates 4",
    "stop {second} --wait 5",
    "list",
]


def add_parser(sub: Any, root: argparse.ArgumentParser) -> None:
    text = (
        "the local cloud (no AWS needed): up, down, status, review (you review a run in Label Studio), tour"
    )
    parser = sub.add_parser(
        "local", help=text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help="synthetic images the local cloud starts with (default: %(default)s)",
    )
    parser.add_argument(
        "--labelstudio", action="store_true", help="up: start Label Studio too (else on first use)"
    )
    parser.add_argument(
        "--review-images",
        type=int,
        default=3,
        metavar="N",
        help="review: how many images you review (default: %(default)s)",
    )
    parser.add_argument("--name", help="review: the run's execution name (default: review-<UTC time>)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("review-out"),
        help="review: folder for the manifest and report (default: %(default)s)",
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="review: seconds between progress updates"
    )
    parser.add_argument("--json", action="store_true", help="up, status: print JSON (for scripts)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="more detail: logs, and tracebacks of bugs"
    )


def cloud_for(args: argparse.Namespace, errors: Console) -> local.LocalCloud:
    """The background cloud a `--local` verb acts on: started on first use, with Label Studio when
    the run to start asks for it."""
    cloud, started = local.up(errors, count=args.count)
    if started:
        errors.print(
            f"started a local cloud at {cloud.endpoint} ({args.count} synthetic images; it keeps its runs "
            "until `labeling-loop local down`)",
            highlight=False,
        )
    if args.verb == "start":
        backend = find_backend(inputs.gather(args.input, args).get("reviewBackend"))
        if backend is not None and backend.self_hosted:
            local.labelstudio(cloud, errors)
    return cloud


def run(
    args: argparse.Namespace,
    console: Console,
    errors: Console,
    parse: Callable[[list[str]], argparse.Namespace],
) -> int:
    if args.action == "down":
        state = local.down()
        console.print("local cloud stopped (its runs are gone)" if state else "no local cloud was running")
        return 0
    if args.action == "status":
        cloud = local.running()
        if args.json:
            console.out(json.dumps(_describe(cloud)), highlight=False)
        elif cloud is None:
            console.print("no local cloud is running: `labeling-loop local up` starts one")
        else:
            _print_status(console, cloud)
        return 0 if cloud is not None else 3
    cloud, _ = local.up(errors, count=args.count)
    if args.action == "up":
        if args.labelstudio:
            local.labelstudio(cloud, errors)
        if args.json:
            console.out(json.dumps(_describe(cloud)), highlight=False)
        else:
            _print_status(console, cloud)
        return 0
    ctx = verbs.Context(cloud.clients(), cloud.stack(), console, errors)
    if args.action == "review":
        return review(ctx, cloud, args)
    return tour(ctx, parse)


def _describe(cloud: local.LocalCloud | None) -> dict[str, Any]:
    if cloud is None:
        return {"running": False}
    state = cloud.state
    return {
        "running": True,
        "endpoint": cloud.endpoint,
        "pid": cloud.pid,
        "folder": str(cloud.folder),
        "stack": state["stack"]["name"],
        "images": state.get("images"),
        "labelStudio": state.get("labelStudio"),
    }


def _print_status(console: Console, cloud: local.LocalCloud) -> None:
    state = cloud.state
    console.print(
        f"local cloud: {cloud.endpoint} (pid {cloud.pid}; state and log in {cloud.folder})", highlight=False
    )
    console.print(f"  stack {state['stack']['name']}, images {state.get('images')}", highlight=False)
    sign_in = state.get("labelStudio")
    if sign_in:
        console.print(
            f"  Label Studio: {sign_in['url']} (sign in as {sign_in['username']} / {sign_in['password']})",
            highlight=False,
        )
    else:
        console.print("  Label Studio: not started (a labelstudio run or `local up --labelstudio` starts it)")
    console.print(
        "  use any verb with --local (`labeling-loop list --local`); `labeling-loop local down` stops it"
    )


def tour(ctx: verbs.Context, parse: Callable[[list[str]], argparse.Namespace]) -> int:
    """Every verb once against the background cloud; stops at the first error."""
    import shlex

    from labeling_ops import cli

    stamp = ctx.now().strftime("%H%M%S")
    names = {"first": f"tour-{stamp}-1", "second": f"tour-{stamp}-2"}
    for line in TOUR:
        line = line.format(**names)
        if ctx.console.is_terminal:
            ctx.console.rule(f"labeling-loop {line} --local")
        else:
            ctx.console.print(f"\n$ labeling-loop {line} --local", highlight=False, markup=False)
        args = parse([*shlex.split(line), "--local"])
        code = cli.dispatch(args, ctx, local=True)
        if code not in (0, 2) and args.verb != "follow":
            return code
    ctx.note(
        "\nThe local cloud keeps running with these runs (`labeling-loop list --local`); "
        "`labeling-loop local down` stops it."
    )
    return 0


def review(ctx: verbs.Context, cloud: local.LocalCloud, args: argparse.Namespace) -> int:
    """A local run reviewed by a person: its Label Studio project waits for you, the run ends when
    every task is submitted, then its manifest and report are written to `args.out`."""
    sign_in = local.labelstudio(cloud, ctx.errors or ctx.console)
    images = cloud.control("review-images", {"count": args.review_images})["images"]
    name = args.name or ctx.now().strftime("review-%Y%m%d-%H%M%S")
    cloud.control("people-review", {"name": name})  # the emulated reviewers leave this run alone
    execution_arn = verbs.start(ctx, {"reviewBackend": LabelStudioBackend.name, "images": images}, name)
    assert execution_arn is not None
    run_prefix = ctx.stack.output_location.rstrip("/") + "/" + run_id_for(name, execution_arn) + "/"
    with ctx.console.status("inferring the images; the review opens in Label Studio in a moment"):
        project = _wait_for_project(ctx, execution_arn, run_prefix)
    if project is None:  # the run ended first: follow says how
        return verbs.follow(ctx, execution_arn, interval=args.interval)
    hours = json.loads(cloud.state["stack"]["validatorEnvironment"]["RUN_DEFAULTS"]).get(
        "reviewDeadlineHours"
    )
    minutes = float(hours or 240) * 3600 * float(cloud.state.get("timeScale", local.TIME_SCALE)) / 60
    title = review_title(run_id_for(name, execution_arn))
    ctx.console.print(
        "\n[bold]Your turn: review the images in Label Studio[/]\n"
        f"  open     {project['url']}\n"
        f"  sign in  {sign_in['username']} / {sign_in['password']}\n"
        f"  project  {title!r}: {args.review_images} task(s), each pre-filled with the model's boxes;"
        " fix them (move, resize, relabel, delete, draw what is missing) and press Submit\n"
        f"The run waits for you (up to about {minutes:.0f} minutes: the local cloud's clock runs "
        f"{1 / float(cloud.state.get('timeScale', local.TIME_SCALE)):.0f} times faster) and finishes when "
        "every task is submitted.\n",
        highlight=False,
    )
    code = verbs.follow(ctx, execution_arn, interval=args.interval)
    description = ctx.clients.sfn.describe_execution(executionArn=execution_arn)
    if description["status"] != "SUCCEEDED":
        return code or 1
    verbs.show(ctx, execution_arn)
    out = args.out / name
    output = json.loads(description["output"])
    written = report_html.download(ctx.clients.s3, output, out)
    manifest_path = out / "output.manifest"
    manifest_uri = S3Uri.parse(str(output["manifest"]))
    manifest_path.write_bytes(
        ctx.clients.s3.get_object(Bucket=manifest_uri.bucket, Key=manifest_uri.key)["Body"].read()
    )
    ctx.console.print("\nThe manifest, with your boxes:", style="bold")
    for line in manifest_summary(manifest_path.read_text()):
        ctx.console.print(f"  {line}", highlight=False, markup=False)
    ctx.console.print(
        f"\nManifest: {manifest_path}\nReport:   {written[-1]} (and {written[0]})", highlight=False
    )
    return 0


def _wait_for_project(ctx: verbs.Context, execution_arn: str, run_prefix: str) -> dict[str, Any] | None:
    """The run's Label Studio project (review/labelstudio.json), once created; None if the run ended."""
    state_uri = S3Uri.parse(run_prefix + "review/labelstudio.json")
    while True:
        try:
            body = ctx.clients.s3.get_object(Bucket=state_uri.bucket, Key=state_uri.key)["Body"].read()
            return dict(json.loads(body))
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                raise OpsError(f"reading {state_uri}: {error}") from None
        if ctx.clients.sfn.describe_execution(executionArn=execution_arn)["status"] in TERMINAL:
            return None
        time.sleep(0.5)


def manifest_summary(text: str) -> list[str]:
    """One line per image of a Custom Labels manifest: its name and its boxes (label and pixels)."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        name = str(line.get("source-ref", "")).rsplit("/", 1)[-1]
        boxes = []
        for key, value in line.items():
            if isinstance(value, dict) and "annotations" in value:
                class_map = line.get(f"{key}-metadata", {}).get("class-map", {})
                for box in value["annotations"]:
                    label = class_map.get(str(box["class_id"]), str(box["class_id"]))
                    boxes.append(f"{label} ({box['left']},{box['top']} {box['width']}x{box['height']})")
            elif isinstance(value, int) and f"{key}-metadata" in line:
                boxes.append(str(line[f"{key}-metadata"].get("class-name", value)))
        lines.append(f"{name}: " + (", ".join(boxes) if boxes else "no objects"))
    return lines
