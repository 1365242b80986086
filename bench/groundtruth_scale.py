"""Benchmark 7: the Ground Truth backend at 100 labeling jobs. One whole run in the local cloud whose
review is BENCH_GT_JOBS jobs (default 100, 10 images each), every job taking BENCH_GT_JOB_DAYS
(default 1) AWS-like day, polled every reviewPollSeconds = 900 s (the stack's default; the shortest
poll Validate Input allows is RunConfig.fastest_review_poll(), 400 s at the 240 h deadline). Measured: state transitions and history events of
each job's child execution (moto's interpreter, counted per execution), the parent's history, how
many jobs ran at once, and what Step Functions bills per job-day. Time runs 4,320x faster than the
AWS-like clock (a day in 20 s), with the model much faster still: only the review is measured.

Projected from the measured events per poll: a job that lasts the whole review deadline (240 h + the
2 h stop grace of run_config.JOB_STOP_GRACE_HOURS) at 900 s and at the fastest safe poll, against
the 25,000 events an execution keeps (docs/aws-facts.md §4.2).

    python -m bench.groundtruth_scale
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from bench import common, prices

JOBS = int(os.environ.get("BENCH_GT_JOBS", "100"))
IMAGES_PER_JOB = 10
JOB_DAYS = float(os.environ.get("BENCH_GT_JOB_DAYS", "1"))
DAY = 86_400
TIME_SCALE = 20 / DAY  # one AWS-like day in 20 s
POLL_SECONDS = 900
DEADLINE_HOURS = 240
HISTORY_LIMIT = 25_000


class _EventCounter:
    """History events of every event manager, and the states each execution entered. moto gives a
    Distributed Map's children one EventManager (the Map run's) but each its own history context:
    events are counted by manager, entered states by context."""

    def __init__(self) -> None:
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

        self.events: Counter[int] = Counter()
        self.states: dict[int, Counter[str]] = defaultdict(Counter)
        self.manager_of: dict[int, int] = {}
        self._lock = threading.Lock()
        self._alive: list[Any] = []  # what was counted, kept alive so that ids stay theirs
        original = EventManager.add_event
        counter = self

        def counted(
            manager: Any, context: Any, event_type: Any, event_details: Any = None, *a: Any, **k: Any
        ) -> int:
            name = ((event_details or {}).get("stateEnteredEventDetails") or {}).get("name")
            with counter._lock:
                counter.events[id(manager)] += 1
                if name:
                    if id(context) not in counter.manager_of:
                        counter.manager_of[id(context)] = id(manager)
                        counter._alive += [manager, context]
                    counter.states[id(context)][name] += 1
            return int(original(manager, context, event_type, event_details, *a, **k))

        EventManager.add_event = counted  # type: ignore[method-assign,assignment]

    def jobs(self) -> list[Counter[str]]:
        """The states each labeling job's child execution entered."""
        return [states for states in self.states.values() if "Create Labeling Job" in states]

    def job_map_events(self) -> int:
        """The history events of the labeling jobs' Map run: every job execution's."""
        managers = {
            self.manager_of[key] for key, states in self.states.items() if "Create Labeling Job" in states
        }
        return sum(self.events[m] for m in managers)


def _config() -> Any:
    from localcloud.engine.cloud import LocalCloudConfig
    from localcloud.services.custom_labels import CustomLabelsConfig
    from localcloud.services.groundtruth import GroundTruthConfig

    return LocalCloudConfig(
        time_scale=TIME_SCALE,
        rekognition=CustomLabelsConfig(
            start_latency_s=0.5, stop_latency_s=0.1, tps_per_inference_unit=500.0, detect_latency_s=0.002
        ),
        groundtruth=GroundTruthConfig(job_latency_s=JOB_DAYS * DAY * TIME_SCALE, annotator_accuracy=0.97),
    )


def measure() -> dict[str, Any]:
    from bench.fanout import IMAGES_PREFIX, _upload, tiny_jpeg
    from localcloud.engine import interpreter
    from localcloud.engine.cloud import LocalCloud
    from localcloud.runner import execute

    with LocalCloud(_config()) as cloud:
        stack = cloud.deploy()
        # After the local cloud's own EventManager.add_event (its history limit), which it applies
        # once per process and which would otherwise replace this one.
        counter = _EventCounter()
        _upload(cloud, stack.images_bucket, JOBS * IMAGES_PER_JOB, tiny_jpeg())
        arn = cloud.add_model("detection")
        run_input = {
            "projectVersionArn": arn,
            "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
            "maxImagesPerJob": IMAGES_PER_JOB,
            "autoAcceptConfidence": "off",  # every image is reviewed
            "reviewPollSeconds": POLL_SECONDS,
            "reviewDeadlineHours": DEADLINE_HOURS,
        }
        fastest_poll = _fastest_poll(stack, run_input, "gt-scale")
        transitions_before = interpreter.counters.state_transitions
        started = time.monotonic()
        result = execute(cloud, stack, arn, run_input, "gt-scale", timeout=3600)
        wall = time.monotonic() - started
        jobs = cloud.groundtruth._jobs  # the emulator's job records: when each started
        starts = sorted(job.started_at for job in jobs.values())
        latency = cloud.groundtruth.config.job_latency_s
        transitions = interpreter.counters.state_transitions - transitions_before
    at_once = max(sum(1 for s in starts if s <= t < s + latency) for t in starts) if starts else 0
    executions = counter.jobs()
    polls = sum(states["Describe Labeling Job"] for states in executions)
    entered = sum(sum(states.values()) for states in executions)
    events = counter.job_map_events()
    return {
        "status": result.summary["status"],
        "jobs": len(jobs),
        "job_executions": len(executions),
        "images": JOBS * IMAGES_PER_JOB,
        "in_manifest": len(result.manifest),
        "polls": polls,
        "polls_per_job": polls / max(1, len(executions)),
        "transitions_per_job": entered / max(1, len(executions)),
        "events_per_job": events / max(1, len(executions)),
        # Per poll turn, with each job's create and end spread over its polls (a slight overestimate).
        "transitions_per_poll": entered / max(1, polls),
        "events_per_poll": events / max(1, polls),
        "parent_events": len(result.history),
        "run_transitions": transitions,
        "jobs_at_once": at_once,
        "review_days": (max(starts) + latency - min(starts)) / (DAY * TIME_SCALE) if starts else 0.0,
        "wall_seconds": wall,
        "fastest_poll": fastest_poll,
    }


