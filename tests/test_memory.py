"""The theory's solves keep freed memory while they run (mfh_sim/memory.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mfh_sim import memory


class FakeGlibc:
    """Records the allocator calls kept_memory makes."""

    def __init__(self):
        self.calls: list[tuple] = []

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def fake(monkeypatch):
    glibc = FakeGlibc()
    monkeypatch.setattr(memory, "_GLIBC", (glibc.mallopt, glibc.malloc_trim))
    monkeypatch.setattr(memory, "_depth", 0)
    return glibc


RAISE = ("mallopt", memory.M_TOP_PAD, memory.TOP_PAD)
RESTORE = [("mallopt", memory.M_TOP_PAD, memory.DEFAULT_TOP_PAD), ("malloc_trim", 0)]


def test_the_pad_is_raised_once_and_set_back_when_the_outermost_solve_leaves(fake):
    with memory.kept_memory():
        assert fake.calls == [RAISE]
        with memory.kept_memory():
            pass
        assert fake.calls == [RAISE]  # an inner solve leaves the pad to the outer one
    assert fake.calls == [RAISE] + RESTORE
    # Set back even when the solve fails.
    with pytest.raises(RuntimeError, match="failed"):
        with memory.kept_memory():
            raise RuntimeError("the solve failed")
    assert fake.calls == 2 * ([RAISE] + RESTORE)


def test_solves_in_several_threads_share_one_raised_pad(fake):
    inside, leave = threading.Barrier(3), threading.Event()

    def solve():
        with memory.kept_memory():
            inside.wait()
            leave.wait()

    threads = [threading.Thread(target=solve) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()  # both threads are inside
    assert fake.calls == [RAISE]
    leave.set()
    for thread in threads:
        thread.join()
    assert fake.calls == [RAISE] + RESTORE


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(memory, "_GLIBC", None)
    with memory.kept_memory():
        pass  # no allocator call to make, and no error


def test_the_solve_runs_inside_kept_memory_and_its_values_do_not_depend_on_it(fake, monkeypatch):
    """gcm.solve enters kept_memory (the fake records it), and gives the same values, to the bit,
    as with the allocator left alone."""
    import mfh_sim
    from mfh_sim.theory import api

    config = mfh_sim.make_config(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50)
    api._CACHE.clear()
    kept = api.predict(config)
    assert RAISE in fake.calls and fake.calls[-2:] == RESTORE
    monkeypatch.setattr(memory, "_GLIBC", None)
    api._CACHE.clear()
    plain = api.predict(config)
    api._CACHE.clear()
    assert kept.keys() == plain.keys()
    assert all(np.array_equal(kept[key], plain[key], equal_nan=True) for key in kept)


@pytest.mark.skipif(memory._GLIBC is None, reason="the C library is not glibc: kept_memory does nothing there")
def test_glibc_accepts_the_parameters():
    mallopt, _ = memory._GLIBC
    with memory.kept_memory():
        # mallopt returns 1 on success: the pad in force can be set again to the same value.
        assert mallopt(memory.M_TOP_PAD, memory.TOP_PAD) == 1
