"""What every benchmark shares: the emulated scale, the machine, and the results files.

Results: `bench/results/<date>.json` and `<date>.md` hold every benchmark recorded that date (a
rerun replaces its own section), `latest.json`/`latest.md` the newest of each benchmark.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

# The AWS-like figures every fan-out run stands for. A run may be time-scaled by a factor k: the
# emulated model serves k x the calls per second with 1/k of the latency (calls in flight = TPS x
# latency are unchanged: what the flow control has to match), starts and stops k x faster, and the
# interpreter's Wait states and Retry intervals run at 1/k. Every ratio the benchmarks report
# (utilisation, throttled share, model overhead / ideal, per-1,000 counts) is then the AWS-like one;
# seconds are reported back on the AWS-like clock (x k).
AWS_LIKE = {
    "tps_per_inference_unit": 5.0,  # the withdrawn "one IU supports up to 5 TPS" (docs/aws-facts.md §1.6, §8)
    "detect_latency_s": 0.5,  # per DetectCustomLabels call, an assumption; the runs also use 50 and 200 ms
    "start_latency_s": 120.0,  # "a few minutes" (docs/aws-facts.md §1.6, §8)
    "stop_latency_s": 24.0,
    "labeling_job_latency_s": 24.0,
}
# The emulator's speed before this work: 5 TPS/IU and 500 ms at k = 2.4 (12 TPS, 208 ms, 50 s start).
EMULATOR_SCALE = 2.4
MODEL_POLL_SECONDS = 60  # the product default (run_config.py)
REVIEW_POLL_SECONDS = 60
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "300,1500,20000").split(",")]
UNITS = [int(u) for u in os.environ.get("BENCH_UNITS", "1,2,5").split(",")]
LATENCIES = [float(x) for x in os.environ.get("BENCH_LATENCIES", "0.05,0.2,0.5").split(",")]


def emulated(tps: float, latency: float, scale: float) -> dict[str, float]:
    """The emulator's settings for an AWS-like model (TPS per IU, latency) at time scale `scale`."""
    return {
        "tps_per_inference_unit": tps * scale,
        "detect_latency_s": latency / scale,
        "start_latency_s": AWS_LIKE["start_latency_s"] / scale,
        "stop_latency_s": AWS_LIKE["stop_latency_s"] / scale,
        "labeling_job_latency_s": AWS_LIKE["labeling_job_latency_s"] / scale,
    }


def scale_note() -> str:
    a = AWS_LIKE
    return (
        f"AWS-like figures: {a['tps_per_inference_unit']:g} TPS per inference unit, "
        f"{a['start_latency_s']:g} s model start, modelPollSeconds {MODEL_POLL_SECONDS}; per-call latency as "
        "in each row. A run at scale k emulates k x the TPS, 1/k the latency, start, stop and Wait/Retry "
        "intervals (calls in flight unchanged), so ratios are the AWS-like ones; k = 2.4 is the emulator's "
        f"speed before this work (12 TPS, 208 ms, 50 s start)."
    )


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    out = io.StringIO()
    out.write("| " + " | ".join(headers) + " |\n")
    out.write("|" + "|".join(" --- " for _ in headers) + "|\n")
    for row in rows:
        out.write("| " + " | ".join(cell(v) for v in row) + " |\n")
    return out.getvalue()


def record(key: str, title: str, markdown: str, data: dict[str, Any], passed: bool) -> None:
    """Print a benchmark's section and store it under today's date and in latest.*"""
    now = datetime.now(UTC)
    section = {
        "title": title,
        "recorded": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": machine(),
        "goal_met": passed,
        "markdown": markdown,
        "data": data,
    }
    print(f"\n## {title}\n\n{markdown}\n(goal met: {'yes' if passed else 'NO'})", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for stem in (now.strftime("%Y-%m-%d"), "latest"):
        path = RESULTS / f"{stem}.json"
        sections = json.loads(path.read_text()) if path.exists() else {}
        sections[key] = section
        sections = dict(sorted(sections.items()))
        path.write_text(json.dumps(sections, indent=1, default=str) + "\n")
        (RESULTS / f"{stem}.md").write_text(_render(stem, sections))


def _render(stem: str, sections: dict[str, Any]) -> str:
    lines = [f"# Benchmark results: {stem}\n"]
    for section in sections.values():
        m = section["machine"]
        lines.append(f"## {section['title']}\n")
        lines.append(
            f"Recorded {section['recorded']} on {m['platform']}, {m['cpus']} CPUs ({m['processor']}), "
            f"Python {m['python']}. Goal met: **{'yes' if section['goal_met'] else 'no'}**.\n"
        )
        lines.append(section["markdown"].rstrip() + "\n")
    return "\n".join(lines)


def python() -> str:
    return sys.executable
