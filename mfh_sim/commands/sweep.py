"""``mfh-sim sweep``: run a grid of configs times seeds, persisted to a results directory.

    mfh-sim sweep --gamma 0:1:11 --alpha 0 --seeds 1000 --out results/x

A value is a range ``START:STOP:COUNT`` (COUNT evenly spaced values from START to STOP
inclusive), a comma-separated list, or a single value; options given a range or a list are grid
axes.  Re-running the same command after an interruption finishes the sweep, computing only what
is missing (see :mod:`mfh_sim.store`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Callable

import numpy as np

#: Knobs the command exposes, with the parser of one value.
_INT = "int"
_FLOAT = "float"
_TEXT = "text"
KNOBS: dict[str, str] = {
    "gamma": _FLOAT, "alpha": _FLOAT, "beta": _FLOAT,
    "shared": _INT, "a_only": _INT, "b_only": _INT, "unseen": _INT,
    "shared_nondecisive": _INT, "a_nondecisive": _INT, "b_nondecisive": _INT,
    "n_visible": _INT, "dim_a": _INT, "dim_b": _INT,
    "hyperplane": _TEXT, "n_train": _INT, "n_test": _INT,
    "model": _TEXT, "hidden": _TEXT, "init": _TEXT, "optimizer": _TEXT,
    "learning_rate": _FLOAT, "momentum": _FLOAT, "steps": _INT,
    "ce_weight": _FLOAT, "kd_weight": _FLOAT, "temperature": _FLOAT, "kd_reduction": _TEXT,
}


def parse_values(name: str, text: str, kind: str) -> list[Any]:
    """The values of option ``name``: ``START:STOP:COUNT``, ``a,b,c`` or one value.

    ``START:STOP:COUNT`` gives COUNT (>= 1) evenly spaced values from START to STOP inclusive
    (rounded to 12 significant digits so that 0:1:11 gives 0.1, not 0.1000000000000000055);
    integer options need every value to be an integer.
    """
    option = f"--{name.replace('_', '-')}"
    text = text.strip()
    if kind == _TEXT:
        if name == "hidden":  # widths of one MLP: 64 or 64x64; a list of them with commas
            return [_hidden(option, part) for part in text.split(",")]
        values = [part.strip() for part in text.split(",")]
        if not all(values):
            raise ValueError(f"{option} {text!r} is not allowed: give a value or a comma-separated list")
        return values
    if text.count(":") == 2:
        start, stop, count = text.split(":")
        try:
            start_value, stop_value, n = float(start), float(stop), int(count)
        except ValueError:
            raise ValueError(f"{option} {text!r} is not allowed: a range is START:STOP:COUNT, "
                             "for example 0:1:11") from None
        if n < 1:
            raise ValueError(f"{option} {text!r} is not allowed: COUNT must be >= 1")
        numbers = [float(f"{v:.12g}") for v in np.linspace(start_value, stop_value, n)]
    elif ":" in text:
        raise ValueError(f"{option} {text!r} is not allowed: a range is START:STOP:COUNT, for example 0:1:11")
    else:
        try:
            numbers = [float(part) for part in text.split(",")]
        except ValueError:
            raise ValueError(f"{option} {text!r} is not allowed: give a number, a comma-separated "
                             "list or a range START:STOP:COUNT") from None
    if kind == _INT:
        if not all(float(v).is_integer() for v in numbers):
            raise ValueError(f"{option} {text!r} is not allowed: {name} takes integers")
        return [int(v) for v in numbers]
    return numbers


def _hidden(option: str, text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.strip().split("x"))
    except ValueError:
        raise ValueError(f"{option} {text!r} is not allowed: give widths like 64 or 64x64") from None
    return widths


def grid_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The ``sweep`` keywords of the parsed options: lists for axes, scalars for fixed values."""
    keywords: dict[str, Any] = {}
    for name, kind in KNOBS.items():
        text = getattr(args, name)
        if text is None:
            continue
        values = parse_values(name, text, kind)
        keywords[name] = values if len(values) > 1 else values[0]
    return keywords


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid x seeds sweep into a results directory (resumable)",
        description=__doc__.split("\n\n")[0] + " Values: START:STOP:COUNT, a,b,c, or one value.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name in KNOBS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUES")
    parser.add_argument("--seeds", type=int, default=100, help="seeds per grid point (default 100)")
    parser.add_argument("--root-seed", type=int, default=0, help="root of every key (default 0)")
    parser.add_argument("--out", required=True, help="results directory (created, or resumed)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="runs per compiled call per device (default: sized to the device)")
    parser.add_argument("--devices", type=int, default=None,
                        help="use the first N devices (default: all that JAX sees)")
    parser.add_argument("--no-theory", action="store_true", help="do not attach the theory's prediction")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quiet", action="store_true", help="do not print the summary table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, sweep: Callable | None = None) -> int:
    from mfh_sim.simulation import sweep as default_sweep

    keywords = grid_keywords(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = (sweep or default_sweep)(
                seeds=args.seeds, root_seed=args.root_seed, out=args.out, chunk_size=args.chunk_size,
                devices=args.devices, theory=not args.no_theory, progress=not args.no_progress, **keywords,
            )
        except KeyboardInterrupt:
            from mfh_sim.store import open_existing

            stored, total = open_existing(args.out).progress()
            print(f"\ninterrupted: {stored} of {total} runs are stored in {args.out}; run the same "
                  "command again to finish the sweep", file=sys.stderr)
            return 130
        table = str(result)
    report_warnings(caught)
    if not args.quiet:
        print(table)
    print(f"results in {args.out} (open with: mfh-sim show {args.out})", file=sys.stderr)
    return 0


def report_warnings(caught) -> None:
    """Print each distinct runtime warning (diverged runs, recomputed blocks) once, on stderr."""
    seen = set()
    for warning in caught:
        if not issubclass(warning.category, RuntimeWarning):
            continue
        message = str(warning.message)
        if message not in seen:
            seen.add(message)
            print(f"warning: {message}", file=sys.stderr)
