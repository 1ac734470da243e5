"""Imports run one way: the core never reaches up to execution, storage, results or the face,
and the engine knows protocols only through their interface."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mfh_sim"
#: The core: what a run computes.  It may import itself, config and validation, never the layers above.
CORE = ["venn.py", "data.py", "losses.py", "models.py", "train.py", "salience.py",
        *[f"protocols/{p.name}" for p in sorted((PACKAGE / "protocols").glob("*.py"))]]
ABOVE_CORE = ("mfh_sim.engine", "mfh_sim.store", "mfh_sim.results", "mfh_sim.plots", "mfh_sim.commands",
              "mfh_sim.simulation", "mfh_sim.experiments", "mfh_sim.cli")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "mfh_sim":  # `from mfh_sim import x` is the package face or a submodule
                names.update(f"mfh_sim.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_nothing_above_it(module):
    imported = imported_modules(PACKAGE / module)
    bad = sorted(name for name in imported if name.startswith(ABOVE_CORE) or name == "mfh_sim")
    assert not bad, f"{module} imports {bad}"
    assert not any(name.startswith("matplotlib") for name in imported)


def test_the_engine_imports_no_protocol():
    imported = imported_modules(PACKAGE / "engine.py")
    assert "mfh_sim.protocols" in imported  # the interface only
    assert not any(name.startswith("mfh_sim.protocols.") or name == "mfh_sim.protocol" for name in imported)
    assert not any(name.startswith(("mfh_sim.config", "mfh_sim.store", "mfh_sim.results")) for name in imported)


def test_only_plots_commands_and_the_figure_writer_import_matplotlib():
    # experiments/paper.py draws Table 2's salience figure through lazy imports (save_salience_figure).
    allowed = ("plots/", "commands/", "experiments/paper.py")
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(allowed):
            continue
        assert not any(n.startswith("matplotlib") for n in imported_modules(path)), relative
