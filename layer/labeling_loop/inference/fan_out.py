"""The fan-out's plan: how many batches run at once and which images each infers, from the run itself
(how many images, how many inference units are in service) rather than from fixed settings.

Why few, large batches: each batch paces its calls with its own estimate of the model's capacity
(inference.flow), because concurrent Lambda invocations share no memory. Every learner costs
throttled calls while it finds its share. So a run uses as few batches as can carry the model's
calls: one per UNITS_PER_BATCH inference units, all in one wave of equal size. The batches of a run
with several share what they learn through the run-state table (inference.shared_rate), so unequal
shares leave no tail: they finish together. Measured in bench/ (bench/README.md, "flow control and
planning", benchmark 1b).

Limits kept by construction:
- a Distributed Map item is `{"batchId", "first", "count", ...}`: it names a slice of the run's
  inventory.jsonl instead of carrying image keys, so an item stays a few hundred bytes whatever the
  run size (the child execution's input is at most 256 KiB, docs/aws-facts.md §4.2);
- a batch longer than one Lambda invocation (15 minutes, docs/aws-facts.md §4.12) continues in the
  next invocation of the same child execution, which carries the batch's progress and its learned
  rate (inference.detect, the definition's "Batch Done?" loop);
- MaxConcurrency is at most 10,000 in a Distributed Map (docs/aws-facts.md §4.3); a run has at most
  100 inference units (run_config.InferenceUnits), hence at most 10 batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# The old, withdrawn documented figure "one inference unit supports up to 5 TPS" (docs/aws-facts.md
# §1.6, §8): the rate prior of the flow control. A model may be slower or faster; the flow control adapts.
PRIOR_TPS_PER_UNIT = 5.0
# An assumption, not a documented figure: 500 ms per DetectCustomLabels call. With the rate prior it
# gives the calls-in-flight prior, 2.5 per inference unit, which stays right when a model is faster
# per call (the flow control starts at the larger of the two priors and falls back on a throttle).
PRIOR_LATENCY_S = 0.5
# One batch drives up to this many inference units: 50 calls/s at the rate prior, which one Lambda
# (1 GB, I/O bound, inference.flow.MAX_IN_FLIGHT threads) carries with room for slower calls.
UNITS_PER_BATCH = 10
MAX_MAP_CONCURRENCY = 10_000


@dataclass(frozen=True)
class Batch:
    batch_id: int
    first: int  # 0-based line of inventory.jsonl
    count: int
    calls_per_second: float  # the batch's share of the rate prior
    calls_in_flight: float  # the batch's share of the calls-in-flight prior
    batches: int = 1  # in the run: more than one share what they learn (shared_rate.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batchId": self.batch_id,
            "first": self.first,
            "count": self.count,
            "callsPerSecond": round(self.calls_per_second, 6),
            "callsInFlight": round(self.calls_in_flight, 6),
            "batches": self.batches,
        }


def plan_batches(images: int, inference_units: int) -> list[Batch]:
    """Equal slices of the inventory, one per UNITS_PER_BATCH units in service (at least one, at
    most one per image); [] when there is nothing to infer."""
    if images <= 0:
        return []
    units = max(1, inference_units)
    count = min(images, MAX_MAP_CONCURRENCY, max(1, math.ceil(units / UNITS_PER_BATCH)))
    size, extra = divmod(images, count)
    batches, first = [], 0
    for batch_id in range(count):
        n = size + (1 if batch_id < extra else 0)
        batches.append(
            Batch(
                batch_id,
                first,
                n,
                calls_per_second=units * PRIOR_TPS_PER_UNIT / count,
                calls_in_flight=units * PRIOR_TPS_PER_UNIT * PRIOR_LATENCY_S / count,
                batches=count,
            )
        )
        first += n
    return batches
