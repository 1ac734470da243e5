"""Subcommands of ``mfh-sim``: one module each, discovered by :mod:`mfh_sim.cli`.

This package's own namespace holds what every command shares to report a mistake on the command
line (CONTRIBUTING.md, "The command line"): :class:`UsageError`, which :func:`mfh_sim.cli.main`
prints as one line with exit status 2; :func:`user_input`, which turns the ``ValueError`` of a
validation into one; argparse types that say what is allowed (:func:`integer`, :func:`finite_number`);
and the checks of an output folder or file that run before anything is computed or written
(:func:`writable_folder`, :func:`writable_file`).  Only the standard library is imported here, so
``mfh-sim --help`` stays light.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


class UsageError(Exception):
    """A mistake on the command line: printed as one line on stderr, exit status 2.

    Raise it (or let :func:`user_input` raise it) only for the user's input, and only before
    anything is computed or written; any other exception is a bug and keeps its traceback.
    """


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


#: ``name=`` in a library's message: the parameter it refuses (CONTRIBUTING.md, "Style").
_PARAMETER = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=")


def options_in(message: str, names: Mapping[str, str]) -> list[str]:
    """The options (values of ``names``) whose parameters ``message`` names as ``name=``, in order."""
    found: list[str] = []
    for name in _PARAMETER.findall(message):
        option = names.get(name)
        if option is not None and option not in found:
            found.append(option)
    return found


@contextmanager
def user_input(option: str | None = None, names: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn a ``ValueError`` or ``OSError`` raised inside into a :class:`UsageError`.

    Wrap only the validation of the user's input, before anything is computed or written: a
    ``ValueError`` of the computation itself is a bug and must keep its traceback.  The line
    starts with ``option`` (say ``--out``) or, when ``names`` maps the library's parameter names
    to options (``{"n_configs": "--configs"}``), with the options whose parameters the message
    names.
    """
    try:
        yield
    except UsageError:
        raise
    except (ValueError, OSError) as error:
        message = one_line(error)
        lead = [option] if option else options_in(message, names or {})
        if lead and not message.startswith(lead[0]):
            message = f"{', '.join(lead)}: {message}"
        raise UsageError(message) from error


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in [minimum, maximum], refused in words that say so."""
    allowed = "an integer" + (f" >= {minimum}" if minimum is not None and maximum is None else "") + (
        f" from {minimum} to {maximum}" if minimum is not None and maximum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give {allowed}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give {allowed}")
        return value

    parse.__name__ = "integer"
    return parse


# (Not named `real`: the package has a submodule of that name, which would shadow it once imported.)
def finite_number(text: str) -> float:
    """An argparse ``type``: a finite number (its range is checked where it is used)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give a finite number")
    return value


def _probe(folder: Path) -> None:
    """Create and remove an empty folder in ``folder``: OSError if nothing can be written there.

    (Permission bits are not enough: root passes ``os.access`` where the kernel still refuses,
    as in /proc or on a read-only mount.)
    """
    os.rmdir(tempfile.mkdtemp(prefix=".mfh-sim-probe-", dir=folder))


def _nearest_existing(path: Path) -> Path:
    ancestor = path.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return ancestor


def writable_folder(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a folder the command may create or write into; :class:`UsageError` if it cannot.

    Refused: an existing file, a path under a file, a place where nothing can be written.  Nothing
    is left behind: the folder is not created here (the command creates it once everything else
    is checked).
    """
    path = Path(path)
    shown = f"{option} {str(path)!r} is not allowed"
    if path.exists() and not path.is_dir():
        raise UsageError(f"{shown}: it is a file; give a folder (new or existing)")
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        raise UsageError(f"{shown}: {str(ancestor)!r} is a file, so no folder can be created under it")
    try:
        _probe(ancestor)
    except OSError as error:
        where = "it" if ancestor == path.absolute() else f"{str(ancestor)!r}"
        raise UsageError(f"{shown}: nothing can be written in {where} (the system says: {error.strerror}); "
                         "give a folder you can write to") from None
    return path


def writable_file(path: str | os.PathLike, option: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """``path`` as a file the command may write, in an existing folder; :class:`UsageError` if not.

    ``suffixes``: the allowed file name endings (say ``(".png", ".pdf")``), or any.
    """
    path = Path(path)
    shown = f"{option} {str(path)!r} is not allowed"
    if suffixes is not None and path.suffix not in suffixes:
        raise UsageError(f"{shown}: its name must end in one of {', '.join(suffixes)}")
    if path.is_dir():
        raise UsageError(f"{shown}: it is a folder; give a file name")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UsageError(f"{shown}: its folder {str(path.parent)!r} does not exist")
    try:
        _probe(folder)
    except OSError as error:
        raise UsageError(f"{shown}: nothing can be written in {str(path.parent)!r} "
                         f"(the system says: {error.strerror})") from None
    return path
