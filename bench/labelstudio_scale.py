"""Benchmark 6: the Label Studio backend at scale (BENCH_LS_SIZES, default 1,000 and 10,000 tasks),
projected to 100,000: each step of LabelStudioReviewFunction against a real Label Studio server
(label-studio 1.23.2, SQLite, on loopback), its time and memory against the function's limits
(900 s, 512 MB, template.yaml).

Steps, as the state machine calls them:
- create: the project, its S3 storage, the chunked import of review/tasks.jsonl (IMPORT_CHUNK tasks per
  request) and the task-id map read back (a page of 1,000 at a time);
- poll: one check of the review (the project's counters), before and after the tasks are answered;
- collect: the chunked export (EXPORT_CHUNK task ids per request), streamed into review/reviewed.jsonl.
Between the polls the reviewers accept every pre-annotation at once (Label Studio's data manager action
"predictions_to_annotations", not part of the workflow, timed for the record).

Each size runs in a fresh subprocess, twice: an untraced run (wall time, max RSS growth) and a traced
one on a second project (tracemalloc peak of each step). The product's S3 is file-backed
(bench/fake_s3.py) so reads stream as from AWS S3; Label Studio reads its S3 storage from moto's
server. The projection to 100,000 scales each step's time linearly from the largest size measured
(import and export are one request per chunk; the task-id map one per page), and extends memory on
the line through the two largest sizes: every step holds one chunk or page at a time, plus the run's
task-id map and the exported ids (~100 bytes per task), which grow with the tasks.

    python -m bench.labelstudio_scale
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench import common
from bench.data_steps import _maxrss_mb

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

SIZES = [int(s) for s in os.environ.get("BENCH_LS_SIZES", "1000,10000").split(",")]
PROJECTION = 100_000
LAMBDA_SECONDS = 900
LAMBDA_MB = 512
BUCKET = "bench-output"
IMAGES_BUCKET = "bench-images"
LABELS = ["box", "circle", "triangle"]


def _tasks(size: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Review tasks as PlanReview writes them: detection, 640x480, 1-3 predicted boxes each (made
    one at a time, so seeding does not raise the process's high-water mark before the steps)."""
    rng = random.Random(seed)
    for i in range(size):
        boxes = []
        for _ in range(rng.randint(1, 3)):  # (a task without a prediction has nothing to accept)
            w, h = rng.uniform(20, 200), rng.uniform(20, 200)
            boxes.append(
                {
                    "label": rng.choice(LABELS),
                    "confidence": round(rng.uniform(40, 99), 2),
                    "box": {
                        "left": rng.uniform(0, 640 - w),
                        "top": rng.uniform(0, 480 - h),
                        "width": w,
                        "height": h,
                    },
                }
            )
        yield {
            "source-ref": f"s3://{IMAGES_BUCKET}/photos/img-{i:06d}.jpg",
            "taskType": "detection",
            "image_size": {"width": 640, "height": 480, "depth": 3},
            "predictions": boxes,
        }


def _step(fn: Callable[[], Any], traced: bool) -> tuple[Any, dict[str, float]]:
    gc.collect()
    maxrss_before = _maxrss_mb()
    if traced:
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    figures = {"seconds": seconds, "rss_growth_mb": _maxrss_mb() - maxrss_before, "maxrss_mb": _maxrss_mb()}
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        figures["peak_mb"] = (peak - base) / 2**20
    return result, figures


