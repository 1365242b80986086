"""One invocation's share of a fan-out batch: the next images of the batch's slice of inventory.jsonl,
inferred by up to flow.MAX_IN_FLIGHT threads through the batch's flow control, until the slice is done
or the invocation's time runs short.

A batch may outlast one Lambda invocation (15 minutes, docs/aws-facts.md §4.12): the invocation stops
taking images RESERVE_S before its end, finishes those under way, and returns its progress (how many
of the batch's images are done, and the learned rate); the child execution calls the function again
with it. The images done are always a prefix of the slice, so the next invocation starts right after
them. An invocation writes one predictions part and one skips part named by where it started, so a
retried invocation rewrites the same two objects.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from labeling_loop.inference import flow_hooks
from labeling_loop.inference.batch_progress import BatchProgress
from labeling_loop.inference.detect import predict_one
from labeling_loop.inference.flow import MAX_IN_FLIGHT, Limiter, RateEstimate
from labeling_loop.inference.shared_rate import SharedRate, balancing
from labeling_loop.kernel.jsonl import JsonlWriter, read_lines
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.run_config import RunConfig

if TYPE_CHECKING:
    from types_boto3_rekognition import RekognitionClient
    from types_boto3_s3 import S3Client

# Stop taking images this long before the invocation's end: enough for the calls under way (with
# botocore's retries) and for writing the two parts.
RESERVE_S = 120.0


@dataclass(frozen=True)
class BatchItem:
    """A Distributed Map item (plan.Batch.to_dict)."""

    batch_id: int
    first: int
    count: int
    calls_per_second: float
    calls_in_flight: float
    batches: int = 1  # in the run

    @classmethod
    def of(cls, item: dict[str, Any]) -> BatchItem:
        return cls(
            int(item["batchId"]),
            int(item["first"]),
            int(item["count"]),
            float(item["callsPerSecond"]),
            float(item["callsInFlight"]),
            int(item.get("batches", 1)),
        )


@dataclass(frozen=True)
class Progress:
    """How far a batch got: `done` images of its slice (a prefix), and the flow state to resume."""

    done: int = 0
    inferred: int = 0
    skipped: int = 0
    flow: dict[str, Any] | None = None

    @classmethod
    def of(cls, progress: dict[str, Any] | None) -> Progress:
        progress = progress or {}
        return cls(
            int(progress.get("done", 0)),
            int(progress.get("inferred", 0)),
            int(progress.get("skipped", 0)),
            progress.get("flow"),
        )

    def to_dict(self, batch: BatchItem) -> dict[str, Any]:
        return {
            "batchId": batch.batch_id,
            "done": self.done,
            "inferred": self.inferred,
            "skipped": self.skipped,
            "finished": self.done >= batch.count,
            "flow": self.flow,
        }


def inventory_slice(s3: S3Client, layout: RunLayout, first: int, count: int) -> Iterator[str]:
    """The source-refs of lines [first, first + count) of inventory.jsonl, streamed (only those
    lines are parsed)."""
    for line in islice(read_lines(s3, layout.inventory), first, first + count):
        yield str(json.loads(line)["source-ref"])


@dataclass(frozen=True)
class InferenceSettings:
    """What a batch reads of the run's configuration, built once per invocation."""

    layout: RunLayout
    model_arn: str
    min_confidence: float
    threads: int = MAX_IN_FLIGHT

    @classmethod
    def from_config(cls, config: RunConfig) -> InferenceSettings:
        return cls(config.layout(), config.projectVersionArn, config.inference_min_confidence)


@dataclass(frozen=True)
class BatchTurn:
    """One invocation's share of a batch: the batch, how far it got, and (several batches) the
    run's other batches, whose estimates this one's is balanced with while it runs."""

    batch: BatchItem
    progress: Progress
    shared: SharedRate | None = None


def run_batch(
    s3: S3Client,
    rekognition: RekognitionClient,
    settings: InferenceSettings,
    turn: BatchTurn,
    seconds_left: Callable[[], float],
) -> Progress:
    """Infer the batch's next images; return the progress after them."""
    layout, threads, batch, progress = settings.layout, settings.threads, turn.batch, turn.progress
    limiter = Limiter(RateEstimate.resume(batch.calls_per_second, batch.calls_in_flight, progress.flow))
    refs = inventory_slice(s3, layout, batch.first + progress.done, batch.count - progress.done)
    part = f"{batch.batch_id:05d}-{progress.done:07d}"
    lock = threading.Lock()
    counts = {"inferred": 0, "skipped": 0}
    shown = BatchProgress(s3, layout, batch.batch_id, batch.count)  # for `labeling-loop follow`

    def show(final: bool = False) -> None:
        with lock:
            finished = counts["inferred"] + counts["skipped"]
            inferred, skipped = progress.inferred + counts["inferred"], progress.skipped + counts["skipped"]
        shown.update(progress.done + finished, inferred, skipped, final=final)

    def images_left() -> int:
        with lock:
            return batch.count - progress.done - counts["inferred"] - counts["skipped"]

    with (
        JsonlWriter(s3, layout.predictions_part(part)) as predictions,
        JsonlWriter(s3, layout.skipped_part("inference", part)) as skips,
        ThreadPoolExecutor(max_workers=max(1, threads)) as pool,
        balancing(turn.shared, limiter, images_left),
    ):

        def infer(ref: str) -> None:
            with flow_hooks.pacing(limiter):
                record = predict_one(s3, rekognition, ref, settings.model_arn, settings.min_confidence)
            skipped = "reason" in record
            with lock:
                (skips if skipped else predictions).write(record)
                counts["skipped" if skipped else "inferred"] += 1

        submitted = _submit_all(pool, infer, refs, threads, seconds_left, show)
    show(final=True)
    return Progress(
        done=progress.done + submitted,
        inferred=progress.inferred + counts["inferred"],
        skipped=progress.skipped + counts["skipped"],
        flow=_flow_totals(limiter.stats(), progress.flow or {}),
    )


def _submit_all(
    pool: ThreadPoolExecutor,
    infer: Callable[[str], None],
    refs: Iterator[str],
    threads: int,
    seconds_left: Callable[[], float],
    show: Callable[[], None],
) -> int:
    """Infer `refs` on `pool`, at most `threads` at a time, until done or the invocation's time runs
    short; return how many were submitted (all of them finished)."""
    submitted = 0
    pending: set[Future[None]] = set()
    try:
        for ref in refs:
            if submitted and seconds_left() < RESERVE_S:
                break  # (at least one image per invocation, so a batch always moves on)
            if len(pending) >= threads:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()  # an error that must fail the invocation (model stopped)
                show()
            pending.add(pool.submit(infer, ref))
            submitted += 1
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()
            show()
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    return submitted


def _flow_totals(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The flow state to resume from, with the batch's counts so far (throttles are counted by the
    estimate, which resumes with them)."""
    return {
        **now,
        "attempts": int(before.get("attempts", 0)) + int(now["attempts"]),
        "mostInFlight": max(int(before.get("mostInFlight", 0)), int(now["mostInFlight"])),
    }
