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

# The emulated model runs SCALE times faster than the AWS-like figures it stands for, and the
# interpreter's Wait states and Retry intervals run at 1/SCALE, so every ratio is the AWS one.
# 2.4: the single-process local cloud tops out near 90 images/s (the GIL); at 5 IU x 12 TPS the
# model, not the machine, must be the limit.
SCALE = 2.4
AWS_LIKE = {
    "tps_per_inference_unit": 5.0,  # the withdrawn "one IU supports up to 5 TPS" (docs/aws-facts.md §1.6, §8)
    "detect_latency_s": 0.5,  # per DetectCustomLabels call, an assumption
    "start_latency_s": 120.0,  # "a few minutes" (docs/aws-facts.md §1.6, §8)
    "stop_latency_s": 24.0,
    "labeling_job_latency_s": 24.0,
}
EMULATED = {k: (v * SCALE if k.startswith("tps") else v / SCALE) for k, v in AWS_LIKE.items()}
TIME_SCALE = 1.0 / SCALE
MODEL_POLL_SECONDS = 60  # the product default (run_config.py)
REVIEW_POLL_SECONDS = 60
IMAGES = int(os.environ.get("BENCH_IMAGES", "20000"))


def scale_note() -> str:
    e, a = EMULATED, AWS_LIKE
    return (
        f"Emulated time runs {SCALE:g}x faster than the AWS-like figures it stands for: "
        f"{e['tps_per_inference_unit']:g} TPS per inference unit and {e['detect_latency_s'] * 1000:g} ms per "
        f"DetectCustomLabels call (AWS-like {a['tps_per_inference_unit']:g} TPS/IU, {a['detect_latency_s'] * 1000:g} ms), "
        f"model start {e['start_latency_s']:g} s (AWS-like {a['start_latency_s']:g} s), Wait states and retry "
        f"intervals x{TIME_SCALE:g} (modelPollSeconds {MODEL_POLL_SECONDS} -> {MODEL_POLL_SECONDS * TIME_SCALE:g} s)."
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
