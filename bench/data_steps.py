"""Benchmark 4: scale of the data steps, over 10,000 and 100,000 images.

Review planning = review.plan.plan + review.groundtruth.jobs.plan_jobs (what PlanReviewFunction runs);
manifest building = review.groundtruth.collect.collect + finishing.finish.finish_run
(CollectLabelingJobsFunction, BuildManifestFunction).
Every image goes to review (no auto-accept), in Ground Truth jobs of the default 1,000 images, and
every job's output is written as Ground Truth writes it (half the images adjusted, half unadjusted).

S3 is file-backed by default (bench/fake_s3.py): every object is a file and get_object returns
botocore's own StreamingBody over the open file, so reads stream as they do from AWS S3, which
sends a GET over the socket while the caller reads it. moto's in-process S3 would not do: it keeps
objects in Python memory and materialises a whole object on get_object, and tracemalloc counts
those copies as the step's, so a streaming step looks like it grows with the file size.
BENCH_DATA_S3=moto keeps the moto measurement (all stages in one process per step).

Each (size, step) is measured in a fresh subprocess that only imports the code and runs the step,
so measurements don't mix and the process's high-water mark before the call is just the
interpreter and its imports. Stages run in order in separate subprocesses sharing one S3 directory:
seed (predictions + inventory), plan (measured), answer (Ground Truth output manifests), manifest
(measured). The measured step runs twice: first untraced, for wall time (time.perf_counter) and max
RSS growth (ru_maxrss after the call minus before it: what the call added to the process's peak,
C allocations such as SQLite's page cache included); then under tracemalloc, whose peak minus the
traced size at the call's start is what the call's Python allocations grew by.

    python -m bench.data_steps            # both sizes, table, results
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common

SIZES = [int(s) for s in os.environ.get("BENCH_DATA_SIZES", "10000,100000").split(",")]
S3_KIND = os.environ.get("BENCH_DATA_S3", "file")
GOAL_SECONDS = 30.0
GOAL_MB = 256.0
BUCKET = "bench-data"
LABELS = ["box", "circle", "triangle"]
STATE = "state.json"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _measure(fn: Callable[[], None]) -> dict[str, float]:
    gc.collect()
    rss_before, maxrss_before = _rss_mb(), _maxrss_mb()
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    maxrss_after = _maxrss_mb()
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    fn()
    traced_seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": seconds,
        "peak_mb": (peak - base) / 2**20,
        "rss_growth_mb": maxrss_after - maxrss_before,
        "rss_before_mb": rss_before,
        "maxrss_before_mb": maxrss_before,
        "maxrss_after_mb": maxrss_after,
        "traced_seconds": traced_seconds,
    }


def _prediction(rng: random.Random, ref: str) -> dict[str, Any]:
    labels = []
    for _ in range(rng.randint(0, 4)):
        w, h = rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4)
        labels.append(
            {
                "name": rng.choice(LABELS),
                "confidence": round(rng.uniform(30, 99), 3),
                "box": {"left": rng.uniform(0, 1 - w), "top": rng.uniform(0, 1 - h), "width": w, "height": h},
            }
        )
    return {
        "source-ref": ref,
        "image_size": {"width": 640, "height": 480, "depth": 3},
        "orientation": 1,
        "labels": labels,
    }


def _seed(s3: Any, layout: Any, size: int) -> None:
    """Predictions in parts of 100 (as the inference batches write them) and the inventory."""
    from labeling_loop.kernel.jsonl import JsonlWriter

    rng = random.Random(size)
    part, batch = 0, []
    with JsonlWriter(s3, layout.inventory) as inventory:
        for i in range(size):
            ref = f"s3://images/incoming/img-{i:07d}.jpg"
            inventory.write({"source-ref": ref})
            batch.append(json.dumps(_prediction(rng, ref)))
            if len(batch) == 100 or i == size - 1:
                uri = layout.predictions_part(part)
                s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=("\n".join(batch) + "\n").encode())
                part, batch = part + 1, []


def _answer(s3: Any, jobs: list[dict[str, Any]]) -> None:
    """Ground Truth's output manifest for each job: the input line plus the reviewed boxes."""
    from labeling_loop.kernel.jsonl import read_jsonl
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.review.groundtruth.jobs import DETECTION_ATTRIBUTE, PREDICTIONS_ATTRIBUTE

    rng = random.Random(7)
    for job in jobs:
        lines = []
        for line in read_jsonl(s3, S3Uri.parse(job["inputManifestUri"])):
            body = line[PREDICTIONS_ATTRIBUTE]
            meta = line.get(f"{PREDICTIONS_ATTRIBUTE}-metadata", {})
            adjusted = rng.random() < 0.5
            annotations = [
                {**a, "left": a["left"] + (3 if adjusted else 0)} for a in body.get("annotations", [])
            ]
            lines.append(
                json.dumps(
                    {
                        **line,
                        DETECTION_ATTRIBUTE: {
                            "image_size": body.get("image_size", [{"width": 640, "height": 480, "depth": 3}]),
                            "annotations": annotations,
                        },
                        f"{DETECTION_ATTRIBUTE}-metadata": {
                            "class-map": meta.get("class-map", {str(i): n for i, n in enumerate(LABELS)}),
                            "adjustment-status": "adjusted" if adjusted else "unadjusted",
                            "type": "groundtruth/object-detection",
                            "human-annotated": "yes",
                            "creation-date": "2026-01-01T00:00:00.000000",
                            "job-name": f"labeling-job/{job['jobName']}",
                        },
                    }
                )
            )
        uri = S3Uri.parse(job["outputUri"]).join(job["jobName"], "manifests/output/output.manifest")
        s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=("\n".join(lines) + "\n").encode())


