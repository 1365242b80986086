"""Every verb of `labeling-loop` against one local cloud, in one process, through `cli.main` with the
local stack's clients handed in (what `labeling-loop local` does): start --follow, list, show,
report, a second start stopped while its model starts, and stop's account of the cleanup, read from
the run record, the model's lease and the model's status."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from labeling_ops import cli
from labeling_ops.local import local_stack

pytestmark = pytest.mark.e2e


def _run(argv: list[str], session: object) -> tuple[int, str]:
    console = Console(record=True, width=200, color_system=None)
    code = cli.main(argv, clients=session.clients, stack=session.stack, console=console)  # type: ignore[attr-defined]
    return code, console.export_text()


def test_every_verb_against_the_local_cloud(tmp_path: Path) -> None:
    with local_stack(count=12, data_dir=tmp_path / "data") as session:
        # start with flags, validated locally, and follow to the end
        code, out = _run(
            ["start", "--name", "first", "--min-confidence", "40", "--follow", "--interval", "0.2"], session
        )
        assert code == 0, out
        assert "input valid (fields and the stack's defaults)" in out
        assert "status: SUCCEEDED" in out and "12 images in the manifest" in out
        # one inference unit: one planned batch (one per 10 units)
        assert "inference: 1 / 1 batches, images inferred 12 / 12" in out
        assert "Ground Truth: 12 / 12 images reviewed" in out

        code, out = _run(["list"], session)
        assert code == 0 and "first" in out and "SUCCEEDED" in out

        code, out = _run(["show", "latest"], session)
        assert code == 0 and "imagesInManifest" in out and "F1 (95 %), reviewed images" in out

        code, out = _run(["report", "first", "--out", str(tmp_path / "report")], session)
        assert code == 0, out
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        assert report["counts"]["imagesInManifest"] == 12
        page = (tmp_path / "report" / "report.html").read_text()
        # the run's own report.html (Build Manifest writes it), downloaded as it is
        assert "<title>Labeling run first-" in page and "<h2>Model quality</h2>" in page

        # a second run waits for the model (a long poll, scaled to seconds) and is stopped there
        code, out = _run(["start", "--name", "second", "--model-poll-seconds", "3600"], session)
        assert code == 0, out
        arn = session.stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":second"
        for _ in range(200):  # follow shows the model start once the run is there
            events = session.clients.sfn.get_execution_history(executionArn=arn)["events"]
            if any(e["type"] == "WaitStateEntered" for e in events):
                break
            time.sleep(0.05)
        code, out = _run(["follow", "second", "--updates", "1"], session)
        assert "phase: starting the model;" in out, out  # piped: the phase, not each poll's state
        code, out = _run(["stop", "second", "--wait", "3"], session)
        assert "stopped second: execution ABORTED" in out
        description = session.clients.sfn.describe_execution(
            executionArn=session.stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":second"
        )
        assert description["status"] == "ABORTED"
        # stop reads the outcome from durable state: the run record, the lease, the model
        assert code == 0, out
        assert "cleanup: done (run record cleaned-up)" in out
        assert "model: STOPP" in out and "no run holds it" in out

        code, out = _run(["list"], session)
        assert "ABORTED" in out and "SUCCEEDED" in out

        # a stopped run has no report, and says why
        code, out = _run(["report", "second", "--out", str(tmp_path / "r2")], session)
        assert code == 2
