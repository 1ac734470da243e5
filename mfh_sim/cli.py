"""The ``mfh-sim`` command line.

Each subcommand lives in its own module of :mod:`mfh_sim.commands`, which defines
``add_parser(subparsers)`` (registering the subcommand and setting ``func`` to the callable
that runs it with the parsed arguments).  This module only discovers and dispatches them.

Imports run one way and late: a command module imports at its top only the standard library,
numpy and :mod:`mfh_sim.config`; JAX, the simulator and matplotlib are imported inside the
function that runs the command.  So ``mfh-sim --help`` and ``mfh-sim sweep --help`` load
neither JAX nor matplotlib (a test checks it), and ``mfh-sim sweep ...`` imports only the
``sweep`` command's module before it runs.

Every mistake on the command line ends the same way, whichever command it is in: exit status 2
and one line on stderr, ``mfh-sim COMMAND: error: ...``, naming the option and what is allowed.
argparse's own errors come through :class:`Parser` (every subcommand's parser is one, so a new
command gets it for free); a command reports the rest by raising
:class:`mfh_sim.commands.UsageError` (or through :func:`mfh_sim.commands.user_input`) before it
computes or writes anything.  Any other exception is a bug: it keeps its traceback (exit 1).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

import mfh_sim.commands
from mfh_sim._version import __version__
from mfh_sim.commands import UsageError, one_line


class Parser(argparse.ArgumentParser):
    """argparse's parser, but a mistake raises :class:`UsageError` (one line, exit status 2)
    instead of printing the usage block and exiting; subparsers are of this class too.  An
    unknown option is answered with the nearest known one ("did you mean --learning-rate?")."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            known = _option_strings(self)
            hints = [f"{word} (did you mean {close[0]}?)" for word in message.split(":", 1)[1].split()
                     if word.startswith("--") and (close := difflib.get_close_matches(word.split("=")[0], known, 1))]
            if hints:
                message += "; " + "; ".join(hints)
        raise UsageError(message)


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of ``parser`` and of its subcommands' parsers."""
    found = []
    for action in parser._actions:
        found += [option for option in action.option_strings if option.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _option_strings(sub)
    return found


def command_names() -> list[str]:
    """The subcommands: the modules of :mod:`mfh_sim.commands`, found without importing them."""
    return sorted(info.name for info in pkgutil.iter_modules(mfh_sim.commands.__path__)
                  if not info.name.startswith("_"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``mfh-sim`` parser with every subcommand, or only ``only`` (when it names one).

    Registering one subcommand imports one command module; the full parser (for ``--help``)
    imports them all, which is cheap by the rule above.
    """
    parser = Parser(
        prog="mfh-sim",
        description="Simulate crossmodal knowledge distillation on modality Venn diagrams.",
    )
    parser.add_argument("--version", action="version", version=f"mfh-sim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    names = command_names()
    for name in [only] if only in names else names:
        importlib.import_module(f"mfh_sim.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mfh-sim`` with ``argv`` (default: the process's arguments); return the exit status.

    A mistake on the command line (:class:`UsageError`, from argparse or from a command) is
    printed as one line on stderr, ``mfh-sim COMMAND: error: ...``, with exit status 2, never as a
    traceback.  Every other exception propagates: it is a bug, not the user's mistake.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # The first word that is not an option names the command; only its module is needed.
    first = next((word for word in argv if not word.startswith("-")), None)
    command = first if first in command_names() else None
    try:
        if first is None and not {"-h", "--help", "--version"} & set(argv):
            raise UsageError(f"give a command: one of {', '.join(command_names())} (mfh-sim --help says more)")
        args = build_parser(only=first).parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"mfh-sim{' ' + command if command else ''}: error: {one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
