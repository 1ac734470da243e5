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

The batched peer
----------------
``run_batched`` is the same protocol written the way a PyTorch user who batches well would: all
simulations of a chunk (seeds of one overlap) in one tensor, every training a ``torch.bmm`` over
the chunk, with or without ``torch.compile``.  It trains what ``mfh_sim``'s paper protocol trains,
in the same form (``mfh_sim.protocols.paper.fit_margin_gd``):

* the two-output linear layers in margin form: m = x v + c with v = w_1 - w_0, c = b_1 - b_0
  (softmax sees two logits only through their difference, so with SGD the margin model makes
  exactly the two-output layer's predictions), initial kernel and bias ~ U(-1/sqrt(d), 1/sqrt(d))
  per column as ``nn.Linear``'s;
* closed-form gradients of the per-sample losses with respect to the margin,
  d CE/dm_i = (sigmoid(m_i) - y_i) / n and d KL/dm_i = T (sigmoid(m_i/T) - sigmoid(t_i/T)) / (2 n)
  (``KLDivLoss``'s 'mean' averages over the 2 classes too), chained through m = x v + c:
  dL/dv = 2 x^T dL/dm, dL/dc = 2 sum_i dL/dm_i;
* the teacher first, then both students as two heads of one (n, 50) x (50, 2) product per step,
  head 0 cross-entropy only (the no-KD student), head 1 with the KD term (the KD student), both
  from the same initial weights (paired, as in ``mfh_sim``);
* the data of the Fig. 2 geometry at any overlap o in 0..10: 20 decisive latents, x^b shows
  latents 0..9, x^a latents 10-o..19-o, every other channel N(0, 1) noise, a fresh Gaussian
  hyperplane per simulation; common random numbers across overlaps (a seed's draws do not depend
  on o), as ``mfh_sim``'s default.

The random numbers differ from ``mfh_sim``'s (PyTorch's generator, not JAX's threefry), so the
two agree in distribution, not draw for draw: ``compare_accuracies`` tests the per-overlap means
against each other with a tolerance from their standard errors.
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

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
#: The overlaps of the big sweep (Fig. 2's eleven: o = 0..10).
ALL_OVERLAPS = tuple(range(NUM_SHARED_SLOTS + 1))
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


# ---------------------------------------------------------------------------- the batched peer
#: Simulations per chunk of the batched peer (measured on 2 threads of a 2-core CPU,
#: benchmarks/RESULTS.md): big enough that the per-step Python and dispatch overhead is small
#: against the bmm work, small enough that a chunk's training data stays in cache.
BATCHED_CHUNK = 100
#: Seeds per chunk of the :class:`SharedPeer` (each seed at all 11 overlaps): 20, 50 and 100 took
#: 16.9, 16.4 and 25.9 s for 200 seeds, eager, 2 workers (load 4.2-4.5, benchmarks/RESULTS.md).
SHARED_CHUNK = 50


def fig2_channels(overlap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent indices shown by x^a's and x^b's first 10 channels at overlap ``overlap`` (0..10)."""
    if not 0 <= overlap <= NUM_SHARED_SLOTS:
        raise ValueError(f"overlap={overlap!r} is not allowed: use an integer in 0..{NUM_SHARED_SLOTS}")
    first = NUM_SHARED_SLOTS - overlap
    return torch.arange(first, first + NUM_SHARED_SLOTS), torch.arange(NUM_SHARED_SLOTS)


def draw_batch(
    simulations: int, n: int, generator: torch.Generator, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The draws of :func:`make_batch`, which do not depend on the overlap: ``(z (S, n, 20),
    x^a's noise channels (S, n, 15), x_b (S, n, 50), y (S, 1, n) float 0/1)``."""
    z = torch.randn(simulations, n, NUM_LATENTS, generator=generator)
    y = (torch.einsum("snk,sk->sn", z, w) > 0).float().unsqueeze(1)
    noise_a = torch.randn(simulations, n, TEACHER_CHANNELS - NUM_SHARED_SLOTS, generator=generator)
    noise_b = torch.randn(simulations, n, STUDENT_CHANNELS - NUM_SHARED_SLOTS, generator=generator)
    x_b = torch.cat([z[:, :, fig2_channels(0)[1]], noise_b], dim=-1)
    return z, noise_a, x_b, y


def view_a(z: torch.Tensor, noise_a: torch.Tensor, overlap: int) -> torch.Tensor:
    """x^a (S, n, 25) at ``overlap``: the latents it shows, then its noise channels."""
    return torch.cat([z[:, :, fig2_channels(overlap)[0]], noise_a], dim=-1)


def make_batch(
    overlap: int, simulations: int, n: int, generator: torch.Generator, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``simulations`` independent samples of ``n`` rows under hyperplanes ``w`` (S, 20):
    ``(x_a (S, n, 25), x_b (S, n, 50), y (S, 1, n) float 0/1)``.  The draws do not depend on
    ``overlap`` (it only picks which latents x^a shows): common random numbers."""
    z, noise_a, x_b, y = draw_batch(simulations, n, generator, w)
    return view_a(z, noise_a, overlap), x_b, y


def margin_init(
    simulations: int, fan_in: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Margin weights (S, 1, d) and bias (S, 1, 1) of ``nn.Linear(d, 2)``'s default init:
    the difference of its two columns, each U(-1/sqrt(d), 1/sqrt(d))."""
    bound = fan_in ** -0.5
    layer = (torch.rand(simulations, fan_in + 1, NUM_CLASSES, generator=generator) * 2 - 1) * bound
    margin = layer[..., 1] - layer[..., 0]
    return margin[:, None, :fan_in].contiguous(), margin[:, None, fan_in:].contiguous()


# Heads first: weights (S, heads, d), margins (S, heads, n).  PyTorch's CPU batched GEMM is several
# times faster for a (heads x d) by (d x n) product than for (n x d) by (d x heads) with one or two
# heads (benchmarks/RESULTS.md: 22 against 3.3 GFLOP/s on one thread), so the peer is laid out so.
def teacher_step(v, c, x, x_t, y, lr: float):
    """One full-batch SGD step of the teachers (CE), closed-form margin gradient.
    ``v`` (S, 1, d), ``c`` (S, 1, 1), ``x`` (S, n, d), ``x_t`` its transpose, ``y`` (S, 1, n)."""
    g = (torch.sigmoid(torch.baddbmm(c, v, x_t)) - y) / x.shape[1]
    return v - 2 * lr * torch.bmm(g, x), c - 2 * lr * g.sum(dim=2, keepdim=True)


def student_step(v, c, x, x_t, y, soft_teacher, lr: float, kd_scale: torch.Tensor, temperature: float):
    """One step of both students (heads: no-KD, KD) on x^b: CE plus the KD term on head 1.

    ``v`` (S, 2, d), ``c`` (S, 2, 1); ``soft_teacher`` is sigmoid(t / T) of the teacher's margins
    (S, 1, n); ``kd_scale`` (2, 1) is kd_weight T / (2 n) per head (0 for the no-KD head)."""
    m = torch.baddbmm(c, v, x_t)
    g = (torch.sigmoid(m) - y) / x.shape[1] + kd_scale * (torch.sigmoid(m / temperature) - soft_teacher)
    return v - 2 * lr * torch.bmm(g, x), c - 2 * lr * g.sum(dim=2, keepdim=True)


def _block(step, steps: int):
    """``steps`` applications of ``step`` in one function (what torch.compile is given)."""

    def run(v, c, *fixed):
        for _ in range(steps):
            v, c = step(v, c, *fixed)
        return v, c

    return run


def _accuracy(x, y, v, c) -> torch.Tensor:
    """Test accuracy (S, heads) of margin models; NaN where a model's outputs are not finite."""
    m = torch.baddbmm(c, v, x.transpose(1, 2))
    correct = ((m > 0).float() == y).float().mean(dim=2)
    return torch.where(torch.isfinite(m).all(dim=2), correct, torch.full_like(correct, float("nan")))


class BatchedPeer:
    """The Fig. 2 protocol, batched over a chunk of simulations: ``peer(overlap, simulations,
    generator)`` returns test accuracies (S, 3): teacher, no-KD student, KD student, in [0, 1].

    ``compiled``: each training's loop body (``steps_per_call`` steps) goes through
    ``torch.compile``; otherwise eager.  ``steps_per_call`` > 1 hands the compiler several steps
    at once (fewer Python round trips per step); eager mode runs step by step either way."""

    def __init__(self, steps: int = 1000, compiled: bool = False, steps_per_call: int = 1,
                 learning_rate: float = LEARNING_RATE, kd_weight: float = 1.0, temperature: float = 1.0,
                 device: str = "cpu"):
        if steps % steps_per_call:
            raise ValueError(f"steps_per_call={steps_per_call} must divide steps={steps}")
        self.steps, self.compiled = steps, compiled
        self.learning_rate, self.temperature = learning_rate, temperature
        self.per_call = steps_per_call if compiled else 1
        self.device = torch.device(device)
        self.kd_scale = torch.tensor([[0.0], [kd_weight * temperature / (NUM_CLASSES * N_TRAIN)]],
                                     device=self.device)
        teacher, student = _block(teacher_step, self.per_call), _block(student_step, self.per_call)
        if compiled:
            # Every peer's loop bodies share one code object: forget earlier peers' compilations,
            # or dynamo's per-code recompile limit silently falls back to eager after a few peers.
            torch._dynamo.reset()
            teacher, student = torch.compile(teacher, dynamic=False), torch.compile(student, dynamic=False)
        self._teacher, self._student = teacher, student

    @torch.no_grad()
    def __call__(self, overlap: int, simulations: int, generator: torch.Generator) -> torch.Tensor:
        w = torch.randn(simulations, NUM_LATENTS, generator=generator)
        xa, xb, y = make_batch(overlap, simulations, N_TRAIN, generator, w)
        xa_test, xb_test, y_test = make_batch(overlap, simulations, N_TEST, generator, w)
        teacher_v, teacher_c = margin_init(simulations, TEACHER_CHANNELS, generator)
        student_v, student_c = margin_init(simulations, STUDENT_CHANNELS, generator)
        # Drawn on the CPU (the same numbers on any device), trained where the peer runs.
        xa, xb, y, xa_test, xb_test, y_test, teacher_v, teacher_c, student_v, student_c = (
            t.to(self.device) for t in (xa, xb, y, xa_test, xb_test, y_test,
                                        teacher_v, teacher_c, student_v, student_c))
        lr, calls = self.learning_rate, self.steps // self.per_call
        xa_t = xa.transpose(1, 2).contiguous()  # x^T once, outside the loop, as mfh_sim does
        for _ in range(calls):
            teacher_v, teacher_c = self._teacher(teacher_v, teacher_c, xa, xa_t, y, lr)
        soft_teacher = torch.sigmoid(torch.baddbmm(teacher_c, teacher_v, xa_t) / self.temperature)
        xb_t = xb.transpose(1, 2).contiguous()
        v, c = student_v.repeat(1, 2, 1), student_c.repeat(1, 2, 1)  # both heads from one init
        for _ in range(calls):
            v, c = self._student(v, c, xb, xb_t, y, soft_teacher, lr, self.kd_scale, self.temperature)
        teacher_acc = _accuracy(xa_test, y_test, teacher_v, teacher_c)
        students_acc = _accuracy(xb_test, y_test, v, c)
        # A KD student whose teacher diverged learned from meaningless targets (as in mfh_sim).
        kd_acc = torch.where(teacher_acc[:, 0].isnan(), teacher_acc[:, 0], students_acc[:, 1])
        return torch.stack([teacher_acc[:, 0], students_acc[:, 0], kd_acc], dim=1).cpu()


class SharedPeer(BatchedPeer):
    """The batched peer that also trains once what a seed's overlaps share, as ``mfh_sim``'s packs
    do: ``peer(overlaps, simulations, generator)`` returns accuracies (overlaps, S, 3).

    The draws of a chunk do not depend on the overlap (:func:`draw_batch`), so one draw serves
    every overlap: the teachers of all overlaps train as one batch of overlaps x S models, and
    each simulation's students as 1 + overlaps heads of one (heads x d) weight matrix: head 0 the
    no-KD student, head 1 + j the KD student of overlap j (a wider, faster product than two heads,
    and one no-KD student instead of one per overlap).  Same generator, same draws as
    :class:`BatchedPeer` at each overlap, so the two agree up to float rounding."""

    @torch.no_grad()
    def __call__(self, overlaps, simulations: int, generator: torch.Generator) -> torch.Tensor:
        count = len(overlaps)
        w = torch.randn(simulations, NUM_LATENTS, generator=generator)
        z, noise_a, xb, y = draw_batch(simulations, N_TRAIN, generator, w)
        z_test, noise_test, xb_test, y_test = draw_batch(simulations, N_TEST, generator, w)
        teacher_v, teacher_c = margin_init(simulations, TEACHER_CHANNELS, generator)
        student_v, student_c = margin_init(simulations, STUDENT_CHANNELS, generator)
        # Overlap-major batches of overlaps x S teachers.
        xa = torch.cat([view_a(z, noise_a, o) for o in overlaps])
        xa_test = torch.cat([view_a(z_test, noise_test, o) for o in overlaps])
        ya, ya_test = y.repeat(count, 1, 1), y_test.repeat(count, 1, 1)
        teacher_v, teacher_c = teacher_v.repeat(count, 1, 1), teacher_c.repeat(count, 1, 1)
        xa, ya, xa_test, ya_test, teacher_v, teacher_c, xb, y, xb_test, y_test, student_v, student_c = (
            t.to(self.device) for t in (xa, ya, xa_test, ya_test, teacher_v, teacher_c, xb, y, xb_test, y_test,
                                        student_v, student_c))
        lr, calls = self.learning_rate, self.steps // self.per_call
        xa_t = xa.transpose(1, 2).contiguous()
        for _ in range(calls):
            teacher_v, teacher_c = self._teacher(teacher_v, teacher_c, xa, xa_t, ya, lr)
        soft = torch.sigmoid(torch.baddbmm(teacher_c, teacher_v, xa_t) / self.temperature)  # (O S, 1, n)
        soft = soft.reshape(count, simulations, N_TRAIN).transpose(0, 1)  # (S, O, n)
        soft = torch.cat([torch.zeros_like(soft[:, :1]), soft], dim=1)  # head 0: no KD
        kd_scale = torch.cat([self.kd_scale[:1], self.kd_scale[1:].expand(count, 1)])  # (1 + O, 1)
        xb_t = xb.transpose(1, 2).contiguous()
        v, c = student_v.repeat(1, 1 + count, 1), student_c.repeat(1, 1 + count, 1)  # every head one init
        for _ in range(calls):
            v, c = self._student(v, c, xb, xb_t, y, soft, lr, kd_scale, self.temperature)
        teacher_acc = _accuracy(xa_test, ya_test, teacher_v, teacher_c)[:, 0].reshape(count, simulations)
        students_acc = _accuracy(xb_test, y_test, v, c)  # (S, 1 + O)
        kd_acc = torch.where(teacher_acc.isnan(), teacher_acc, students_acc[:, 1:].T)
        return torch.stack([teacher_acc, students_acc[:, :1].T.expand(count, -1), kd_acc], dim=-1).cpu()


def run_batched(overlaps=ALL_OVERLAPS, seeds: int = 1000, *, chunk: int = BATCHED_CHUNK,
                compiled: bool = False, steps: int = 1000, seed: int = 0,
                steps_per_call: int = 1, threads: int = 1, workers: int = 2, device: str = "cpu",
                share: bool = False) -> dict:
    """The batched peer over ``overlaps`` x ``seeds`` simulations (3 training runs each), timed.
    ``share``: the :class:`SharedPeer`, a chunk of seeds at every overlap at once.

    Chunk k (seeds k*chunk ... ) draws from a generator seeded with (seed, k) alone, so every
    overlap sees the same draws for a seed (common random numbers) and the numbers do not depend
    on the order of the overlaps.  A warm-up chunk (compilation included, untimed, its own seed)
    runs first.  ``threads``: PyTorch's intra-op threads for the call (restored after);
    ``workers``: chunks trained at once, each by its own Python thread (PyTorch's ops release the
    GIL).  The default, 2 workers of 1 thread, uses two cores the way ``mfh_sim``'s engine does
    (one chunk per core); 1 worker of 2 threads splits every op over both cores instead, which on
    a loaded machine can be far slower (each small op waits at a barrier for a thread that another
    process holds), so state the load beside any time.
    ``device``: where the peer trains ('cpu', 'cuda'); the data are drawn on the CPU either way
    and each chunk's accuracies come back to the host (which waits for the device).
    Returns ``wall_time_s`` (seconds, after the warm-up), ``warm_up_s``,
    ``accuracies`` (overlaps, seeds, 3: teacher, no-KD, KD; fractions in [0, 1]),
    ``training_runs``, ``runs_per_s``, ``chunk``, ``compiled``, ``torch_version``, ``num_threads``.
    """
    if seeds % chunk:
        raise ValueError(f"chunk={chunk} must divide seeds={seeds} (one compiled shape)")
    peer = (SharedPeer if share else BatchedPeer)(steps=steps, compiled=compiled, steps_per_call=steps_per_call,
                                                  device=device)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_batched(peer, overlaps, seeds, chunk, compiled, seed, workers, share)
    finally:
        torch.set_num_threads(previous_threads)


def _run_batched(peer: BatchedPeer, overlaps, seeds: int, chunk: int, compiled: bool, seed: int,
                 workers: int, share: bool = False) -> dict:
    start = time.perf_counter()
    peer(list(overlaps) if share else overlaps[0], chunk, torch.Generator().manual_seed(-1))
    warm_up_s = time.perf_counter() - start
    accuracies = torch.empty(len(overlaps), seeds, 3)

    def one_chunk(task):
        point, first = task
        generator = torch.Generator().manual_seed(seed * 1_000_003 + first // chunk)
        if point is None:  # every overlap at once
            accuracies[:, first:first + chunk] = peer(list(overlaps), chunk, generator)
        else:
            accuracies[point, first:first + chunk] = peer(overlaps[point], chunk, generator)

    points = [None] if share else range(len(overlaps))
    tasks = [(point, first) for point in points for first in range(0, seeds, chunk)]
    start = time.perf_counter()
    if workers == 1:
        for task in tasks:
            one_chunk(task)
    else:  # PyTorch's ops release the GIL: one chunk per worker thread, as mfh_sim's engine does
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one_chunk, tasks))
    wall_time_s = time.perf_counter() - start
    training_runs = TRAININGS_PER_REPETITION * len(overlaps) * seeds
    return dict(wall_time_s=wall_time_s, warm_up_s=warm_up_s, accuracies=accuracies.numpy(),
                overlaps=list(overlaps), training_runs=training_runs,
                runs_per_s=training_runs / wall_time_s, chunk=chunk, compiled=compiled,
                torch_version=torch.__version__, num_threads=torch.get_num_threads(), workers=workers,
                share=share)


def compare_accuracies(ours, theirs, z_max: float = 4.0) -> tuple[bool, float, list[str]]:
    """Do two implementations' accuracies agree within seed noise?

    ``ours`` and ``theirs``: arrays (points, seeds, 3) of teacher, no-KD and KD accuracies from
    independent random numbers.  For each point, each of the three accuracies and the KD gain
    (KD minus no-KD, paired within an implementation), the difference of the two means is
    divided by its standard error sqrt(s1^2/n1 + s2^2/n2).  Under the hypothesis that both
    implement the same protocol each ratio is about N(0, 1); with 4 x 11 ratios, a bar of
    ``z_max`` = 4 is crossed by chance with probability about 0.3%.  Returns (all within the bar,
    the largest |z|, one printed line per point).
    """
    import numpy as np

    def with_gain(a):
        a = np.asarray(a, dtype=np.float64)
        return np.concatenate([a, a[..., 2:3] - a[..., 1:2]], axis=-1)

    a, b = with_gain(ours), with_gain(theirs)
    diff = np.nanmean(a, axis=1) - np.nanmean(b, axis=1)
    count = lambda x: np.sum(np.isfinite(x), axis=1)
    se = np.sqrt(np.nanvar(a, axis=1, ddof=1) / count(a) + np.nanvar(b, axis=1, ddof=1) / count(b))
    z = diff / se
    lines = [
        "  ".join(f"{name} {100 * d:+.2f}+-{100 * s:.2f} (z {zz:+.1f})"
                  for name, d, s, zz in zip(("teacher", "no-KD", "KD", "gain"), diff[p], se[p], z[p]))
        for p in range(a.shape[0])
    ]
    worst = float(np.max(np.abs(z)))
    return bool(worst <= z_max), worst, lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description="PyTorch baseline for the MFH synthetic Fig. 2 protocol."
    )
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batched", action="store_true",
                        help="the batched peer (11 overlaps x --repetitions seeds), eager and compiled")
    parser.add_argument("--chunk", type=int, default=BATCHED_CHUNK)
    parser.add_argument("--device", default="cpu", help="where the batched peer trains: cpu or cuda")
    args = parser.parse_args()
    if not args.batched:
        print(format_table(run_protocol(args.repetitions, args.steps, args.seed)))
        return
    for compiled in (False, True):
        result = run_batched(seeds=args.repetitions, chunk=args.chunk, compiled=compiled,
                             steps=args.steps, seed=args.seed, device=args.device)
        print(f"batched, {'compiled' if compiled else 'eager'}, chunk {args.chunk}: "
              f"{result['wall_time_s']:.2f} s ({result['runs_per_s']:.0f} training runs/s), "
              f"warm-up {result['warm_up_s']:.1f} s; mean accuracies (teacher, no-KD, KD) per overlap:")
        for overlap, row in zip(result["overlaps"], result["accuracies"].mean(axis=1)):
            print(f"  o={overlap:2d} " + " ".join(f"{100 * v:5.1f}" for v in row))


if __name__ == "__main__":
    main()
