"""Benchmark 4: scale of the data steps, over 10,000 and 100,000 images.

Review planning = review_plan.plan + groundtruth.plan_jobs (what PlanReviewFunction runs);
manifest building = groundtruth.collect + build_manifest (CollectReviewFunction, BuildManifestFunction).
Every image goes to review (no auto-accept), in Ground Truth jobs of the default 1,000 images, and
every job's output is written as Ground Truth writes it (half the images adjusted, half unadjusted).

One subprocess per size. S3 is moto in process; moto would keep every object it stores in Python
memory, so the subprocess sets MOTO_S3_DEFAULT_KEY_BUFFER_SIZE to 64 KiB (larger objects spill to
disk). Each step runs twice: once for wall time (no tracing), once under tracemalloc, whose peak
minus the traced size at the call's start is the memory the call grew by (our code, plus the small
buffers of moto's request handling). ru_maxrss of the whole process is shown for reference.

    python -m bench.data_steps            # both sizes, table, results
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from bench import common

SIZES = [int(s) for s in os.environ.get("BENCH_DATA_SIZES", "10000,100000").split(",")]
GOAL_SECONDS = 30.0
GOAL_MB = 256.0
BUCKET = "bench-data"
LABELS = ["box", "circle", "triangle"]


def _measure(fn: Any) -> dict[str, float]:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": seconds, "peak_mb": (peak - base) / 2**20}


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
    rng = random.Random(size)
    inventory, part, batch = [], 0, []
    for i in range(size):
        ref = f"s3://images/incoming/img-{i:07d}.jpg"
        inventory.append(json.dumps({"source-ref": ref}))
        batch.append(json.dumps(_prediction(rng, ref)))
        if len(batch) == 100 or i == size - 1:
            uri = layout.predictions_part(part)
            s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=("\n".join(batch) + "\n").encode())
            part, batch = part + 1, []
    s3.put_object(Bucket=BUCKET, Key=layout.inventory.key, Body=("\n".join(inventory) + "\n").encode())


def _answer(s3: Any, jobs: list[dict[str, Any]]) -> None:
    """Ground Truth's output manifest for each job: the input line plus the reviewed boxes."""
    from labeling_loop.groundtruth import DETECTION_ATTRIBUTE, PREDICTIONS_ATTRIBUTE
    from labeling_loop.jsonl import read_jsonl
    from labeling_loop.s3_uri import S3Uri

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


