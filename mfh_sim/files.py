"""Writing files: one atomic writer, one CSV writer and reader, numbers as text that do not flip.

Every file the package writes goes through :func:`atomic_write` (a temporary file in the same
directory, flushed to disk, renamed over the target), so a process killed at any instant leaves
either the old file or the new one, never half of one.  CSVs go through the standard ``csv``
module (:func:`write_csv`, :func:`read_csv`); numbers become text through :func:`number_text`,
which never writes ``-0.0``: a quantity that is zero up to rounding prints the same on every
machine, whatever the sign of the last rounding error (figures stay byte-stable across CPUs).
Imports only the standard library and numpy.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete, never partial:
    write a temporary file in the same directory, flush it to disk, rename it over ``path``."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass
    return path


def number_text(value: float, spec: str = "") -> str:
    """``format(value, spec)`` without a negative zero: "-0.00" becomes "0.00" ("+0.00" with a
    ``+`` in ``spec``), and ``format(-0.0)`` "0.0"."""
    text = format(value, spec)
    if "-" in text and float(text) == 0.0:
        # Keep a padded width: " -0.00" becomes "  0.00".
        return text.replace("-", "+" if "+" in spec else (" " if text[0] == " " else ""), 1)
    return text


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for None and non-finite floats, floats rounded to 10 decimals (the
    shortest text that reads back as the rounded value, never ``-0.0``), anything else as text."""
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        # + 0.0 turns a negative zero (a value that rounds to zero from below) into 0.0.
        return repr(round(value, 10) + 0.0) if math.isfinite(value) else ""
    return str(value)


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts; the first row's keys are the columns) as CSV to ``path``, atomically.

    The one CSV writer of every result (``to_csv`` of :class:`~mfh_sim.results.SweepResult`,
    :class:`~mfh_sim.experiments.table2.Table2Result`, ...).
    """
    if not rows:
        raise ValueError(f"rows=[] is not allowed: there is nothing to write to {str(path)!r}")
    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(row.get(column)) for column in columns] for row in rows)
    return atomic_write(Path(path), buffer.getvalue())


def _parse(text: str) -> Any:
    if text == "":
        return math.nan
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a CSV written by :func:`write_csv`, one dict per row: integers and floats
    parsed, empty cells as NaN, text as text."""
    with Path(path).open(newline="") as handle:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]
