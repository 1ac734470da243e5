"""Every notebook in notebooks/ executes from top to bottom without error (outputs not saved).

The notebooks run in the reduced mode (``MFH_SIM_QUICK=1``: their ``seeds(n)`` give a few
seeds), so this proves that every cell runs against the current code; the committed outputs are
the full runs.
"""

import os
import re
from pathlib import Path

import nbclient  # test dependencies (pyproject's [test]): a missing one fails, never skips
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = {
    "quickstart.ipynb",
    "fig2_gamma.ipynb",
    "fig3_alpha.ipynb",
    "table2_algorithm1.ipynb",
    "theory.ipynb",
    "phase_diagram.ipynb",
    "hypotheses.ipynb",
    "real_data.ipynb",
}


def test_the_documented_notebooks_exist():
    present = {path.name for path in NOTEBOOKS.glob("*.ipynb")}
    assert EXPECTED <= present, f"missing notebooks: {sorted(EXPECTED - present)}"


def test_notebooks_ask_for_their_seeds_through_the_reduced_mode():
    """A seed count written as a literal would run in full under the test suite."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                literal = re.search(r"\bseeds\s*=\s*\d", cell.source)
                assert literal is None, f"{path.name}: write seeds=seeds(N), not {cell.source[literal.start():][:20]!r}"


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_executes(path, quick_mode, monkeypatch):
    # The kernel is a subprocess: it must import this checkout's mfh_sim, as the test does.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells and notebook.cells[0].cell_type == "markdown"  # opens with its question
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