def run() -> dict[str, Any]:
    from labeling_loop.kernel.run_config import JOB_STOP_GRACE_HOURS

    m = measure()
    rows = []
    deadline_s = (DEADLINE_HOURS + JOB_STOP_GRACE_HOURS) * 3600
    cases = [(f"per job-day (measured per poll turn, {m['jobs']} jobs)", POLL_SECONDS, DAY)]
    cases += [
        (f"one job lasting the whole deadline ({DEADLINE_HOURS} h + {JOB_STOP_GRACE_HOURS} h)", p, deadline_s)
        for p in (POLL_SECONDS, m["fastest_poll"])
    ]
    for label, poll, seconds in cases:
        polls = seconds / poll
        transitions = m["transitions_per_poll"] * polls
        events = m["events_per_poll"] * polls
        rows.append(
            [
                label,
                poll,
                f"{polls:,.0f}",
                f"{transitions:,.0f}",
                f"{events:,.0f}",
                f"${transitions * prices.STEP_FUNCTIONS_TRANSITION.usd:.4f}",
                "yes" if events < HISTORY_LIMIT else "NO",
            ]
        )
    passed = (
        m["status"] == "SUCCEEDED"
        and m["job_executions"] == JOBS
        and m["in_manifest"] == m["images"]
        and all(row[-1] == "yes" for row in rows)
    )
    md = common.table(
        [
            "job executions",
            "reviewPollSeconds",
            "polls",
            "transitions",
            "history events",
            "Step Functions",
            f"under {HISTORY_LIMIT:,} events",
        ],
        rows,
    )
    md += (
        f"\nMeasured in one run: {m['jobs']} labeling jobs of {IMAGES_PER_JOB} images ({m['images']:,} images, all "
        f"reviewed, {m['in_manifest']:,} in the manifest), each lasting {JOB_DAYS:g} AWS-like day: "
        f"{m['transitions_per_poll']:.2f} transitions and {m['events_per_poll']:.2f} history events per poll turn of a "
        f"job's execution (Wait, Describe, Ended?, Deadline?; its create and end spread over its polls); per job "
        f"{m['polls_per_job']:.0f} polls, {m['transitions_per_job']:.0f} transitions, {m['events_per_job']:.0f} events "
        f"(fewer polls than {DAY / POLL_SECONDS:.0f} a day: at x{1 / TIME_SCALE:,.0f} the interpreter's own time per "
        "turn is a large part of a scaled 900 s wait; per-day figures are per poll turn x polls a day). The parent "
        f"execution recorded {m['parent_events']:,} events (polling lives in the children); {m['run_transitions']:,} "
        f"transitions in the whole run. At most {m['jobs_at_once']} jobs ran at once: the Map runs 50 job executions "
        f"at a time (MaxConcurrency), so jobs 51-{m['jobs']} were created as the first ones ended and the review took "
        f"{m['review_days']:.1f} days for {JOB_DAYS:g}-day jobs. Fastest safe poll for a {DEADLINE_HOURS} h deadline: "
        f"{m['fastest_poll']} s (run_config.fastest_review_poll). {m['wall_seconds']:.0f} s of wall time.\n"
    )
    common.record(
        "7-groundtruth-scale", "7. Ground Truth at 100 jobs", md, {"measured": m, "rows": rows}, passed
    )
    return {"passed": passed, **m}


def _fastest_poll(stack: Any, run_input: dict[str, Any], name: str) -> int:
    """The shortest reviewPollSeconds Validate Input allows this run, on the deployed stack's defaults."""
    from labeling_loop.kernel.run_input import validate_input
    from labeling_loop.kernel.settings import StackSettings, load

    environment = stack.functions["ValidateInputFunction"].environment
    region = stack.state_machine_arn.split(":")[3]
    settings = load(StackSettings, {"AWS_REGION": region, **environment})
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    config = validate_input(run_input, execution_name=name, execution_arn=arn, stack=settings)
    return config.fastest_review_poll()


def main() -> int:
    return 0 if run()["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
