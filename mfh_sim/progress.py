"""Progress bars that suit where they run, drawn by tqdm behind one small interface.

* a terminal: tqdm's bar, redrawn in place;
* a log file, a pipe or CI (the stream is not a TTY): one complete line every few seconds
  (:data:`LOG_INTERVAL_S`), no carriage returns, so a log holds a readable handful of lines
  instead of thousands of ``\\r`` redraws;
* a Jupyter notebook: a widget (``tqdm.notebook``) when ipywidgets is installed, else tqdm's
  text bar, which notebooks redraw in place;
* ``enabled=False``: nothing is written and tqdm is not even imported.

The interface is what :func:`mfh_sim.simulation.sweep`, :mod:`mfh_sim.experiments.hypotheses` and
:func:`mfh_sim.experiments.table2` use: ``ProgressBar(total, label=..., enabled=..., stream=...)``,
``update(n)`` (thread-safe: the engine reports finished blocks from worker threads) and
``close()``.  It also works as a context manager.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from typing import IO, Any

#: Seconds between two lines when the stream is not a terminal (a log or CI).
LOG_INTERVAL_S = 5.0


def _is_tty(stream: IO[str]) -> bool:
    """A terminal tqdm can draw in: a TTY with a width (some CI ptys report 0 columns, where
    tqdm would draw nothing at all; those get the log mode)."""
    try:
        return bool(stream.isatty()) and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):  # no isatty/fileno, or a closed stream
        return False


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (the same test tqdm.autonotebook makes), without importing
    IPython when nothing else has."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an unusual IPython: fall back to the plain text modes
        return False


class _LineWriter:
    """A file for tqdm that turns each redraw into one complete line.

    tqdm redraws a bar by writing ``"\\r" + status + padding``; a log file keeps every such
    write on one ever-growing physical line.  Here each write's non-blank segments become
    lines of their own, the padding is stripped, and a line whose count is the previous one's
    is dropped (on close tqdm redraws the final state, differing only in the rate).  It has no
    ``encoding``, so tqdm draws
    an ASCII bar, which suits logs.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last = ""

    def write(self, text: str) -> int:
        for segment in text.replace("\r", "\n").split("\n"):
            line = segment.rstrip()
            progress = line.split(" [", 1)[0]  # "label:  40%|####  | 4/10", without timing
            if line and progress != self._last:
                self._stream.write(line + "\n")
                self._last = progress
        return len(text)

    def flush(self) -> None:
        flush = getattr(self._stream, "flush", None)
        if flush is not None:
            flush()


class ProgressBar:
    """Counts finished runs out of ``total``; ``update(n)`` is thread-safe.

    Args:
        total: runs expected (a negative count is taken as 0).
        label: what is counted, shown before the bar.
        enabled: False draws nothing (and costs nothing).
        stream: where to draw (default ``sys.stderr``); its being a TTY or not picks the mode.
    """

    def __init__(self, total: int, label: str = "runs", enabled: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.enabled = bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self._done = 0
        self._lock = threading.Lock()
        self._bar: Any = None
        if self.enabled and self.total > 0:  # total 0 (a resume with nothing left): no bar
            self._bar = self._make_bar(stream is None)

    def _make_bar(self, default_stream: bool) -> Any:
        # Imported here: most calls run with progress off, and `import mfh_sim` stays lighter.
        from tqdm import std

        common: dict[str, Any] = dict(total=self.total, desc=self.label, unit="run", leave=True)
        if default_stream and _in_notebook():
            if importlib.util.find_spec("ipywidgets") is not None:
                from tqdm.notebook import tqdm as notebook_tqdm

                return notebook_tqdm(**common)
            # Without ipywidgets tqdm.auto would warn and fall back to the text bar; a
            # notebook's output area redraws "\r" updates in place, so use that directly.
            return std.tqdm(file=self.stream, **common)
        if _is_tty(self.stream):
            return std.tqdm(file=self.stream, dynamic_ncols=True, **common)
        # A log or CI: at most one line per LOG_INTERVAL_S.  miniters=1 turns off tqdm's
        # dynamic skipping, which could otherwise hold back a line long after the interval
        # when blocks finish irregularly; the interval alone bounds the output.
        return std.tqdm(file=_LineWriter(self.stream), mininterval=LOG_INTERVAL_S, miniters=1,
                        ascii=True, **common)

    @property
    def done(self) -> int:
        """Runs counted so far."""
        return self._done

    def update(self, count: int) -> None:
        """Count ``count`` more finished runs."""
        with self._lock:
            self._done += int(count)
            if self._bar is not None:
                self._bar.update(int(count))

    def close(self) -> None:
        """Draw the final state (in a log: the last line) and release the bar; idempotent."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
