"""Conventional PyTorch baseline for the synthetic Fig. 2 protocol of the
Modality Focusing Hypothesis paper (Xue et al., ICLR 2023).

This script is the speed reference that the JAX implementation in ``mfh_sim``
is measured against. It is deliberately written the way the paper's own code
works: one ``torch.nn.Linear`` model at a time, trained with a plain Python
loop over full-batch gradient steps. Nothing is vectorised across models,
repetitions or overlaps.

Protocol
--------
* Decisive latents ``z ~ N(0, I_K)`` with ``K = 20``. A hyperplane
  ``w ~ N(0, I_K)`` is drawn fresh for every repetition and the label is
  ``y = 1[w . z > 0]`` (binary, two logits).
* Student modality ``x_b`` (50 channels): channels 0..9 carry latents 0..9,
  the other 40 channels are independent ``N(0, 1)`` noise.
* Teacher modality ``x_a`` (25 channels): channels 0..9 carry latents
  ``(10 - o) .. (19 - o)`` for the overlap ``o`` in {0, 2, 4, 6, 8, 10}; the
  other 15 channels are ``N(0, 1)`` noise. The modality overlap ratio is
  ``gamma = o / (20 - o)``.
* ``n_train = 200`` and ``n_test = 1000`` (a fresh sample under the same
  hyperplane); 10 repetitions per overlap.
* Every model is ``torch.nn.Linear(in, 2)`` with PyTorch's default init,
  trained by full-batch ``torch.optim.SGD(lr=0.1)`` (no momentum) for 1000
  steps.
* Three trainings per repetition:

  1. the teacher on ``x_a`` with cross-entropy;
  2. the no-KD student on ``x_b`` with cross-entropy;
  3. the KD student on ``x_b`` with
     ``CE(student(x_b), y) + KLDivLoss()(log_softmax(student(x_b)),
     softmax(teacher(x_a)))`` -- ``KLDivLoss`` with its default reduction
     ``'mean'`` (averaged over batch *and* classes), temperature 1, both
     weights 1. The teacher is frozen (eval mode, no grad) and its logits on
     the training ``x_a`` are recomputed inside the step loop, as in the
     original code.

* Each model's accuracy is measured on the test sample after the last step.

Usage
-----
From the repository root::

    python benchmarks/torch_baseline.py            # full protocol
    python benchmarks/torch_baseline.py --steps 100

or from another script::

    from benchmarks.torch_baseline import run_protocol
    result = run_protocol(repetitions=10, steps=1000, seed=0)
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

# The benchmark machine has 2 CPU cores (shared with other work). Pinning the
# intra-op thread pool to 2 keeps PyTorch from oversubscribing them and makes
# timings comparable between runs and with the JAX implementation.
torch.set_num_threads(2)

# PyTorch warns that KLDivLoss's default reduction='mean' divides by the number
# of classes as well as the batch size. That default is exactly what the
# paper's code uses, so the warning is expected here and silenced.
warnings.filterwarnings(
    "ignore", message="reduction: 'mean' divides the total loss", category=UserWarning
)

NUM_LATENTS = 20          # K: decisive latents
NUM_SHARED_SLOTS = 10     # latent channels in each modality
STUDENT_CHANNELS = 50     # x_b: 10 latent + 40 noise channels
TEACHER_CHANNELS = 25     # x_a: 10 latent + 15 noise channels
NUM_CLASSES = 2
N_TRAIN = 200
N_TEST = 1000
LEARNING_RATE = 0.1
OVERLAPS = (0, 2, 4, 6, 8, 10)
TRAININGS_PER_REPETITION = 3  # teacher, no-KD student, KD student


def make_split(
    w: torch.Tensor, overlap: int, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw ``n`` samples under hyperplane ``w``; return ``(x_a, x_b, y)``."""
    z = torch.randn(n, NUM_LATENTS, generator=generator)
    y = (z @ w > 0).long()

    x_b = torch.randn(n, STUDENT_CHANNELS, generator=generator)
    x_b[:, :NUM_SHARED_SLOTS] = z[:, :NUM_SHARED_SLOTS]

    first = NUM_SHARED_SLOTS - overlap  # teacher sees latents first..first+9
    x_a = torch.randn(n, TEACHER_CHANNELS, generator=generator)
    x_a[:, :NUM_SHARED_SLOTS] = z[:, first:first + NUM_SHARED_SLOTS]
    return x_a, x_b, y


