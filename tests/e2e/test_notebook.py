"""The notebook helper against the local cloud. The example notebook itself is executed top to
bottom by `make notebook-fresh` (part of `make test`): in a new virtual environment with nothing but
the `notebook` extra, as the README tells a reader to install it (mk/run_notebook.py checks it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

pytestmark = pytest.mark.e2e


def test_the_notebook_helper_runs_a_turn_in_the_local_cloud(
    tmp_path: Path, fake_aws_env: pytest.MonkeyPatch
) -> None:
    from labeling_ops.local import local_stack
    from labeling_ops.notebook import LabelingLoop

    with local_stack(count=8, data_dir=tmp_path) as session:
        loop = LabelingLoop(session.clients, session.stack, Console(record=True, width=160))
        graph = loop.graph()
        assert "Validate Input" in graph.data and "Detect Labels In Batch" in graph.data

        with pytest.raises(Exception, match="minConfidence"):
            loop.start({"minConfidence": 500}, name="refused")
        run = loop.start({"minConfidence": 50}, name="nb-run")
        final = loop.follow(run, interval=0.2)
        assert final.status == "SUCCEEDED", final
        assert final.images_inferred == 8 and final.review_done == 8

        # the SDK's own execution object: description, output, event table
        assert run.describe()["status"] == "SUCCEEDED"
        assert run.get_output()["counts"]["imagesInManifest"] == 8
        assert "ExecutionSucceeded" in loop.events(run).data
        assert len(run.list_events()) > 20  # the SDK's own list
        assert "nb-run" in loop.progress_graph(run).data

        assert [r["name"] for r in loop.runs()] == ["nb-run"]
        page = loop.report("nb-run").data
        # the run's own report.html, as `labeling-loop report` downloads it
        assert "imagesInManifest" in page and "<h2>Model quality</h2>" in page
        shown = loop.console.export_text()
        assert "SUCCEEDED" in shown and "nb-run" in shown
