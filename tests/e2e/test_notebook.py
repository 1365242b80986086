"""The notebook helper against the local cloud, and the example notebook executed top to bottom
(nbclient, on an ipykernel of this environment), as CI runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "labeling_loop.ipynb"


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
        assert "imagesInManifest" in page and "modelQuality" in page
        shown = loop.console.export_text()
        assert "SUCCEEDED" in shown and "nb-run" in shown


def test_the_example_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs)
    assert "'SUCCEEDED'" in text
    assert "minConfidence" in text  # the refused input, named
