"""`python -m localcloud run|demo`: one whole turn of the loop on this machine."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from labeling_ops import failures
from localcloud.engine import faults as faults_module
from localcloud.runner import default_config, held_out_datasets, run_local, write_outputs

# What `demo` runs when no input is given: auto-accept with its audit, and the next version trained.
DEMO_INPUT: dict[str, Any] = {
    "autoAcceptConfidence": 90,
    "auditFraction": 0.1,
    "auditMinImages": 20,
    "train": True,
    "promoteIfBetter": True,
    "trainingPollSeconds": 60,
}


class PhaseTicker:
    """Prints the run's phase each time it changes (what `labeling-loop follow` calls it), with the
    seconds since the run started: a long step shows what it is doing, a quiet one prints nothing."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, cloud: Any, execution_arn: str) -> None:
        self._thread = threading.Thread(target=self._run, args=(cloud, execution_arn), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, cloud: Any, execution_arn: str) -> None:
        from labeling_ops.progress import PHASES, read_history

        started, shown = time.monotonic(), ""
        while not self._stop.wait(0.5):
            try:
                state = read_history(cloud.history(execution_arn)).state or ""
            except Exception:  # the display is best effort; the run's outcome is what counts
                continue
            phase = PHASES.get(state, state)
            if phase and phase != shown:
                print(f"  [{time.monotonic() - started:5.1f} s] {phase}", flush=True)
                shown = phase


