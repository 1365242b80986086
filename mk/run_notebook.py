"""Execute the example notebook as a reader would, and check what they would see: no cell failed, the
run SUCCEEDED, the refused input was named, the progress of `loop.follow` was one display updated
in place (not a new one per change), and no import noise (pkg_resources, sagemaker.config).

    .venv-notebook/bin/python mk/run_notebook.py notebooks/labeling_loop.ipynb WORKDIR

Run by `make notebook-fresh` with the Python of a virtual environment that has only the project's
`notebook` extra: nbclient and nbformat come with it (Jupyter executes notebooks with them).
"""

import sys
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient


def main() -> int:
    notebook_path, workdir = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(notebook_path, as_version=4)
    # The kernel on local sockets (ipc), as a Jupyter server on this machine would reach it.
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / "kernel"))
    try:
        NotebookClient(notebook, timeout=300, km=kernel, resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        if kernel.has_kernel:
            kernel.shutdown_kernel()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs)
    problems = []
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if errors:
        problems.append(f"a cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    if "'SUCCEEDED'" not in text:
        problems.append("the run did not end SUCCEEDED")
    if "minConfidence" not in text:
        problems.append("the refused input was not named")
    for noise in ("pkg_resources", "sagemaker.config"):
        if noise in text:
            problems.append(f"import noise in the output: {noise}")
    follow = next(cell for cell in notebook.cells if "loop.follow(" in "".join(cell.get("source", "")))
    displays = [o for o in follow.get("outputs", []) if o.get("output_type") == "display_data"]
    if len(displays) != 1 or "SUCCEEDED" not in str(displays[0].get("data", {})):
        problems.append(f"follow left {len(displays)} displays (one, updated to the end, expected)")
    for problem in problems:
        print(f"notebook: {problem}", file=sys.stderr)
    if not problems:
        print(f"notebook: {notebook_path} ran top to bottom: run SUCCEEDED, one progress display, no noise")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
