"""One measured run in its own process (the local cloud is one per process): the whole workflow, or
the baseline client, over N identical tiny JPEGs, for an AWS-like model (TPS per inference unit,
latency per call) at a time scale k (common.emulated).

    python -m bench.fanout '{"kind": "workflow", "images": 1500, "units": 5, "tps": 5, "latency": 0.2, "scale": 1}' out.json

`run_scheduled` starts many of these side by side, so runs compared in a table share one machine and
one moment. Emulator side: the bench wraps the Custom Labels emulator to time-stamp every answered
DetectCustomLabels call (the inference phase), and gives it a service-side reader of the images the
bench uploaded, because on AWS Rekognition reads S3 on its own CPU, not on the caller's. It also
records what each invocation of the inference function returned (its flow state), to show the calls
in flight the flow control kept against the model's capacity x latency.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench import common

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

IMAGES_PREFIX = "incoming/"


def tiny_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 80, 40)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class _ServiceSideS3:
    """The emulator's S3 reads answered from the bytes the bench uploaded (one object, many keys);
    unknown keys go to moto as before, so a missing image still fails like on AWS."""

    def __init__(self, real: Any, bucket: str, keys: set[str], data: bytes) -> None:
        self._real, self._bucket, self._keys, self._data = real, bucket, keys, data

    def get_object(self, Bucket: str, Key: str, **kwargs: Any) -> dict[str, Any]:
        if Bucket == self._bucket and Key in self._keys and not kwargs:
            return {"ContentLength": len(self._data), "Body": io.BytesIO(self._data)}
        return self._real.get_object(Bucket=Bucket, Key=Key, **kwargs)


class _DetectClock:
    """First call and last answer of DetectCustomLabels, on the emulator's monotonic clock."""

    def __init__(self, emulator: Any) -> None:
        self.first_call: float | None = None
        self.last_answer: float | None = None
        self._lock = threading.Lock()
        handle = emulator.handle

        def timed(operation: str, params: dict[str, Any]) -> dict[str, Any]:
            if operation != "DetectCustomLabels":
                return handle(operation, params)
            started = time.monotonic()
            with self._lock:
                if self.first_call is None:
                    self.first_call = started
            response = handle(operation, params)
            with self._lock:
                self.last_answer = time.monotonic()
            return response

        emulator.handle = timed


def _config(spec: dict[str, Any]) -> Any:
    from localcloud.engine.cloud import LocalCloudConfig
    from localcloud.services.custom_labels import CustomLabelsConfig
    from localcloud.services.groundtruth import GroundTruthConfig

    e = common.emulated(spec["tps"], spec["latency"], spec["scale"])
    return LocalCloudConfig(
        time_scale=1.0 / spec["scale"],
        rekognition=CustomLabelsConfig(
            start_latency_s=e["start_latency_s"],
            stop_latency_s=e["stop_latency_s"],
            tps_per_inference_unit=e["tps_per_inference_unit"],
            detect_latency_s=e["detect_latency_s"],
            # The model's burst (the token bucket) lasts one AWS-like second whatever the scale.
            burst_s=1.0 / spec["scale"],
        ),
        groundtruth=GroundTruthConfig(job_latency_s=e["labeling_job_latency_s"], annotator_accuracy=0.97),
    )


class _Invocations:
    """What every invocation of the inference function returned: its progress and flow state."""

    def __init__(self) -> None:
        from labeling_loop.inference import batch

        self.records: list[dict[str, Any]] = []
        original = batch.run_batch

        def recorded(*args: Any, **kwargs: Any) -> Any:
            progress = original(*args, **kwargs)
            self.records.append(
                {"batchId": kwargs["batch"].batch_id, "done": progress.done, **(progress.flow or {})}
            )
            return progress

        batch.run_batch = recorded  # before the handler module imports it


def _upload(cloud: Any, bucket: str, count: int, data: bytes) -> tuple[list[str], set[str]]:
    from localcloud.data.truth import Truth, TruthBox

    keys, truth = [], {}
    for i in range(count):
        key = f"{IMAGES_PREFIX}img-{i:06d}.jpg"
        cloud.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
        ref = f"s3://{bucket}/{key}"
        truth[ref] = Truth(ref, 64, 64, [TruthBox("box", 12, 12, 30, 30)], ["box"])
        keys.append(key)
    cloud.add_truth(truth)
    return keys, set(keys)


