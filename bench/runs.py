"""The fan-out runs benchmarks 1, 2, 3 and 5 read, made once and side by side (`run_scheduled`):

- the workflow at every size (BENCH_SIZES: 300, 1,500, 20,000 images) x inference units (1, 2, 5) x
  AWS-like per-call latency (50, 200, 500 ms at 5 TPS per unit), and the emulator's speed before this
  work (5 TPS and 500 ms at scale 2.4: 12 TPS, 208 ms);
- the feedback solution's client at 5 units over 1,500 images, at both speeds of the 500 ms model.

Time scale: 300 and 1,500 images run at the AWS-like speed (k = 1); 20,000 images at k = 10 / units
(50 calls/s whatever the units), so that a run takes minutes and the one-process local cloud is not the
limit. The scaled runs keep calls in flight = TPS x latency, which is what the flow control must match.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bench import common
from bench.fanout import run_scheduled

BASELINE_UNITS = 5
BASELINE_IMAGES = 1_500
# Images/s the runs side by side may ask of the machine (2 cores, shared).
BUDGET = float(os.environ.get("BENCH_BUDGET", "100"))
SCALED_CAPACITY = 50.0  # calls/s of a time-scaled run

_cache: dict[str, list[dict[str, Any]]] = {}


def scale_for(images: int, units: int, tps: float) -> float:
    if images < 20_000:
        return 1.0
    return max(1.0, SCALED_CAPACITY / (units * tps))


def spec(kind: str, images: int, units: int, latency: float, scale: float | None = None) -> dict[str, Any]:
    tps = common.AWS_LIKE["tps_per_inference_unit"]
    emulator = scale is not None
    k = scale if emulator else scale_for(images, units, tps)
    speed = f"{tps:g} TPS, {latency * 1000:g} ms" + (f" (emulator x{k:g})" if emulator else "")
    return {
        "kind": kind,
        "images": images,
        "units": units,
        "tps": tps,
        "latency": latency,
        "scale": k,
        "model": speed,
        "label": f"{kind} {images} images {units} IU {speed} k={k:g}",
    }


def matrix() -> list[dict[str, Any]]:
    specs = []
    for images in common.SIZES:
        for units in common.UNITS:
            for latency in common.LATENCIES:
                specs.append(spec("workflow", images, units, latency))
            specs.append(spec("workflow", images, units, 0.5, common.EMULATOR_SCALE))
    for scale in (None, common.EMULATOR_SCALE):
        specs.append(spec("baseline", BASELINE_IMAGES, BASELINE_UNITS, 0.5, scale))
    return specs


WORKDIR = common.REPO / ".localcloud" / "bench"  # this checkout's own (other checkouts share /tmp)
SAVED = WORKDIR / "matrix.json"


def fanout_runs() -> list[dict[str, Any]]:
    """Every run of the matrix, made once per process (BENCH_REUSE=1: the last matrix's records, to
    render the tables again without running it)."""
    if "matrix" not in _cache:
        if os.environ.get("BENCH_REUSE") and SAVED.exists():
            _cache["matrix"] = json.loads(SAVED.read_text())
            return _cache["matrix"]
        specs = matrix()
        print(f"{len(specs)} fan-out runs, side by side within {BUDGET:g} images/s ...", flush=True)
        _cache["matrix"] = run_scheduled(specs, WORKDIR, BUDGET)
        SAVED.write_text(json.dumps(_cache["matrix"]))
    return _cache["matrix"]


def workflows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (r for r in records if r["kind"] == "workflow"),
        key=lambda r: (r["images"], r["units"], r["scale"] == common.EMULATOR_SCALE, r["latency"]),
    )


def capacity(record: dict[str, Any]) -> float:
    """The model's calls per second on the AWS-like clock."""
    return float(record["units"] * record["tps"])


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
        print(f"  images accounted, {r['label']}: {text} -> {'OK' if ok else 'IMAGES LOST'}", flush=True)
        all_ok = all_ok and ok
    return all_ok
