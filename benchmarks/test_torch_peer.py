"""The batched PyTorch peer of the speed benchmark (benchmarks/torch_baseline.py) trains the same
protocol as mfh_sim: its accuracies agree with the simulator's within seed noise, and the
comparison that the benchmark prints flags a peer with a deliberate bug.

torch is an optional benchmark dependency (the ``bench`` extra), not a test dependency, so these
checks live beside the benchmark and `make bench` runs them (after installing torch) before it
times anything; the test suite does not collect them."""

import numpy as np
import pytest
import torch

from benchmarks import torch_baseline
from mfh_sim.experiments.paper import fig2_point

OVERLAPS = (0, 10)  # gamma 0 and 1: the KD gain has opposite signs there
SEEDS = 60
STEPS = 300


@pytest.fixture(scope="module")
def reference():
    """mfh_sim's accuracies (overlaps, seeds, 3) at the peer's shortened protocol."""
    import mfh_sim

    result = mfh_sim.sweep(points=[fig2_point(o) for o in OVERLAPS], seeds=SEEDS, theory=False, steps=STEPS)
    return np.stack([result.teacher_acc, result.no_kd_acc, result.kd_acc], axis=-1)


def peer_accuracies(peer):
    return np.stack([
        np.concatenate([peer(o, 30, torch.Generator().manual_seed(chunk)).numpy() for chunk in range(SEEDS // 30)])
        for o in OVERLAPS
    ])


def test_the_batched_peer_agrees_with_mfh_sim_within_seed_noise(reference):
    torch.set_num_threads(1)
    ours = peer_accuracies(torch_baseline.BatchedPeer(steps=STEPS))
    agree, worst, lines = torch_baseline.compare_accuracies(reference, ours)
    assert agree, "\n".join(lines)
    # The comparison has power: the KD gains at gamma 0 and 1 differ by several SEs in both.
    gain = lambda a: np.mean(a[..., 2] - a[..., 1], axis=1)
    assert gain(reference)[1] - gain(reference)[0] > 0.01 and gain(ours)[1] - gain(ours)[0] > 0.01


def test_the_shared_peer_agrees_with_mfh_sim_and_trains_one_no_kd_student(reference):
    torch.set_num_threads(1)
    peer = torch_baseline.SharedPeer(steps=STEPS)
    ours = np.concatenate([peer(OVERLAPS, 30, torch.Generator().manual_seed(chunk)).numpy()
                           for chunk in range(SEEDS // 30)], axis=1)
    agree, worst, lines = torch_baseline.compare_accuracies(reference, ours)
    assert agree, "\n".join(lines)
    assert np.array_equal(ours[0, :, 1], ours[1, :, 1])  # one no-KD student for every overlap
    # The same draws as the plain peer's at each overlap: the same models up to float rounding.
    plain = peer_accuracies(torch_baseline.BatchedPeer(steps=STEPS))
    assert np.mean(np.abs(plain - ours) <= 1e-3) > 0.95


def test_the_comparison_flags_a_peer_with_the_overlap_mirrored(reference, monkeypatch):
    """The bug: x^a shows the latents of overlap 10 - o (gamma 0 and 1 swapped)."""
    torch.set_num_threads(1)
    channels = torch_baseline.fig2_channels
    monkeypatch.setattr(torch_baseline, "fig2_channels", lambda o: channels(10 - o))
    mirrored = peer_accuracies(torch_baseline.BatchedPeer(steps=STEPS))
    agree, worst, _ = torch_baseline.compare_accuracies(reference, mirrored)
    assert not agree and worst > 4


def test_the_comparison_flags_a_peer_without_the_kd_term(reference):
    torch.set_num_threads(1)
    buggy = torch_baseline.BatchedPeer(steps=STEPS, kd_weight=0.0)
    agree, worst, _ = torch_baseline.compare_accuracies(reference, peer_accuracies(buggy))
    assert not agree and worst > 4


def test_the_peer_gives_the_same_numbers_on_one_worker_or_two():
    """Each chunk draws from its own generator, so worker threads do not change any number."""
    runs = [torch_baseline.run_batched((0, 10), 20, chunk=10, steps=50, workers=workers) for workers in (1, 2)]
    assert np.array_equal(runs[0]["accuracies"], runs[1]["accuracies"])
    assert np.all((runs[0]["accuracies"] > 0.4) & (runs[0]["accuracies"] <= 1.0))