def _s3_client(kind: str, root: Path) -> Any:
    """The S3 client of one subprocess: file-backed under root (shared by the stages' subprocesses)
    or moto in process (a fresh, empty S3: the caller runs every stage in the same process)."""
    if kind == "file":
        from bench.fake_s3 import FileS3

        s3 = FileS3(root / "s3")
    else:
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(64 * 1024),
            }
        )
        import boto3
        from moto import mock_aws

        mock_aws().start()
        s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def run_stages(size: int, stages: list[str], measure: str | None, root: Path, kind: str) -> dict[str, Any]:
    """Run the named stages in this process, measuring `measure`; state passes between processes
    in root/state.json (the plan summary and the job list are small)."""
    from labeling_loop.finishing.finish import finish_run
    from labeling_loop.finishing.settings import FinishSettings
    from labeling_loop.kernel.jsonl import read_jsonl
    from labeling_loop.kernel.layout import RunLayout
    from labeling_loop.kernel.s3_uri import S3Uri
    from labeling_loop.review.groundtruth import collect as groundtruth_collect
    from labeling_loop.review.groundtruth import jobs as groundtruth_jobs
    from labeling_loop.review.selection import PlanSettings, plan

    from bench.fake_s3 import CompletedLabelingJobs

    s3 = _s3_client(kind, root)
    layout = RunLayout.for_run(S3Uri.parse(f"s3://{BUCKET}/runs/"), "bench")
    state_path = root / STATE
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    result: dict[str, Any] = {}

    def planning() -> None:
        summary = plan(s3, layout, PlanSettings())
        state["plan"] = summary.to_dict()
        settings = groundtruth_jobs.JobSettings(
            task_type=summary.task_type,
            labels=summary.labels,
            run_id="bench",
            job_name_prefix="lab",
            max_images_per_job=1000,
            workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
            region="us-east-1",
            verification_pre_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:pre",
            verification_consolidation_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:acs",
            workers_per_object=1,
            task_time_limit_s=300,
            task_availability_s=86_400,
            max_concurrent_tasks=1000,
        )
        state["jobs"] = groundtruth_jobs.plan_jobs(s3, layout, read_jsonl(s3, layout.review_tasks), settings)

    def manifest() -> None:
        jobs = state["jobs"]
        state["collect"] = groundtruth_collect.collect(s3, CompletedLabelingJobs(jobs), layout, jobs)
        settings = FinishSettings(
            layout=layout,
            task_type=state["plan"]["taskType"],
            labels=tuple(state["plan"]["labels"]),
            images_listed=size,
            run_id="bench",
            backend="groundtruth",
            labeling_jobs=tuple(j["jobName"] for j in jobs),
            job_name="labeling-job/bench",
            now=datetime.now(UTC),
        )
        state["report"] = finish_run(s3, settings)

    actions: dict[str, Callable[[], None]] = {
        "seed": lambda: _seed(s3, layout, size),
        "plan": planning,
        "answer": lambda: _answer(s3, state["jobs"]),
        "manifest": manifest,
    }
    for stage in stages:
        if stage == measure:
            result[stage] = _measure(actions[stage])
        else:
            started = time.perf_counter()
            actions[stage]()
            result[f"{stage}_seconds"] = time.perf_counter() - started
    state_path.write_text(json.dumps(state, default=str))
    return result


