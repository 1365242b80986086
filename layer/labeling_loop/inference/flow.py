"""Flow control for DetectCustomLabels: one rate estimate per batch, shared by the batch's threads,
that keeps the calls in flight near the model's capacity x the measured latency.

The model admits a number of calls per second and refuses the rest with
ProvisionedThroughputExceededException (docs/aws-facts.md §1.5); how many is not documented and
depends on the model and the images (§1.6). Sending as fast as the threads allow, and letting
botocore's jittered backoff absorb the refusals, drains the client's retry quota and gives images
up ("service-error") as soon as the calls in flight exceed what the model serves (issue 14: 8x
oversubscribed at 5 TPS/IU and 200 ms). botocore's adaptive mode limits the rate on the client, but
its limiter measured 0.53-0.62 of capacity (bench/README.md), and in one process it is shared by all
batches. So each batch paces its own attempts:

- the rate starts at the larger of two priors (plan.py): the batch's share of 5 TPS per inference
  unit, and of 2.5 calls in flight per unit divided by the measured latency (so a model that answers
  fast per call is not held back); the first throttle before any capacity was measured falls back to
  the rate prior;
- a throttle cuts the rate (x BETA, or to the measured goodput when that is far lower: the service
  has just shown what it serves) and remembers the rate that was refused as the known limit;
- after a cut the rate returns to TARGET x that limit within seconds, then probes above it by a tiny
  step per answered call, so a model that got faster (or a prior that was low) is found, while
  throttles stay a small fraction of the calls at any rate;
- calls in flight are capped at rate x latency x WINDOW_HEADROOM (+1), at most MAX_IN_FLIGHT;
- the batches of a run share what they learn (shared_rate.py): every few seconds each takes the
  batches' total in proportion to the images it has left, so they finish together.

botocore keeps doing what it is good at: standard-mode retries of throttles and transient errors,
with its backoff and retry quota. Every attempt, retries included, passes through the batch's
limiter (flow_hooks.py registers it on the client's before-send and needs-retry events), so a
retried call waits for the rate like any other.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BETA = 0.85  # multiplicative cut on a throttle
BIG_OVERSHOOT = 0.8  # goodput below this fraction of the rate: cut straight to the goodput
TARGET = 0.97  # after a cut, return to this fraction of the rate that was refused
RECOVERY_S = 2.0  # time constant of that return
PROBE_PER_CALL = 0.0003  # growth per answered call above the target, while calls wait for the rate
GOODPUT_WINDOW_S = 2.0
GOODPUT_MIN_CALLS = 8
SEED_ANSWERS = 4  # answers whose latency sets the calls-in-flight prior's rate
MAX_IN_FLIGHT = 64
WINDOW_HEADROOM = 1.5
FLOOR_FRACTION = 0.02  # the rate never falls below this fraction of the rate prior


@dataclass
class RateEstimate:
    """The pure state of one batch's flow control; every method takes the time, so tests drive it
    with a fake clock. Not thread-safe: Limiter serialises access."""

    prior_rate: float  # calls/s
    prior_in_flight: float
    rate: float = 0.0
    latency: float | None = None  # smoothed seconds per answered call
    answers: int = 0
    limit: float | None = None  # the last rate the model refused (None: not refused yet)
    throttles: int = 0
    _due: float = -math.inf  # when the last attempt was due on the pacing schedule
    _last_cut: float = -math.inf
    _updated: float | None = None
    _first_send: float | None = None
    _answered_sends: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            self.rate = self.prior_rate

    # -- what the limiter asks

    def ready_at(self) -> float:
        """The earliest time the next attempt may start (attempts are spaced 1/rate apart)."""
        return self._due + 1.0 / self.rate

    def window(self) -> int:
        """The most attempts in flight at once."""
        if self.latency is None:
            return max(1, min(MAX_IN_FLIGHT, math.ceil(self.prior_in_flight)))
        return max(1, min(MAX_IN_FLIGHT, math.ceil(self.rate * self.latency * WINDOW_HEADROOM) + 1))

    def sent(self, now: float, backlogged: bool = False) -> None:
        """An attempt starts now. `backlogged`: it had waited for the rate, so it was due at
        ready_at(): a thread woken a little late does not lower the rate, the next one may go that
        much sooner (at most one interval is caught up)."""
        if backlogged and self._due > -math.inf:
            self._due = max(self._due + 1.0 / self.rate, now - 1.0 / self.rate)
        else:
            self._due = now
        if self._first_send is None:
            self._first_send = now

    # -- what the model answered

    def answered(self, now: float, sent_at: float, busy: bool) -> None:
        """An attempt sent at `sent_at` was answered; `busy`: other calls were waiting to be sent."""
        self.answers += 1
        latency = max(0.0, now - sent_at)
        weight = max(0.1, 1.0 / self.answers)
        self.latency = latency if self.latency is None else (1 - weight) * self.latency + weight * latency
        self._answered_sends.append(sent_at)
        if self.limit is None and self.answers <= SEED_ANSWERS:
            # The calls-in-flight prior, at the latency just measured.
            self.rate = max(self.prior_rate, self.prior_in_flight / self.latency)
            self._updated = now
            return
        self._grow(now, busy)

    def throttled(self, now: float, sent_at: float) -> None:
        """An attempt sent at `sent_at` was refused for throughput. Attempts sent before the last cut
        say nothing new (they left at the old rate) and are ignored."""
        self.throttles += 1
        if sent_at < self._last_cut:
            return
        self._grow(now, busy=False)
        goodput = self.goodput(now)
        cut = BETA * self.rate
        if goodput is not None and goodput < BIG_OVERSHOOT * self.rate:
            cut, self.limit = min(cut, goodput), goodput
        else:
            if goodput is None and self.limit is None and self.rate > self.prior_rate:
                cut = min(cut, self.prior_rate)  # refused before anything was measured: the prior
            self.limit = self.rate
        self.rate = max(FLOOR_FRACTION * self.prior_rate, cut)
        self._last_cut = now

    def goodput(self, now: float) -> float | None:
        """Answered calls per second, by send time, over the last GOODPUT_WINDOW_S that have surely
        been answered; None while there are too few to tell."""
        latency = self.latency or 0.0
        newest = now - 1.5 * latency
        oldest = newest - GOODPUT_WINDOW_S
        while self._answered_sends and self._answered_sends[0] < oldest:
            self._answered_sends.popleft()
        start = self._first_send if self._first_send is not None else newest
        span = min(GOODPUT_WINDOW_S, newest - start)
        count = sum(1 for sent in self._answered_sends if sent <= newest)
        if span < 2 * latency or span <= 0 or count < GOODPUT_MIN_CALLS:
            return None
        return count / span

    def _grow(self, now: float, busy: bool) -> None:
        elapsed = 0.0 if self._updated is None else max(0.0, now - self._updated)
        self._updated = now
        goal = None if self.limit is None else TARGET * self.limit
        if goal is not None and self.rate < goal:
            self.rate += (goal - self.rate) * min(1.0, elapsed / RECOVERY_S)
            if goal - self.rate < 0.005 * goal:
                self.rate = goal  # (an exponential approach never quite arrives)
        elif busy:
            self.rate *= 1 + PROBE_PER_CALL
        if self.latency:
            self.rate = min(self.rate, MAX_IN_FLIGHT / self.latency)

    # -- shared with the run's other batches (shared_rate.py)

    def adopt(self, rate: float, limit: float | None, now: float) -> None:
        """Take this batch's share of what the run's batches learned together: the rate to send at
        and the refused rate to return to after a throttle."""
        self.rate = max(FLOOR_FRACTION * self.prior_rate, rate)
        if limit is not None:
            self.limit = limit
        if self.latency:
            self.rate = min(self.rate, MAX_IN_FLIGHT / self.latency)
        self._updated = now

    # -- carried from one invocation of a batch to the next

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": round(self.rate, 6),
            "limit": None if self.limit is None else round(self.limit, 6),
            "latency": None if self.latency is None else round(self.latency, 6),
            "answers": self.answers,
            "throttles": self.throttles,
        }

    @classmethod
    def resume(cls, prior_rate: float, prior_in_flight: float, state: dict[str, Any] | None) -> RateEstimate:
        if not state:
            return cls(prior_rate, prior_in_flight)
        limit, latency = state.get("limit"), state.get("latency")
        return cls(
            prior_rate,
            prior_in_flight,
            rate=float(state["rate"]),
            limit=None if limit is None else float(limit),
            latency=None if latency is None else float(latency),
            answers=int(state.get("answers", 0)),
            throttles=int(state.get("throttles", 0)),
        )


Wait = Callable[[threading.Condition, float], Any]


def _wait(condition: threading.Condition, timeout: float) -> None:
    condition.wait(timeout)


class Limiter:
    """A RateEstimate shared by the threads of one batch: `acquire` blocks until an attempt may go
    (within the window and the rate), `release` reports how it ended. Threads queue on a lock, so at
    most one waits on the clock at a time (no thundering herd)."""

    IDLE_WAIT_S = 1.0  # re-check at least this often while the window is full

    def __init__(
        self, estimate: RateEstimate, clock: Callable[[], float] = time.monotonic, wait: Wait = _wait
    ) -> None:
        self.estimate = estimate
        self._clock = clock
        self._wait = wait
        self._condition = threading.Condition()
        self._next = threading.Lock()
        self._queued = 0
        self.in_flight = 0
        self.attempts = 0
        self.most_in_flight = 0

    def acquire(self) -> float:
        """Wait for the right to send one attempt; returns its send time."""
        with self._condition:
            self._queued += 1
        with self._next, self._condition:
            paced = False  # waited for the rate (not just for a free slot in the window)
            while True:
                now = self._clock()
                if self.in_flight < self.estimate.window():
                    delay = self.estimate.ready_at() - now
                    if delay <= 0:
                        break
                    paced = True
                    self._wait(self._condition, delay)
                else:
                    self._wait(self._condition, self.IDLE_WAIT_S)
            self._queued -= 1
            self.estimate.sent(now, backlogged=paced)
            self.in_flight += 1
            self.attempts += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            return now

    def release(self, sent_at: float, outcome: str) -> None:
        """`outcome`: "answered", "throttled" or anything else (an error that says nothing about
        the rate)."""
        with self._condition:
            now = self._clock()
            self.in_flight -= 1
            if outcome == "answered":
                self.estimate.answered(now, sent_at, busy=self._queued > 0)
            elif outcome == "throttled":
                self.estimate.throttled(now, sent_at)
            self._condition.notify()

    def estimate_now(self) -> tuple[float, float | None]:
        """(rate, refused rate) as they stand, for the run's other batches."""
        with self._condition:
            return self.estimate.rate, self.estimate.limit

    def adopt(self, rate: float, limit: float | None) -> None:
        """Take a share computed with the run's other batches (shared_rate.py)."""
        with self._condition:
            self.estimate.adopt(rate, limit, self._clock())
            self._condition.notify()

    def stats(self) -> dict[str, Any]:
        with self._condition:
            return {
                **self.estimate.to_dict(),
                "attempts": self.attempts,
                "mostInFlight": self.most_in_flight,
            }
