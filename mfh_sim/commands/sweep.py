"""``mfh-sim sweep``: run a grid of configs times seeds, persisted to a results directory.

    mfh-sim sweep --gamma 0.1:1:10 --alpha 0 --seeds 1000 --out results/x

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
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.commands import UsageError, integer, one_line, options_in, user_input, writable_folder
from mfh_sim.config import COUNT_KEYS, KNOBS, RATIO_KEYS, Knob

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
        description="Run a grid of configs times seeds, persisted to a results directory (re-running the same "
                    "command resumes it; more --seeds run only the new ones)."
                    " Values: START:STOP:COUNT, a,b,c, or one value."
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
    running.add_argument("--seeds", type=integer(1), default=100, help="seeds per grid point, >= 1 (default 100)")
    running.add_argument("--root-seed", type=integer(0, 2**32 - 1), default=0,
                         help="root of every key, in [0, 2**32) (default 0)")
    running.add_argument("--out", required=True, help="results directory (created, or resumed)")
    running.add_argument("--chunk-size", type=integer(1), default=None,
                         help="runs per compiled call per device, >= 1 (default: sized to the device)")
    running.add_argument("--devices", type=integer(1), default=None,
                         help="use the first N devices (default: all that JAX sees)")
    running.add_argument("--no-theory", action="store_true", help="do not attach the theory's prediction")
    running.add_argument("--no-progress", action="store_true", help="no progress bar")
    running.add_argument("--quiet", action="store_true", help="do not print the summary table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, sweep: Callable | None = None) -> int:
    # Every check runs before anything is computed or written: a mistake leaves no folder behind.
    with user_input():
        keywords = grid_keywords(args)
    out = results_folder(args.out)
    check_grid(keywords)
    if args.devices is not None:
        from mfh_sim.engine import resolve_devices

        with user_input("--devices"):
            resolve_devices(args.devices)
    from mfh_sim.simulation import sweep as default_sweep
    from mfh_sim.store import ResultsMismatchError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = (sweep or default_sweep)(
                seeds=args.seeds, root_seed=args.root_seed, out=out, chunk_size=args.chunk_size,
                devices=args.devices, theory=not args.no_theory, progress=not args.no_progress, **keywords,
            )
        except ResultsMismatchError as error:
            # Raised when the store is opened, before anything runs: another sweep, protocol or version.
            raise UsageError(f"--out: {one_line(error)}") from None
        except KeyboardInterrupt:
            _report_interrupt(out)
            return 130
        table = str(result)
    report_warnings(caught)
    if not args.quiet:
        print(table)
    print(f"results in {args.out} (open with: mfh-sim show {args.out})", file=sys.stderr)
    return 0


def _report_interrupt(out: Path) -> None:
    from mfh_sim.store import open_existing

    try:
        stored, total = open_existing(out).progress()
    except ValueError:  # interrupted before the manifest was written
        print(f"\ninterrupted before anything was stored in {out}", file=sys.stderr)
        return
    print(f"\ninterrupted: {stored} of {total} runs are stored in {out}; run the same "
          "command again to finish the sweep", file=sys.stderr)


def results_folder(text: str) -> Path:
    """``--out``: a new folder, an empty one, or a results directory to resume (whose manifest is
    read here; whether it holds this very sweep is checked when the store opens it)."""
    out = writable_folder(text, "--out")
    if out.is_dir():
        from mfh_sim.store import BLOCKS, MANIFEST, read_manifest

        if (out / MANIFEST).exists():
            with user_input("--out"):
                read_manifest(out)
        elif any(p.name != BLOCKS and not p.name.startswith(".") for p in out.iterdir()):
            raise UsageError(f"--out {text!r} is not allowed: it is a non-empty folder without a {MANIFEST}, "
                             "not a results directory; give a new or empty folder, or a results directory to resume")
    return out


def check_grid(keywords: dict[str, Any]) -> None:
    """Build the config of every grid point on the host (:func:`mfh_sim.config.make_config`, as the
    sweep will), so that an impossible one is refused, naming its options, before anything runs."""
    if not any(name in keywords for name in RATIO_KEYS + COUNT_KEYS):
        raise UsageError("no Venn diagram: give two of --gamma, --alpha, --beta (ratios), or the counts "
                         "--shared, --a-only, --b-only")
    from mfh_sim.config import make_config
    from mfh_sim.simulation import expand_grid

    with user_input():
        grid = expand_grid(**keywords)
    options = {name: knob.option for name, knob in KNOBS.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the sweep reports realised ratios itself
        for index, point in enumerate(grid):
            try:
                make_config(**point)
            except ValueError as error:
                message = one_line(error)
                named = options_in(message, options)
                words = " ".join(f"{KNOBS[k].option} {_show_default(v)}" for k, v in point.items())
                raise UsageError(
                    f"{', '.join(named) or 'impossible grid point'}: {message} (grid point {index + 1} of "
                    f"{len(grid)}: {words}; every point is checked before anything runs)"
                ) from None


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
