"""One palette and one figure saver for every figure of mfh-sim.

The three trainings always wear the same colours (the teacher red, the KD student blue, the no-KD
student gray, the KD gain purple), in the paper-style curves, the theory figures and the Venn
drawings alike (x^a is the teacher's modality, x^b the student's).  :func:`save_figure` writes
PNG and PDF files that are the same bytes on a rerun (no timestamp in the PDF).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Colour of each result key (a matplotlib colour name).
COLOURS: dict[str, str] = {
    "teacher_acc": "tab:red",
    "kd_acc": "tab:blue",
    "no_kd_acc": "tab:gray",
    "delta": "tab:purple",
}
#: Legend label of each result key.
LABELS: dict[str, str] = {
    "teacher_acc": "teacher",
    "kd_acc": "KD student",
    "no_kd_acc": "no-KD student",
    "delta": "KD gain",
}
#: Colour of each modality: x^a is the teacher's, x^b the student's.
MODALITY_COLOURS: dict[str, str] = {"a": COLOURS["teacher_acc"], "b": COLOURS["kd_acc"]}
#: Algorithm 1's salience bars: truly shared, modality-specific decisive, and other channels.
SHARED_COLOUR = "tab:orange"
SPECIFIC_COLOUR = "tab:blue"
OTHER_COLOUR = "tab:gray"

#: The suffixes :func:`save_figure` writes.
FORMATS = (".png", ".pdf", ".svg")


def save_figure(
    figure: Any,
    path: str | os.PathLike,
    *,
    dpi: float | None = None,
    tight: bool = False,
    close: bool = False,
) -> Path:
    """Write ``figure`` to ``path`` (.png or .pdf), the same bytes on every rerun; return the path.

    Args:
        figure: a matplotlib figure.
        path: the file; its suffix (one of :data:`FORMATS`) picks the format.  The folder must
            exist.
        dpi: dots per inch of raster output (> 0; None: matplotlib's ``savefig.dpi``).
        tight: crop to the drawn content (``bbox_inches='tight'``).
        close: close the figure afterwards (free its memory when nothing else will be drawn).

    A PDF or SVG carries no creation date, so a rerun gives an identical file (the PNG writer
    stores no timestamp).  Raises :class:`ValueError` for another suffix or a non-positive ``dpi``.
    """
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(f"path={str(path)!r} is not allowed: its suffix must be one of {FORMATS}")
    if dpi is not None and not dpi > 0:
        raise ValueError(f"dpi={dpi!r} is not allowed: it must be > 0 (dots per inch) or None")
    options: dict[str, Any] = {}
    if dpi is not None:
        options["dpi"] = dpi
    if tight:
        options["bbox_inches"] = "tight"
    # No timestamp in the file: reruns give the same bytes.
    if path.suffix == ".pdf":
        options["metadata"] = {"CreationDate": None}
    elif path.suffix == ".svg":
        options["metadata"] = {"Date": None}
    import matplotlib

    # SVG element ids are random unless salted: a fixed salt makes them the same on a rerun.
    with matplotlib.rc_context({"svg.hashsalt": "mfh-sim"}):
        figure.savefig(path, **options)
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return path


def use_file_backend() -> None:
    """Draw off-screen (matplotlib's Agg backend): for commands that only write files.

    Called by the ``mfh-sim`` commands when they run, never at import, so importing a command
    (or :mod:`mfh_sim.plots`) leaves a notebook's or a user's backend alone.
    """
    import matplotlib

    matplotlib.use("Agg")