def _subprocess(size: int, stages: list[str], measure: str | None, root: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            common.python(), "-m", "bench.data_steps", "--size", str(size), "--stages", ",".join(stages),
            "--measure", measure or "", "--root", str(root),
        ],
        cwd=common.REPO,
        env={**os.environ, "PYTHONPATH": f"{common.REPO}:{common.REPO / 'layer'}"},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"data steps at {size} ({','.join(stages)}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_size(size: int, kind: str = S3_KIND) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        root = Path(tmp)
        if kind == "file":  # stages in their own processes, sharing the S3 directory
            prep = _subprocess(size, ["seed"], None, root)
            planned = _subprocess(size, ["plan"], "plan", root)
            _subprocess(size, ["answer"], None, root)
            built = _subprocess(size, ["manifest"], "manifest", root)
        else:  # moto's S3 lives in one process: every stage up to the measured one, in each
            prep = planned = _subprocess(size, ["seed", "plan"], "plan", root)
            built = _subprocess(size, ["seed", "plan", "answer", "manifest"], "manifest", root)
        state = json.loads((root / STATE).read_text())
    counts = state["report"]["counts"]
    return {
        "images": size,
        "s3": kind,
        "seed_seconds": prep["seed_seconds"],
        "plan": planned["plan"],
        "manifest": built["manifest"],
        "jobs": len(state["jobs"]),
        "to_review": state["plan"]["imagesToReview"],
        "reviewed": state["collect"]["reviewed"],
        "in_manifest": counts["imagesInManifest"],
        "skipped": counts["imagesSkipped"],
        "accounted": counts["imagesInManifest"] + counts["imagesSkipped"],
        "job_images": sum(j["objectCount"] for j in state["jobs"]),
        "warnings": state["report"]["warnings"][:5],
    }


def run(sizes: list[int] = SIZES) -> dict[str, Any]:
    rows, records = [], []
    for size in sizes:
        print(f"  data steps over {size:,} images (S3: {S3_KIND}) ...", flush=True)
        record = measure_size(size)
        records.append(record)
        ok = record["accounted"] == size and record["to_review"] == size and record["job_images"] == size
        print(
            f"  {size:,} images: accounted {record['accounted']:,}/{size:,} "
            f"(manifest {record['in_manifest']:,} + skipped {record['skipped']:,}) "
            f"{'OK' if ok else 'LOST IMAGES'}",
            flush=True,
        )
        for step in ("plan", "manifest"):
            m = record[step]
            rows.append(
                [
                    f"{size:,}",
                    "review planning" if step == "plan" else "manifest building",
                    m["seconds"],
                    m["peak_mb"],
                    m["rss_growth_mb"],
                    m["maxrss_after_mb"],
                    f"{record['accounted']:,}/{size:,}",
                ]
            )
    metrics = ("peak_mb", "rss_growth_mb")
    series = {(s, k): [r[s][k] for r in records] for s in ("plan", "manifest") for k in metrics}
    flat = all(max(v) <= 2 * min(v) + 16 for v in series.values())  # 10x images, < 2x (+16 MB) memory
    passed = (
        all(
            r["accounted"] == r["images"] and r["to_review"] == r["images"] and r["job_images"] == r["images"]
            for r in records
        )
        and all(
            r[s]["seconds"] < GOAL_SECONDS and r[s]["peak_mb"] < GOAL_MB and r[s]["maxrss_after_mb"] < GOAL_MB
            for r in records
            for s in ("plan", "manifest")
        )
        and flat
    )
    how = (
        "S3 file-backed (bench/fake_s3.py: objects are files, get_object streams them through botocore's "
        "StreamingBody, as AWS S3 streams a GET)"
        if S3_KIND == "file"
        else "S3 is moto in process (objects above 64 KiB spilled to disk, but get_object materialises the "
        "whole object, and tracemalloc counts it)"
    )
    md = common.table(
        [
            "images",
            "step",
            "wall s",
            "tracemalloc peak MB",
            "max RSS growth MB",
            "process max RSS MB",
            "images accounted",
        ],
        rows,
    )
    md += (
        f"\nGoal: each step under {GOAL_SECONDS:g} s and {GOAL_MB:g} MB at 100,000 images, memory flat from "
        f"10k to 100k (here: the larger size's tracemalloc peak and RSS growth each at most 2x + 16 MB of "
        f"the smaller's). Flat: {'yes' if flat else 'no'}.\n"
        f"{how}. Each step runs in a fresh subprocess that only imports the code and calls it: wall s and "
        "max RSS growth (ru_maxrss after the call minus before it) from a first, untraced call; tracemalloc "
        "peak = peak minus the traced size at the call's start, from a second, traced call. Process max RSS "
        "is the whole subprocess's high-water mark (Python, botocore and the step).\n"
    )
    common.record("4-data-steps", "4. Scale of the data steps", md, {"s3": S3_KIND, "runs": records}, passed)
    return {"runs": records, "passed": passed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int)
    parser.add_argument("--stages", default="")
    parser.add_argument("--measure", default="")
    parser.add_argument("--root")
    args = parser.parse_args(argv)
    if args.size:
        result = run_stages(args.size, args.stages.split(","), args.measure or None, Path(args.root), S3_KIND)
        print(json.dumps(result, default=str))
        return 0
    return 0 if run()["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
