"""Every notebook in notebooks/ executes from top to bottom without error (outputs not saved)."""

import os
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = {
    "quickstart.ipynb",
    "fig2_gamma.ipynb",
    "fig3_alpha.ipynb",
    "table2_algorithm1.ipynb",
    "theory.ipynb",
    "phase_diagram.ipynb",
    "hypotheses.ipynb",
}


def test_the_documented_notebooks_exist():
    present = {path.name for path in NOTEBOOKS.glob("*.ipynb")}
    assert EXPECTED <= present, f"missing notebooks: {sorted(EXPECTED - present)}"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_executes(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells and notebook.cells[0].cell_type == "markdown"  # opens with its question
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    print(f"{path.name}: executed in {time.perf_counter() - start:.1f} s")
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
