"""The ``mfh-sim`` command line.

Each subcommand lives in its own module of :mod:`mfh_sim.commands`, which defines
``add_parser(subparsers)`` (registering the subcommand and setting ``func`` to the callable
that runs it with the parsed arguments).  This module only discovers and dispatches them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

import mfh_sim.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfh-sim",
        description="Simulate crossmodal knowledge distillation on modality Venn diagrams.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_info in sorted(pkgutil.iter_modules(mfh_sim.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"mfh_sim.commands.{module_info.name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as error:
        print(f"mfh-sim {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