def _run(args: argparse.Namespace, images: Path, truth: Path | None, setup: Any = None) -> int:
    run_input: dict[str, Any] = json.loads(args.input) if args.input else {}
    if args.command == "demo" and not args.input and not args.input_file:
        run_input = dict(DEMO_INPUT)
    if args.input_file:
        run_input = {**json.loads(Path(args.input_file).read_text()), **run_input}
    if args.backend:
        run_input.setdefault("reviewBackend", args.backend)
    faults = faults_module.Faults.load(Path(args.faults)) if args.faults else None
    config = default_config(time_scale=args.time_scale)
    print(
        f"Running one turn of the labeling loop locally over {images} "
        f"(backend {run_input.get('reviewBackend', 'groundtruth')})",
        flush=True,
    )
    ticker = PhaseTicker()
    try:
        with contextlib.ExitStack() as stack:
            server = None
            if run_input.get("reviewBackend") == "labelstudio":
                from localcloud.services.labelstudio.backend import labelstudio_with_local_s3

                print("Starting Label Studio on 127.0.0.1 (about a minute)...", flush=True)
                server = stack.enter_context(labelstudio_with_local_s3(Path(args.out) / "labelstudio"))
                print(
                    f"Label Studio is up at {server.url} "
                    f"(user {server.username}, password {server.password})",
                    flush=True,
                )
            result = run_local(
                images,
                truth,
                run_input=run_input,
                faults=faults,
                config=config,
                task_type=args.task,
                name=args.name,
                timeout=args.timeout,
                labelstudio=server,
                setup=setup,
                on_started=ticker.watch,
            )
    finally:
        ticker.stop()
    out = Path(args.out)
    write_outputs(result, out)
    summary = result.summary
    print(
        f"\nExecution {summary['status']}"
        + (f": {failures.one_line(summary['error'], summary['cause'])}" if summary["error"] else "")
    )
    print(
        f"  images listed {summary['images_listed']}, in manifest {summary['images_in_manifest']} "
        f"(auto-accepted {summary['images_auto_accepted']}), skipped {summary['images_skipped']}, "
        f"deferred {summary['images_deferred']}"
    )
    for name, key in (("reviewed images", "reviewed_quality"), ("the whole run", "whole_run_quality")):
        figures = summary.get(key) or {}
        if figures:
            print(
                f"  model on {name}, 95 % intervals: F1 {figures['f1']['text']}, "
                f"precision {figures['precision']['text']}, recall {figures['recall']['text']}"
            )
    audit = summary.get("audit") or {}
    if audit:
        low, high = audit["interval95"]
        wrong = audit.get("wrongAutoAccepted95") or [0, audit["autoAcceptedImages"]]
        print(
            f"  auto-accept audit: {audit['errors']} of {audit['reviewed']} audited images wrong, "
            f"error rate 95 % interval {low:.3f}-{high:.3f}; {wrong[0]}-{wrong[1]} wrong among the "
            f"{audit['autoAcceptedImages']} not audited (95 %)"
        )
        gate = summary.get("gate") or {}
        print(f"  audit gate: {gate.get('decision')}: {gate.get('reason')}")
    thresholds = summary.get("thresholds") or {}
    if thresholds:
        print(f"  recommended for the next run: {json.dumps(thresholds)}")
    for label, reason in (summary.get("threshold_reasons") or {}).items():
        print(f"    no threshold for {label}: {reason}")
    work = summary.get("work") or {}
    if work:
        share = work.get("shareNeedingNoCorrection")
        print(
            f"  objects needing no correction (box tolerance IoU {work.get('boxTolerance')}): "
            f"{share if share is None else f'{share:.1%}'}; corrections per reviewed image: "
            f"{work.get('correctionsPerReviewedImage')}; reviewer seconds per image: "
            f"{work.get('reviewerSecondsPerImage') or 'not reported by the backend'}"
        )
    if summary.get("cost_usd") is not None:
        best, worst = summary.get("cost_per_correct_image_usd") or [None, None]
        per = f"${best or 0:.4f}" if best == worst else f"${best or 0:.4f}-${worst or 0:.4f}"
        print(
            f"  estimated cost: ${summary['cost_usd']:.2f}, {per} per correct image "
            "(list prices, some unconfirmed)"
        )
    training = summary.get("training") or {}
    if training:
        print(
            f"  next version: {training.get('status')}, "
            f"F1 {training.get('previousF1')} -> {training.get('newF1')}"
            + (f"; {training['decision']['reason']}" if training.get("decision") else "")
            + (f" ({training['error']})" if training.get("error") else "")
        )
    print(
        f"  model started by this run: {summary['model_started_by_run']}, "
        f"status at end: {summary['model_status_at_end']}, "
        f"running {summary['model_running_seconds']} s"
    )
    print(f"  labeling jobs: {', '.join(summary['labeling_jobs']) or 'none'}")
    if result.extra.get("reviewers_error"):
        print(f"  emulated Label Studio reviewers failed: {result.extra['reviewers_error']}")
    if summary["status"] != "SUCCEEDED":
        print(f"\nRun:      {out / 'run.json'} (and history.json: every state the execution went through)")
        return 1
    print(
        f"\nManifest: {out / 'output.manifest'} (COCO: {out / 'coco.json'})"
        f"\nReport:   {out / 'report.html'} (and {out / 'report.json'})"
        f"\nSkipped:  {out / 'skipped.jsonl'}"
        f"\nRun:      {out / 'run.json'} (and history.json)"
    )
    return 0 if summary["status"] == "SUCCEEDED" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--out",
            required=True,
            help="folder for output.manifest, report.json, skipped.jsonl, history.json, run.json",
        )
        p.add_argument("--faults", help="JSON file of faults to inject (see localcloud/engine/faults.py)")
        p.add_argument("--input", help="execution input as JSON text, merged over the defaults")
        p.add_argument("--input-file", help="execution input from a JSON file (e.g. events/cli.json)")
        p.add_argument("--backend", choices=["groundtruth", "labelstudio"], help="review backend")
        p.add_argument(
            "--task",
            choices=["detection", "classification"],
            default="detection",
            help="the emulated model's type",
        )
        p.add_argument(
            "--time-scale",
            type=float,
            default=0.002,
            help="Wait/Retry time factor (0.002: a 900 s review poll takes 1.8 s)",
        )
        p.add_argument("--name", default="local-run", help="execution name (becomes the run id)")
        p.add_argument("--timeout", type=float, default=600, help="seconds before giving up on the execution")
        p.add_argument("-v", "--verbose", action="store_true", help="show the functions' logs")

    run = sub.add_parser("run", help="run the workflow on a folder of images")
    run.add_argument("--images", required=True, help="folder of images (uploaded to the local images bucket)")
    run.add_argument(
        "--truth",
        help="Custom Labels manifest with source-refs relative to --images "
        "(what the emulated model and reviewers know)",
    )
    common(run)
    demo = sub.add_parser("demo", help="generate synthetic images and run the workflow on them")
    demo.add_argument("--count", type=int, default=200, help="number of synthetic images")
    demo.add_argument("--data", default="demo-data", help="where to write the synthetic images")
    common(demo)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        import os

        os.environ["LOCALCLOUD_LOG_LEVEL"] = "ERROR"
        # moto's interpreter logs each failed state with its whole parse tree: the run's error, printed
        # in one line at the end, says what happened (-v shows everything).
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's S3 server for Label Studio
    try:
        return _command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line for a person; -v shows the traceback
        if args.verbose:
            raise
        text = str(error).strip().splitlines()
        print(
            f"error: {type(error).__name__}: {text[0] if text else ''} (run again with -v for the details)",
            file=sys.stderr,
        )
        return 1


def _command(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from localcloud.data.dataset import generate

        data = Path(args.data) / args.task
        manifest = data / "truth.manifest"
        if not manifest.exists() or sum(1 for _ in manifest.open()) != args.count:
            print(f"Generating {args.count} synthetic {args.task} images in {data}", flush=True)
            if data.exists():
                shutil.rmtree(data)  # a smaller dataset must not inherit the files of a bigger one
            manifest = generate(data, args.count, task=args.task, exif_fraction=0.05)
        held_out = Path(args.data) / f"{args.task}-heldout"
        held_manifest = held_out / "truth.manifest"
        if not held_manifest.exists():
            held_manifest = generate(held_out, 40, task=args.task, seed=1234)
        return _run(args, data, manifest, held_out_datasets(held_out, held_manifest))
    return _run(args, Path(args.images), Path(args.truth) if args.truth else None)


if __name__ == "__main__":
    sys.exit(main())