class _SageMaker:
    """DescribeLabelingJob of jobs that completed (the only SageMaker call collect makes)."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self._jobs = {j["jobName"]: j for j in jobs}

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        job = self._jobs[LabelingJobName]
        out = job["outputUri"].rstrip("/") + f"/{LabelingJobName}/manifests/output/output.manifest"
        return {"LabelingJobStatus": "Completed", "LabelingJobOutput": {"OutputDatasetS3Uri": out}}


def measure_size(size: int) -> dict[str, Any]:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(64 * 1024),
        }
    )
    import boto3
    from labeling_loop import groundtruth
    from labeling_loop.build_manifest import build_manifest
    from labeling_loop.jsonl import read_jsonl
    from labeling_loop.layout import RunLayout
    from labeling_loop.review_plan import plan
    from labeling_loop.s3_uri import S3Uri
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        layout = RunLayout.for_run(S3Uri.parse(f"s3://{BUCKET}/runs/"), "bench")
        started = time.perf_counter()
        _seed(s3, layout, size)
        seed_seconds = time.perf_counter() - started
        out: dict[str, Any] = {}

        def planning() -> None:
            summary = plan(s3, layout, requested_task_type="auto", extra_labels=[], auto_accept=None)
            out["plan"] = summary.to_dict()
            out["jobs"] = groundtruth.plan_jobs(
                s3,
                layout,
                read_jsonl(s3, layout.review_tasks),
                task_type=summary.task_type,  # type: ignore[arg-type]
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

        planned = _measure(planning)
        jobs = out["jobs"]
        _answer(s3, jobs)

        def manifest() -> None:
            out["collect"] = groundtruth.collect(s3, _SageMaker(jobs), layout, jobs)
            out["report"] = build_manifest(
                s3,
                layout,
                task_type=out["plan"]["taskType"],
                labels=out["plan"]["labels"],
                images_listed=size,
                run_id="bench",
                backend="groundtruth",
                labeling_jobs=[j["jobName"] for j in jobs],
                job_name="labeling-job/bench",
                now=datetime.now(UTC),
            )

        built = _measure(manifest)
        counts = out["report"]["counts"]
        accounted = counts["imagesInManifest"] + counts["imagesSkipped"]
        return {
            "images": size,
            "seed_seconds": seed_seconds,
            "plan": planned,
            "manifest": built,
            "jobs": len(jobs),
            "to_review": out["plan"]["imagesToReview"],
            "reviewed": out["collect"]["reviewed"],
            "in_manifest": counts["imagesInManifest"],
            "skipped": counts["imagesSkipped"],
            "accounted": accounted,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "warnings": out["report"]["warnings"][:5],
        }


def run(sizes: list[int] = SIZES) -> dict[str, Any]:
    rows, records = [], []
    for size in sizes:
        print(f"  data steps over {size:,} images ...", flush=True)
        proc = subprocess.run(
            [common.python(), "-m", "bench.data_steps", "--size", str(size)],
            cwd=common.REPO,
            env={**os.environ, "PYTHONPATH": f"{common.REPO}:{common.REPO / 'layer'}"},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"data steps at {size} failed:\n{proc.stderr[-3000:]}")
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        records.append(record)
        ok = record["accounted"] == size and record["to_review"] == size
        print(
            f"  {size:,} images: accounted {record['accounted']:,}/{size:,} "
            f"(manifest {record['in_manifest']:,} + skipped {record['skipped']:,}) {'OK' if ok else 'LOST IMAGES'}"
        )
        for step in ("plan", "manifest"):
            rows.append(
                [
                    f"{size:,}",
                    "review planning" if step == "plan" else "manifest building",
                    record[step]["seconds"],
                    record[step]["peak_mb"],
                    record["maxrss_mb"],
                    f"{record['accounted']:,}/{size:,}",
                ]
            )
    peaks = {s: [r[s]["peak_mb"] for r in records] for s in ("plan", "manifest")}
    flat = all(max(v) <= 2 * min(v) + 16 for v in peaks.values())  # "flat": 10x images, < 2x (+16 MB) memory
    passed = (
        all(r["accounted"] == r["images"] and r["to_review"] == r["images"] for r in records)
        and all(
            r[s]["seconds"] < GOAL_SECONDS and r[s]["peak_mb"] < GOAL_MB
            for r in records
            for s in ("plan", "manifest")
        )
        and flat
    )
    md = common.table(
        [
            "images",
            "step",
            "wall s",
            "peak MB (tracemalloc growth)",
            "process max RSS MB",
            "images accounted",
        ],
        rows,
    )
    md += (
        f"\nGoal: each step under {GOAL_SECONDS:g} s and {GOAL_MB:g} MB at 100,000 images, memory flat from 10k "
        f"to 100k (here: the larger size's peak at most 2x + 16 MB of the smaller's). Flat: {'yes' if flat else 'no'}.\n"
        "Peak MB = tracemalloc peak minus the traced size at the call's start, in a second, traced run of the "
        "same step; wall s from the first, untraced run. S3 is moto in process with objects above 64 KiB "
        "spilled to disk, so stored outputs are not counted; max RSS includes Python, boto3, moto and the "
        "seeded predictions.\n"
    )
    common.record("4-data-steps", "4. Scale of the data steps", md, {"runs": records}, passed)
    return {"runs": records, "passed": passed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int)
    args = parser.parse_args(argv)
    if args.size:
        print(json.dumps(measure_size(args.size), default=str))
        return 0
    return 0 if run()["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
