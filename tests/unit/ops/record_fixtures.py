"""Records the execution histories the progress tests render (run by hand, not by pytest):

    .venv/bin/python tests/unit/ops/record_fixtures.py

Two whole executions in the local cloud over 24 synthetic images, the model at 30 inference units so
that the fan-out plans 3 batches of 8 (one per 10 units, inference.plan): one that succeeds
with a Ground Truth review, one whose every inference batch fails (the cleanup path). Each fixture
holds DescribeExecution, the whole history and DescribeMapRun of each Map Run, as boto3 returned
them (timestamps as text)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from labeling_ops.fetch import history
from labeling_ops.progress import read_history
from localcloud.data.dataset import generate
from localcloud.engine.lambda_runtime import FunctionSpec
from localcloud.runner import IMAGES_PREFIX, default_config, local_cloud, prepare

HERE = Path(__file__).parent / "fixtures"


def _fails(spec: FunctionSpec, payload: dict[str, Any], count: int) -> dict[str, Any] | None:
    if spec.logical_id == "DetectLabelsFunction":
        return {
            "errorType": "EmulatedBugError",
            "errorMessage": "DetectLabelsFunction failed (emulated fault)",
        }
    return None


def record(cloud: Any, execution_arn: str) -> dict[str, Any]:
    events = history(cloud.sfn, execution_arn)
    map_runs = {
        state: cloud.sfn.describe_map_run(mapRunArn=arn)
        for state, arn in read_history(events).map_runs.items()
    }
    return {
        "description": cloud.sfn.describe_execution(executionArn=execution_arn),
        "events": events,
        "mapRuns": map_runs,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        truth = generate(folder, 24, task="detection", seed=3)
        with local_cloud(default_config()) as cloud:
            stack, arn, _ = prepare(cloud, folder, truth, parameters={"InferenceUnitsLimit": "30"})
            run_input = {
                "projectVersionArn": arn,
                "images": f"s3://{stack.images_bucket}/{IMAGES_PREFIX}",
                "minInferenceUnits": 30,
            }
            ok = cloud.run(run_input, "recorded-run", timeout=300)
            fixtures = {"groundtruth_run.json": record(cloud, ok.execution_arn)}
            cloud.runtime.fault_hooks.append(_fails)
            failed = cloud.run(run_input, "recorded-failure", timeout=300)
            fixtures["failed_run.json"] = record(cloud, failed.execution_arn)
    HERE.mkdir(exist_ok=True)
    for name, data in fixtures.items():
        (HERE / name).write_text(json.dumps(data, indent=1, default=str) + "\n")
        print(f"wrote {HERE / name}: {data['description']['status']}, {len(data['events'])} events")


if __name__ == "__main__":
    main()
