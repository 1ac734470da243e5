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
from collections.abc import Callable
from typing import Any

import numpy as np

from mfh_sim.config import KNOBS, Knob

#: Spellings of a boolean value on the command line.
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def parse_values(name: str, text: str, kind: str | None = None) -> list[Any]:
    """The values of option ``--name``: ``START:STOP:COUNT``, ``a,b,c`` or one value.

    ``START:STOP:COUNT`` gives COUNT (>= 1) evenly spaced values from START to STOP inclusive
    (rounded to 12 significant digits so that 0:1:11 gives 0.1, not 0.1000000000000000055);
    integer options need every value to be an integer.  A knob of :data:`mfh_sim.config.KNOBS`
    is parsed by its metadata's kind: 'int', 'float', 'choice', 'bool' or 'widths' (MLP widths
    ``64`` or ``64x64``); ``kind`` applies only to another name (default 'float').  Choices are
    checked here, so a typo names the allowed values before anything runs.
    """
    knob = KNOBS.get(name)
    # The metadata is the one source of a knob's kind; ``kind`` is for names it does not know.
    kind = knob.kind if knob is not None else (kind or "float")
    option = f"--{name.replace('_', '-')}"
    text = text.strip()
    if kind in ("choice", "bool", "widths", "text"):
        values = [part.strip() for part in text.split(",")]
        if not all(values):
            raise ValueError(f"{option} {text!r} is not allowed: give a value or a comma-separated list")
        if kind == "widths":
            return [_hidden(option, part) for part in values]
        if kind == "bool":
            return [_boolean(option, part) for part in values]
        if kind == "choice" and knob is not None:
            for value in values:
                if value not in knob.choices:
                    raise ValueError(f"{option} {value!r} is not allowed: use one of {', '.join(knob.choices)}")
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
    if kind == "int":
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


def _boolean(option: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{option} {text!r} is not allowed: use true or false (or a list: true,false)")


def _metavar(knob: Knob) -> str:
    if knob.kind == "choice":
        return "{" + ",".join(knob.choices) + "}"
    return {"int": "INTS", "float": "VALUES", "bool": "BOOLS", "widths": "WIDTHS"}[knob.kind]


def _help(knob: Knob) -> str:
    """The option's help line: the knob's doc, its default and its role (from the metadata)."""
    default = "" if knob.default is None else f"; default {_show_default(knob.default)}"
    # argparse formats help with %, so a literal percent sign must be doubled.
    return f"{knob.doc} [{knob.role}{default}]".replace("%", "%%")


def _show_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def grid_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The ``sweep`` keywords of the parsed options: lists for axes, scalars for fixed values."""
    keywords: dict[str, Any] = {}
    for name, knob in KNOBS.items():
        text = getattr(args, name, None)
        if text is None:
            continue
        values = parse_values(name, text, knob.kind)
        keywords[name] = values if len(values) > 1 else values[0]
    return keywords


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid x seeds sweep into a results directory (resumable)",
        description=__doc__.split("\n\n")[0] + " Values: START:STOP:COUNT, a,b,c, or one value."
        " Each option's help ends with [role; default]: 'traced' knobs vary inside one compiled"
        " program, 'static' ones compile one program per value, 'layout' is the Venn diagram.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # One option per knob, generated from the config's field metadata (mfh_sim.config.KNOBS):
    # a knob added to the config is an option here without touching this file.
    groups = {
        "ratios": parser.add_argument_group("the Venn diagram by ratios (give two of gamma, alpha, beta)"),
        "venn": parser.add_argument_group("the Venn diagram by counts (shared, a_only, b_only), and channels"),
        "training": parser.add_argument_group("data, models and training"),
    }
    for name, knob in KNOBS.items():
        groups[knob.group].add_argument(knob.option, dest=name, metavar=_metavar(knob), help=_help(knob))
    running = parser.add_argument_group("running")
    running.add_argument("--seeds", type=int, default=100, help="seeds per grid point (default 100)")
    running.add_argument("--root-seed", type=int, default=0, help="root of every key (default 0)")
    running.add_argument("--out", required=True, help="results directory (created, or resumed)")
    running.add_argument("--chunk-size", type=int, default=None,
                        help="runs per compiled call per device (default: sized to the device)")
    running.add_argument("--devices", type=int, default=None,
                        help="use the first N devices (default: all that JAX sees)")
    running.add_argument("--no-theory", action="store_true", help="do not attach the theory's prediction")
    running.add_argument("--no-progress", action="store_true", help="no progress bar")
    running.add_argument("--quiet", action="store_true", help="do not print the summary table")
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
