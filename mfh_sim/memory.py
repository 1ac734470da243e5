"""The theory's solves keep the memory they free, instead of handing it back to the kernel each time.

The fixed-point iteration of :func:`mfh_sim.theory.gcm.solve` creates and frees numpy temporaries
over its quadrature rule thousands of times a second.  In a process whose allocator has not yet
adapted to large allocations (one that asks the theory before simulating anything), glibc gives
the top of its heap back to the kernel as soon as a little is free there, so the next temporary
touches fresh pages, each a page fault: about a million of them for the theory figure's grid of 78
problems and 4.9 million for the default head-to-head family's theory, a sixth to a quarter of
the family's time and more of the grid's (``benchmarks/RESULTS.md``).  :func:`kept_memory`
raises the heap's top pad (glibc's ``M_TOP_PAD``: memory kept at the top of the heap when it
shrinks) for as long as a solve runs, and sets it back, returning what was kept, when the last
solve running in the process leaves.

Only the allocator's bookkeeping changes: every value computed is the same, to the bit.  A side
effect outlives the solve: once a program sets one of glibc's malloc parameters, glibc stops
adapting its mmap threshold to the program's allocations (it keeps the value reached so far); a
sweep run after the theory measured the same page faults and time as without.  The pad is not
raised for the whole process: set before JAX starts, it made ``mfh-sim reproduce`` fault 11-14
million times instead of 2.5 million, and raised around the engine's calls it changed nothing.
Where the C library is not glibc (macOS, musl), :func:`kept_memory` does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator

#: Memory kept at the top of the heap during a solve, bytes: more than its live temporaries (a
#: dozen arrays of ``gcm.SOLVE_POINTS`` doubles, 1 MiB each).
TOP_PAD = 64 << 20
#: glibc's default top pad (``man mallopt``), set back when the last solve leaves.
DEFAULT_TOP_PAD = 128 << 10
#: glibc's parameter number of the top pad (malloc.h).
M_TOP_PAD = -2

_lock = threading.Lock()
_depth = 0


def _glibc():
    """glibc's ``mallopt`` and ``malloc_trim``, or None where the C library lacks them."""
    try:
        # The symbols the process already has, the C library's among them: no search for the
        # library's file (ctypes.util.find_library runs ldconfig: 2 ms, against 0.07 ms here).
        libc = ctypes.CDLL(None)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return mallopt, malloc_trim


_GLIBC = _glibc()


@contextlib.contextmanager
def kept_memory() -> Iterator[None]:
    """Keep :data:`TOP_PAD` bytes at the top of the heap while the body runs (glibc only).

    Re-entrant and safe across threads (the C-class theory's batches, the theory beside the
    simulations of a head-to-head): the pad is raised when the first body in the process enters
    and set back to glibc's default, with the kept memory returned (``malloc_trim``), when the
    last one leaves.  Entering and leaving cost about 0.2 ms in a process of a few hundred MB.
    """
    global _depth
    if _GLIBC is None:
        yield
        return
    mallopt, malloc_trim = _GLIBC
    with _lock:
        _depth += 1
        if _depth == 1:
            mallopt(M_TOP_PAD, TOP_PAD)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                mallopt(M_TOP_PAD, DEFAULT_TOP_PAD)
                malloc_trim(0)