def run_workflow(spec: dict[str, Any]) -> dict[str, Any]:
    from localcloud.engine import interpreter
    from localcloud.engine.cloud import LocalCloud
    from localcloud.runner import execute, wait_for_model_stopped

    units, images, scale = spec["units"], spec["images"], spec["scale"]
    data = tiny_jpeg()
    invocations = _Invocations()
    with LocalCloud(_config(spec)) as cloud:
        # The stack lets runs ask for the units measured (its default limit is 5).
        stack = cloud.deploy({"InferenceUnitsLimit": str(max(5, units))})
        keys, key_set = _upload(cloud, stack.images_bucket, images, data)
        arn = cloud.add_model("detection")
        # A stand-in: _ServiceSideS3 answers the emulator's S3 reads.
        cloud.rekognition._s3 = cast("S3Client", _ServiceSideS3(cloud.s3, stack.images_bucket, key_set, data))
        clock = _DetectClock(cloud.rekognition)
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "minInferenceUnits": units,
            "modelPollSeconds": common.MODEL_POLL_SECONDS,
            "reviewPollSeconds": common.REVIEW_POLL_SECONDS,
            "reviewDeadlineHours": 24,
            # Most images skip review, so the run measures the fan-out, not the emulated annotators.
            "minConfidence": 1,
            "autoAcceptConfidence": 1,
        }
        transitions_before = interpreter.counters.state_transitions
        result = execute(cloud, stack, arn, run_input, f"bench-{units}iu", timeout=10_800)
        transitions = interpreter.counters.state_transitions - transitions_before
        wait_for_model_stopped(cloud, arn, timeout=600)
        meter = cloud.rekognition.meter(arn)
        s = result.summary
        inferred = sum(1 for _ in _predictions(cloud, result.run_prefix))
        skipped_reasons: dict[str, int] = {}
        for record in result.skipped:
            skipped_reasons[record.get("reason", "?")] = skipped_reasons.get(record.get("reason", "?"), 0) + 1
        manifest_refs = {line["source-ref"] for line in result.manifest}
        skipped_refs = {line["source-ref"] for line in result.skipped}
        uploaded = {f"s3://{stack.images_bucket}/{k}" for k in keys}
        # Seconds go back on the AWS-like clock: x scale.
        return {
            **spec,
            "kind": "workflow",
            "status": s["status"],
            "error": s["error"],
            "input": {k: v for k, v in run_input.items() if k not in ("projectVersionArn", "images")},
            "wall_seconds": s["wall_seconds"],
            "inference_seconds": ((clock.last_answer or 0) - (clock.first_call or 0)) * scale,
            "first_detect_after_s": ((clock.first_call or 0) - meter["intervals"][0][0]) * scale
            if meter["intervals"]
            else None,
            "running_seconds": meter["running_seconds"] * scale,
            "billed_seconds": meter["billed_seconds"] * scale,
            "detect_calls": meter["detect_calls"],
            "detect_answered": meter["detect_answered"],
            "throttled_calls": meter["throttled_calls"],
            "not_ready_calls": meter["not_ready_calls"],
            "start_calls": meter["start_calls"],
            "stop_calls": meter["stop_calls"],
            "model_status_at_end": meter["status"],
            "state_transitions": transitions,
            "lambda_invocations": s["lambda_invocations"],
            "lambda_by_function": result.lambda_invocations,
            "report_counts": result.report.get("counts", {}),
            "predictions": inferred,
            "in_manifest": len(manifest_refs),
            "skipped": len(skipped_refs),
            "skipped_by_reason": skipped_reasons,
            "unaccounted": len(uploaded - manifest_refs - skipped_refs),
            "labeling_jobs": len(result.labeling_jobs),
            "invocations": invocations.records,
        }


def _predictions(cloud: Any, run_prefix: str) -> Any:
    bucket, _, prefix = run_prefix.removeprefix("s3://").partition("/")
    for page in cloud.s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix + "predictions/"
    ):
        for obj in page.get("Contents", []):
            body = cloud.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            yield from (line for line in body.splitlines() if line.strip())


