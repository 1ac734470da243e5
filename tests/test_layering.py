"""Imports run one way (CONTRIBUTING.md, "Layering"): read from the source, without importing it.

* only ``plots/`` and ``commands/`` import matplotlib;
* ``config`` imports, of mfh_sim, only ``choices``, ``validation`` and ``venn``; ``choices``,
  ``_version`` and ``quick`` import nothing of mfh_sim, and neither numpy nor JAX at their top;
* the core (``venn``, ``data``, ``losses``, ``models``, ``train``, ``salience``, the protocols)
  never imports the engine, the store, results, plots, commands or the package face.

Known breaches that another branch is removing are listed in ``KNOWN`` with the reason; the test
fails on any other, and on a listed one that has gone (so the list only shrinks).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mfh_sim"
CORE = {"venn", "data", "losses", "models", "train", "salience", "protocol", "protocols"}
ABOVE_CORE = {"engine", "store", "results", "plots", "commands", "mfh_sim", "simulation", "experiments", "cli"}
PLOTTING = {"plots", "commands"}

#: (module, imported, rule) breaches tolerated for now, each with its reason (none today).
KNOWN: set[tuple[str, str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "mfh_sim"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at top level?) for every import in the file; relative imports resolved."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "mfh_sim":  # from mfh_sim import x: the face, or a submodule x
                found += [(f"mfh_sim.{alias.name}", id(node) in top) for alias in node.names]
            else:
                found.append((node.module, id(node) in top))
    return found


def _first_party(name: str) -> str | None:
    """The first-level module of mfh_sim that ``name`` names ('mfh_sim' for the face)."""
    if name == "mfh_sim":
        return "mfh_sim"
    if name.startswith("mfh_sim."):
        first = name.split(".")[1]
        return first if (PACKAGE / first).is_dir() or (PACKAGE / f"{first}.py").exists() else "mfh_sim"
    return None


def breaches() -> set[tuple[str, str, str]]:
    out = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        first = module.split(".")[0]
        for name, at_top in _imports(path):
            inside = _first_party(name)
            if name.split(".")[0] == "matplotlib" and first not in PLOTTING:
                out.add((module, "matplotlib", "matplotlib outside plots/ and commands/"))
            if module == "config" and inside is not None and inside not in {"choices", "validation", "venn"}:
                out.add((module, name, "config imports only choices, validation, venn"))
            if module in {"choices", "_version", "quick"} and (inside is not None or (
                    at_top and name.split(".")[0] in {"numpy", "jax", "flax", "optax"})):
                out.add((module, name, "the vocabulary and provenance import nothing heavy"))
            if first in CORE and inside in ABOVE_CORE:
                out.add((module, name, "the core never imports what is built on it"))
            if module == "engine" and (name.startswith("mfh_sim.protocols.") or inside in {
                    "config", "store", "results", "experiments", "simulation"}):
                out.add((module, name, "the engine knows protocols only through their interface"))
    return out


def test_imports_run_one_way():
    found = breaches()
    assert found - KNOWN == set(), f"new layering breaches: {sorted(found - KNOWN)}"
    assert KNOWN - found == set(), f"fixed (remove from KNOWN): {sorted(KNOWN - found)}"


def test_the_check_sees_a_breach(tmp_path, monkeypatch):
    # A checker that cannot fail proves nothing: plant one breach of each kind in a copy.
    import shutil

    copy = tmp_path / "mfh_sim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "losses.py", "a") as f:
        f.write("\nfrom mfh_sim.engine import execute  # planted\n")
    with open(copy / "engine.py", "a") as f:
        f.write("\nfrom mfh_sim.protocols.paper import PaperProtocol  # planted\n")
    with open(copy / "stats.py", "a") as f:
        f.write("\nimport matplotlib  # planted\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", copy)
    found = {(module, rule) for module, _, rule in breaches()}
    assert ("losses", "the core never imports what is built on it") in found
    assert ("engine", "the engine knows protocols only through their interface") in found
    assert ("stats", "matplotlib outside plots/ and commands/") in found