class _CountingClient:
    """The product's Label Studio client, counting requests and the bytes of JSON they returned."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.requests = 0
        self.received = 0
        original = client.request

        def counted(method: str, path: str, **kwargs: Any) -> Any:
            self.requests += 1
            result = original(method, path, **kwargs)
            self.received += len(json.dumps(result)) if result is not None else 0
            return result

        client.request = counted

    def take(self) -> dict[str, int]:
        figures = {"requests": self.requests, "received_bytes": self.received}
        self.requests = self.received = 0
        return figures


def measure_run(url: str, token: str, size: int, root: Path, run_id: str, traced: bool) -> dict[str, Any]:
    from datetime import UTC, datetime

    from labeling_loop.kernel.jsonl import JsonlWriter
    from labeling_loop.kernel.layout import RunLayout
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.review.labelstudio import project
    from labeling_loop.review.labelstudio.client import LabelStudioClient

    from bench.fake_s3 import FileS3

    s3 = cast("S3Client", FileS3(root))  # a stand-in: FileS3 has the part of S3Client the steps call
    s3.create_bucket(Bucket=BUCKET)
    layout = RunLayout.for_run(S3Uri(BUCKET, "runs/"), run_id)
    with JsonlWriter(s3, layout.review_tasks) as writer:
        writer.write_all(_tasks(size))
    ls = LabelStudioClient(url, token)
    counter = _CountingClient(ls)
    steps: dict[str, Any] = {}

    def create() -> dict[str, Any]:
        return project.create_review(
            s3,
            ls,
            layout,
            project.ProjectSettings(
                run_id=run_id,
                execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:bench:{run_id}",
                task_type="detection",
                labels=LABELS,
                images_bucket=IMAGES_BUCKET,
                images_prefix="photos/",
                s3_storage={"region": "us-east-1", "endpoint_url": None},
                title=f"bench {run_id}",
            ),
        )

    state, steps["create"] = _step(create, traced)
    steps["create"].update(counter.take())

    def poll() -> dict[str, Any]:
        return project.check_review(ls, state, deadline_hours=240, now=datetime.now(UTC))

    before, steps["poll (open)"] = _step(poll, traced)
    steps["poll (open)"].update(counter.take())
    started = time.perf_counter()
    ls.post(
        "/api/dm/actions",
        {"selectedItems": {"all": True, "excluded": []}},
        params={"id": "predictions_to_annotations", "project": state["projectId"]},
    )
    answering = time.perf_counter() - started
    counter.take()
    after, steps["poll (answered)"] = _step(poll, traced)
    steps["poll (answered)"].update(counter.take())
    summary, steps["collect"] = _step(lambda: project.collect_review(s3, ls, layout, state), traced)
    steps["collect"].update(counter.take())
    reviewed = s3.head_object(Bucket=BUCKET, Key=layout.reviewed.key)["ContentLength"]
    return {
        "size": size,
        "traced": traced,
        "steps": steps,
        "answer_all_seconds": answering,
        "open_poll": {k: before[k] for k in ("total", "annotated", "done")},
        "answered_poll": {k: after[k] for k in ("total", "annotated", "done")},
        "collected": summary,
        "reviewed_bytes": reviewed,
        "tasks_bytes": s3.head_object(Bucket=BUCKET, Key=layout.review_tasks.key)["ContentLength"],
    }


def _child(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="ls-bench-"))
    result = {
        "untraced": measure_run(args.url, args.token, args.size, root, f"ls-{args.size}-a", traced=False),
        "traced": measure_run(args.url, args.token, args.size, root, f"ls-{args.size}-b", traced=True),
    }
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))


def _measure_size(url: str, token: str, size: int, workdir: Path) -> dict[str, Any]:
    out = workdir / f"ls-{size}.json"
    args = [common.python(), "-m", "bench.labelstudio_scale", "--child", "--size", str(size)]
    args += ["--url", url, "--token", token, "--out", str(out)]
    env = {
        **os.environ,
        "PYTHONPATH": f"{common.REPO}:{common.REPO / 'layer'}",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    subprocess.run(args, cwd=common.REPO, env=env, check=True)
    return dict(json.loads(out.read_text()))


def _with_server(fn: Callable[[str, str, Path], Any]) -> Any:
    import boto3
    from moto.server import ThreadedMotoServer

    from localcloud.services.labelstudio.server import running_labelstudio

    workdir = Path(tempfile.mkdtemp(prefix="ls-bench-server-"))
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    try:
        host, port = moto_server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        s3.create_bucket(Bucket=IMAGES_BUCKET)
        # Label Studio checks that the storage's prefix holds an object before it connects it.
        s3.put_object(Bucket=IMAGES_BUCKET, Key="photos/img-000000.jpg", Body=b"\xff\xd8\xff")
        with running_labelstudio(workdir, s3_endpoint=endpoint) as server:
            return fn(server.url, server.token, workdir)
    finally:
        moto_server.stop()


def _row(size: int | str, step: str, untraced: dict[str, Any], traced: dict[str, Any] | None) -> list[Any]:
    return [
        size,
        step,
        untraced["seconds"],
        untraced.get("requests", "-"),
        f"{untraced.get('received_bytes', 0) / 2**20:.2f}" if untraced.get("received_bytes") else "-",
        "-" if traced is None else traced["peak_mb"],
        untraced["rss_growth_mb"],
        untraced["maxrss_mb"],
    ]


def _linear(results: list[dict[str, Any]], run: str, step: str, key: str) -> float:
    """A step's figure at PROJECTION, on the line through the two largest sizes (the figure itself
    when one size was measured, or when it shrank)."""
    last = results[-1][run]
    if len(results) < 2:
        return float(last["steps"][step][key])
    before = results[-2][run]
    slope = (last["steps"][step][key] - before["steps"][step][key]) / (last["size"] - before["size"])
    return float(last["steps"][step][key] + max(0.0, slope) * (PROJECTION - last["size"]))


def run(sizes: list[int] = SIZES) -> dict[str, Any]:
    results = _with_server(lambda url, token, workdir: [_measure_size(url, token, n, workdir) for n in sizes])
    rows, passed = [], True
    for result in results:
        plain, traced = result["untraced"], result["traced"]
        for step, figures in plain["steps"].items():
            rows.append(_row(plain["size"], step, figures, traced["steps"][step]))
        collected = plain["collected"]
        passed = passed and collected["reviewed"] == plain["size"] and plain["answered_poll"]["done"]
        passed = passed and all(
            f["seconds"] < LAMBDA_SECONDS and f["maxrss_mb"] < LAMBDA_MB for f in plain["steps"].values()
        )
    largest = results[-1]["untraced"]
    factor = PROJECTION / largest["size"]
    for step, figures in largest["steps"].items():
        projected = {
            "seconds": figures["seconds"] * factor,
            "requests": round(figures["requests"] * factor),
            "received_bytes": figures["received_bytes"] * factor,
            "rss_growth_mb": figures["rss_growth_mb"],
            "maxrss_mb": figures["maxrss_mb"],
        }
        rows.append(
            _row(f"{PROJECTION:,} (projected)", step, projected, results[-1]["traced"]["steps"][step])
        )
        if step in ("create", "collect"):
            passed = passed and projected["seconds"] < LAMBDA_SECONDS
    md = common.table(
        [
            "tasks",
            "step",
            "wall s",
            "requests",
            "JSON received MB",
            "tracemalloc peak MB",
            "max RSS growth MB",
            "process max RSS MB",
        ],
        rows,
    )
    extra = "; ".join(
        f"{r['untraced']['size']:,} tasks: all answered in {r['untraced']['answer_all_seconds']:.1f} s, "
        f"review/tasks.jsonl {r['untraced']['tasks_bytes'] / 2**20:.2f} MB, review/reviewed.jsonl "
        f"{r['untraced']['reviewed_bytes'] / 2**20:.2f} MB, {r['untraced']['collected']['reviewed']:,} reviewed"
        for r in results
    )
    md += (
        f"\nLimits: {LAMBDA_SECONDS} s and {LAMBDA_MB} MB (LabelStudioReviewFunction). Steps of the workflow; "
        f"the reviewers' answers (accept every pre-annotation, one data manager action) are not a step: {extra}. "
        "Projection: time x 100,000 / the largest size, memory on the line through the two sizes. Measured "
        "on this 2-core machine with the Label Studio server (SQLite) on the same cores; a hosted Label Studio "
        "with PostgreSQL answers faster. Goal: every step within the limits, every task collected.\n"
    )
    common.record("6-labelstudio-scale", "6. Label Studio at scale", md, {"results": results}, passed)
    return {"passed": passed, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--size", type=int)
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    return 0 if run()["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