def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """The feedback solution's client: one process, start the model, wait until RUNNING, infer in
    lock-step batches of 3 with 3 threads, stop the model. Calls DetectCustomLabels only (it reads
    no image header), with boto3's default retries."""
    import boto3

    from localcloud.engine.cloud import LocalCloud

    units, images, scale = spec["units"], spec["images"], spec["scale"]
    data = tiny_jpeg()
    cfg = _config(spec)
    with LocalCloud(cfg) as cloud:
        bucket = cfg.images_bucket
        cloud.s3.create_bucket(Bucket=bucket)
        _keys, key_set = _upload(cloud, bucket, images, data)
        arn = cloud.add_model("detection")
        cloud.rekognition._s3 = cast("S3Client", _ServiceSideS3(cloud.s3, bucket, key_set, data))
        clock = _DetectClock(cloud.rekognition)
        rekognition = boto3.client("rekognition", region_name=cfg.region)
        s3 = boto3.client("s3", region_name=cfg.region)
        started = time.monotonic()
        listed = [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=IMAGES_PREFIX)
            for obj in page.get("Contents", [])
        ]
        project_arn = arn.split("/version/")[0]
        project_arn = cloud.rekognition.project_arn("shapes")
        rekognition.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=units)
        poll = common.MODEL_POLL_SECONDS / scale
        while True:
            described = rekognition.describe_project_versions(ProjectArn=project_arn)[
                "ProjectVersionDescriptions"
            ]
            status = next(d["Status"] for d in described if d["ProjectVersionArn"] == arn)
            if status == "RUNNING":
                break
            if status not in ("STARTING",):
                raise RuntimeError(f"model {status}")
            time.sleep(poll)
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}

        def detect(key: str) -> None:
            try:
                results[key] = rekognition.detect_custom_labels(
                    ProjectVersionArn=arn,
                    Image={"S3Object": {"Bucket": bucket, "Name": key}},
                    MinConfidence=1,
                )["CustomLabels"]
            except Exception as error:  # the baseline records and goes on
                errors[key] = type(error).__name__

        with ThreadPoolExecutor(max_workers=3) as pool:
            for i in range(0, len(listed), 3):
                list(pool.map(detect, listed[i : i + 3]))  # lock-step: the next 3 wait for all 3
        rekognition.stop_project_version(ProjectVersionArn=arn)
        wall = time.monotonic() - started
        from localcloud.runner import wait_for_model_stopped

        wait_for_model_stopped(cloud, arn, timeout=120)
        meter = cloud.rekognition.meter(arn)
        return {
            **spec,
            "kind": "baseline",
            "status": "SUCCEEDED" if not errors and len(results) == images else "INCOMPLETE",
            "wall_seconds": wall,
            "inference_seconds": ((clock.last_answer or 0) - (clock.first_call or 0)) * scale,
            "running_seconds": meter["running_seconds"] * scale,
            "billed_seconds": meter["billed_seconds"] * scale,
            "detect_calls": meter["detect_calls"],
            "detect_answered": meter["detect_answered"],
            "throttled_calls": meter["throttled_calls"],
            "model_status_at_end": meter["status"],
            "predictions": len(results),
            "errors": len(errors),
            "unaccounted": images - len(results) - len(errors),
        }


# ------------------------------------------------------------------------------ scheduled runs


def weight(spec: dict[str, Any]) -> float:
    """The images/s a run asks of the machine (its emulated capacity, or the baseline's ceiling)."""
    capacity = spec["units"] * spec["tps"] * spec["scale"]
    if spec["kind"] == "baseline":  # 3 calls in flight at a time
        capacity = min(capacity, 3 / (spec["latency"] / spec["scale"]))
    return capacity


def duration(spec: dict[str, Any]) -> float:
    """Its expected wall seconds: start, inference, a review and a stop, on the emulated clock."""
    e = common.emulated(spec["tps"], spec["latency"], spec["scale"])
    return e["start_latency_s"] + spec["images"] / weight(spec) + 2 * e["labeling_job_latency_s"]


def run_scheduled(specs: list[dict[str, Any]], tmp: Path, budget: float) -> list[dict[str, Any]]:
    """Run every spec in its own process, the longest first, as many at once as keep the sum of
    their weights within `budget` images/s (the one-process local cloud tops out near 90 images/s
    per core); return the records in spec order."""
    tmp.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(specs)), key=lambda i: -duration(specs[i]))
    running: dict[int, tuple[subprocess.Popen[bytes], Path, Any]] = {}
    records: dict[int, dict[str, Any]] = {}
    env = {
        **os.environ,
        "LOCALCLOUD_LOG_LEVEL": "ERROR",
        "PYTHONPATH": f"{common.REPO}:{common.REPO / 'layer'}",
    }
    while order or running:
        load = sum(weight(specs[i]) for i in running)
        for index in list(order):  # the longest first; shorter ones fill what the budget leaves
            if running and load + weight(specs[index]) > budget:
                continue
            order.remove(index)
            out, log = tmp / f"run-{index}.json", (tmp / f"run-{index}.log").open("w")
            out.unlink(missing_ok=True)
            args = [common.python(), "-m", "bench.fanout", json.dumps(specs[index]), str(out)]
            proc = subprocess.Popen(args, cwd=common.REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            running[index] = (proc, out, log)
            load += weight(specs[index])
            print(f"  started {specs[index]['label']} ({len(order)} waiting)", flush=True)
        time.sleep(1.0)
        for index, (proc, out, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[index]
            if proc.returncode != 0 or not out.exists():
                raise RuntimeError(f"run {specs[index]} failed (exit {proc.returncode}); see {log.name}")
            records[index] = json.loads(out.read_text())
            print(f"  finished {specs[index]['label']} in {records[index]['wall_seconds']:.0f} s", flush=True)
    return [records[i] for i in range(len(specs))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", help="JSON: kind, images, units, tps, latency, scale, label")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    for name in ("moto", "botocore", "localcloud", "labeling_loop"):
        logging.getLogger(name).setLevel(logging.ERROR)
    spec = json.loads(args.spec)
    record = run_workflow(spec) if spec["kind"] == "workflow" else run_baseline(spec)
    Path(args.out).write_text(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
