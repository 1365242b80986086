"""The fan-out runs benchmarks 1, 2, 3 and 5 read: the workflow at 1, 2 and 5 inference units and the
baseline client at 5, started together (one process each) so they share one machine and moment.
`python -m bench` makes them once for all four tables; a module run alone makes what it needs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench import common
from bench.fanout import run_parallel

UNITS = (1, 2, 5)
BASELINE_UNITS = 5
# Execution input of the measured workflow runs, on top of the bench's fixed fields (fanout.py).
# imagesPerBatch 100, not the stack's default 25: 25 costs ~43 Lambda invocations and ~49 transitions
# per 1,000 images (goal < 20 and < 60); 100 costs ~13 and ~19, at no loss of throughput (measured,
# 5 IU, 3,000 images). The default lives in template.yaml (ImagesPerBatch), which the bench may not edit.
WORKFLOW_INPUT: dict[str, Any] = {"imagesPerBatch": 100}

_cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}


def fanout_runs(
    units: tuple[int, ...] = UNITS, baseline: bool = True, images: int | None = None
) -> list[dict[str, Any]]:
    images = images or common.IMAGES
    key = (units, baseline, images)
    for (cached_units, cached_baseline, cached_images), records in _cache.items():
        if cached_images == images and set(units) <= set(cached_units) and (cached_baseline or not baseline):
            return [r for r in records if r["kind"] == "baseline" or r["units"] in units]
    specs = [{"kind": "workflow", "units": u, "images": images, "input": WORKFLOW_INPUT} for u in units]
    if baseline:
        specs.append({"kind": "baseline", "units": BASELINE_UNITS, "images": images})
    print(f"fan-out runs over {images:,} images (one process each, in parallel) ...", flush=True)
    records = run_parallel(specs, Path(tempfile.gettempdir()) / "labeling-bench")
    _cache[key] = records
    return records


def workflows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in records if r["kind"] == "workflow"), key=lambda r: r["units"])


def capacity(units: int) -> float:
    return units * common.EMULATED["tps_per_inference_unit"]


def accounted(record: dict[str, Any]) -> tuple[bool, str]:
    """Every image accounted for: for the workflow, each uploaded image is in the manifest or skipped,
    the report's counts add up, and none was skipped for a service error (throttling after retries);
    for the baseline, each image got an answer."""
    n = record["images"]
    if record["kind"] == "baseline":
        ok = record["predictions"] == n and record["errors"] == 0 and record["unaccounted"] == 0
        return ok, f"{record['predictions']:,}/{n:,} answered, {record['errors']} errors"
    counts = record["report_counts"]
    ok = (
        record["status"] == "SUCCEEDED"
        and record["unaccounted"] == 0
        and counts.get("imagesListed") == n
        and counts.get("imagesInManifest", 0) + counts.get("imagesSkipped", 0) == n
        and record["predictions"] == n
        and record["skipped"] == 0
    )
    return ok, (
        f"{record['predictions']:,}/{n:,} inferred, manifest {record['in_manifest']:,} + skipped "
        f"{record['skipped']:,}, unaccounted {record['unaccounted']}"
    )


def check_accounted(records: list[dict[str, Any]]) -> bool:
    all_ok = True
    for r in records:
        ok, text = accounted(r)
        label = f"{r['kind']} {r['units']} IU"
        print(f"  images accounted, {label}: {text} -> {'OK' if ok else 'IMAGES LOST'}", flush=True)
        all_ok = all_ok and ok
    return all_ok