def train(
    model: nn.Linear,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    teacher: nn.Module | None = None,
    teacher_x: torch.Tensor | None = None,
) -> nn.Linear:
    """Full-batch SGD on ``model``; with a ``teacher``, add the KD term."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    cross_entropy = nn.CrossEntropyLoss()
    kl_divergence = nn.KLDivLoss()  # default reduction='mean', as in the paper
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        logits = model(x)
        loss = cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(teacher_x)
            loss = loss + kl_divergence(
                F.log_softmax(logits, dim=1), F.softmax(teacher_logits, dim=1)
            )
        loss.backward()
        optimizer.step()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    model.eval()
    return (model(x).argmax(dim=1) == y).float().mean().item()


def run_repetition(
    overlap: int, steps: int, generator: torch.Generator
) -> tuple[float, float, float]:
    """One repetition: fresh data, three trainings; return test accuracies."""
    w = torch.randn(NUM_LATENTS, generator=generator)
    xa_train, xb_train, y_train = make_split(w, overlap, N_TRAIN, generator)
    xa_test, xb_test, y_test = make_split(w, overlap, N_TEST, generator)

    teacher = train(nn.Linear(TEACHER_CHANNELS, NUM_CLASSES), xa_train, y_train, steps)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)

    no_kd = train(nn.Linear(STUDENT_CHANNELS, NUM_CLASSES), xb_train, y_train, steps)
    kd = train(
        nn.Linear(STUDENT_CHANNELS, NUM_CLASSES),
        xb_train,
        y_train,
        steps,
        teacher=teacher,
        teacher_x=xa_train,
    )
    return (
        accuracy(teacher, xa_test, y_test),
        accuracy(no_kd, xb_test, y_test),
        accuracy(kd, xb_test, y_test),
    )


def warm_up() -> None:
    """Run one short, untimed repetition.

    The first PyTorch calls in a process pay one-off costs (lazy operator
    set-up, allocator growth) of the order of a second, which would otherwise
    be charged to the first overlap and distort the timing. The warm-up uses
    its own generator and runs before the seeds are set, so results do not
    depend on it.
    """
    run_repetition(OVERLAPS[0], steps=10, generator=torch.Generator().manual_seed(-1))


def run_protocol(repetitions: int = 10, steps: int = 1000, seed: int = 0) -> dict:
    """Run the whole Fig. 2 protocol and time it.

    Returns a dict with
      ``wall_time_s``          total wall time of the protocol, seconds;
      ``overlap_time_s``       wall time per overlap, seconds;
      ``overlaps``, ``gamma``  the overlaps o and ratios o / (20 - o);
      ``teacher_acc``, ``no_kd_acc``, ``kd_acc``
                               mean test accuracy per overlap, fractions in [0, 1];
      ``training_runs``        number of trainings (3 per repetition);
      ``runs_per_s``           training runs per second of wall time;
      ``repetitions``, ``steps``, ``seed``, ``torch_version``, ``num_threads``.

    The timing covers data generation, training and evaluation, after a short
    untimed warm-up (see ``warm_up``).
    """
    warm_up()
    torch.manual_seed(seed)  # model initialisation
    generator = torch.Generator().manual_seed(seed)  # data

    teacher_acc, no_kd_acc, kd_acc, overlap_time_s = [], [], [], []
    start = time.perf_counter()
    for overlap in OVERLAPS:
        overlap_start = time.perf_counter()
        results = [run_repetition(overlap, steps, generator) for _ in range(repetitions)]
        overlap_time_s.append(time.perf_counter() - overlap_start)
        teacher_mean, no_kd_mean, kd_mean = (
            sum(column) / repetitions for column in zip(*results)
        )
        teacher_acc.append(teacher_mean)
        no_kd_acc.append(no_kd_mean)
        kd_acc.append(kd_mean)
    wall_time_s = time.perf_counter() - start

    training_runs = TRAININGS_PER_REPETITION * repetitions * len(OVERLAPS)
    return {
        "wall_time_s": wall_time_s,
        "overlap_time_s": overlap_time_s,
        "overlaps": list(OVERLAPS),
        "gamma": [o / (NUM_LATENTS - o) for o in OVERLAPS],
        "teacher_acc": teacher_acc,
        "no_kd_acc": no_kd_acc,
        "kd_acc": kd_acc,
        "training_runs": training_runs,
        "runs_per_s": training_runs / wall_time_s,
        "repetitions": repetitions,
        "steps": steps,
        "seed": seed,
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
    }


def format_table(result: dict) -> str:
    """Render ``run_protocol``'s result as a small text table."""
    lines = [
        f"PyTorch {result['torch_version']} baseline, {result['num_threads']} threads: "
        f"{result['repetitions']} repetitions x {len(result['overlaps'])} overlaps, "
        f"{result['steps']} steps, seed {result['seed']}",
        f"{'o':>3} {'gamma':>6} {'teacher %':>10} {'no-KD %':>8} {'KD %':>6} {'time s':>7}",
    ]
    for row in zip(
        result["overlaps"],
        result["gamma"],
        result["teacher_acc"],
        result["no_kd_acc"],
        result["kd_acc"],
        result["overlap_time_s"],
    ):
        o, gamma, teacher, no_kd, kd, seconds = row
        lines.append(
            f"{o:>3} {gamma:>6.3f} {100 * teacher:>10.1f} {100 * no_kd:>8.1f} "
            f"{100 * kd:>6.1f} {seconds:>7.2f}"
        )
    lines.append(
        f"total {result['wall_time_s']:.2f} s for {result['training_runs']} training runs "
        f"({result['steps']} steps each): {result['runs_per_s']:.2f} runs/s"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="PyTorch baseline for the MFH synthetic Fig. 2 protocol."
    )
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(format_table(run_protocol(args.repetitions, args.steps, args.seed)))


if __name__ == "__main__":
    main()
