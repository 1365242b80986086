"""Start a run of the deployed workflow from a script and follow it:

python -m ops start --stack labeling-loop --input events/cli.json --wait
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import boto3

from ops.runs import start_run, wait_for


def state_machine_arn(stack: str, region: str | None) -> str:
    outputs = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"][
        0
    ]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "StateMachineArn")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start one turn of the loop")
    start.add_argument("--stack", required=True, help="the stack `sam deploy` created")
    start.add_argument("--input", help="JSON file with the execution input (see README, 'Execution input')")
    start.add_argument("--name", help="execution name (becomes the run id); default: run-<UTC time>")
    start.add_argument(
        "--wait", action="store_true", help="wait for the end (runs with human review take days)"
    )
    start.add_argument("--timeout", type=float, default=7 * 24 * 3600)
    start.add_argument("--region")
    args = parser.parse_args(argv)
    sfn = boto3.client("stepfunctions", region_name=args.region)
    run_input = json.loads(Path(args.input).read_text()) if args.input else {}
    name = args.name or time.strftime("run-%Y%m%d-%H%M%S", time.gmtime())
    execution = start_run(sfn, state_machine_arn(args.stack, args.region), run_input, name)
    print(f"started {execution.execution_arn}")
    if not args.wait:
        return 0
    outcome = wait_for(execution, args.timeout, poll_seconds=30)
    print(
        json.dumps(
            {
                "status": outcome.status,
                "error": outcome.error,
                "cause": outcome.cause,
                "output": outcome.output,
            },
            indent=2,
        )
    )
    return 0 if outcome.status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
