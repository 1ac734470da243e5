"""Finite-sample accuracies of the linear teacher, no-KD and KD students from the GCM fixed point.

Averages the fixed points of :mod:`mfh_sim.theory.gcm` over the hyperplane's block shares
(Gauss-Jacobi rule of :mod:`mfh_sim.theory.quadrature`; exact for the 'ones' hyperplane) and maps
the paper's optimiser (full-batch GD from a small init, no ridge) to an effective ridge.

Normalisation of the ridge (the converged-ERM mode, ``optimizer='erm'``): each model minimises

    (1/n) sum_{i=1..n} loss_i(margin_i)  +  (l2 / 2) * ||theta||^2,

margin_i = theta . x_i + b in the two-class margin form (logit_1 - logit_0), the mean over the n
training samples of the per-sample loss (CE; for the KD student ce_weight * CE + kd_weight *
T^2 * KL with the config's reduction), ridge on the margin weights theta only, not on the bias b.
(With two logits l_0, l_1 the margin weights are theta = w_1 - w_0; a ridge (l2'/2)(||w_0||^2 +
||w_1||^2) on the logit weights equals (l2'/4)||theta||^2 at its optimum w_0 = -w_1, i.e.
l2 = l2' / 2.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from mfh_sim.theory.gcm import kd_erm, logistic_erm
from mfh_sim.theory.quadrature import Blocks, SplitRule, beta_rule, split_rule

#: Gauss-Jacobi nodes per Beta variable for the finite-sample theory (the accuracies are smooth
#: in the shares; 3 nodes per variable agree with 6 to ~2e-5 in accuracy, measured on two Gaussian
#: configs).
FINITE_NODES = 3
#: Effective ridge of the paper's GD: l2_eff = GD_RIDGE_CONSTANT / (margin learning rate * steps).
GD_RIDGE_CONSTANT = 1.0


class Problem(NamedTuple):
    """Sizes and loss of one config, as the finite-sample theory needs them.

    n_train >= 2 samples; dim_a, dim_b >= 1 channels; shared_channels in [0, min(dims)] channels
    of x^b that show a latent x^a also shows; l2_teacher, l2_student >= 0 ridge weights (ERM
    normalisation above); ce >= 0, k >= 0 the CE weight and the effective KD weight (kd_weight / 2
    for the 'paper' reduction); temperature T > 0; same_sample: students train on the teacher's
    own training sample (True, the paper's Fig. 2/3) or on a fresh one (False, Table 2); mse >= 0
    the weight c of a margin-MSE distillation term c (h - t)^2 (logit-MSE KD: c = kd_weight / 4 and
    k = 0; default 0, no such term).
    """

    n_train: float
    dim_a: float
    dim_b: float
    shared_channels: float
    l2_teacher: float
    l2_student: float
    ce: float
    k: float
    temperature: float
    same_sample: bool
    mse: float = 0.0


def gd_effective_l2(learning_rate: float, steps: int, *, margin: bool = True) -> float:
    """Effective ridge (ERM normalisation) of full-batch GD from a small init, no weight decay.

    Gradient flow on the mean loss for a time t = learning_rate * steps shrinks the directions of
    the Hessian whose curvature is below ~1/t, like a ridge l2 ~ 1/t (exact in this sense for least
    squares: Ali, Kolter & Tibshirani, AISTATS 2019).  The paper's two-logit SGD at ``learning_rate``
    trains the margin at twice that rate (``margin=True``).  l2_eff = GD_RIDGE_CONSTANT / t.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate={learning_rate!r} is not allowed: it must be > 0")
    if not steps >= 1:
        raise ValueError(f"steps={steps!r} is not allowed: it must be >= 1")
    rate = 2.0 * learning_rate if margin else learning_rate
    return GD_RIDGE_CONSTANT / (rate * steps)


def shares_rule(blocks: Blocks, hyperplane: str, nodes: int = FINITE_NODES) -> SplitRule:
    """The hyperplane rule over (p_G, p_A, p_B, p_U) used by the finite-sample theory."""
    return split_rule(blocks, hyperplane, nodes)


def _marginal_rule(a: float, b: float, hyperplane_share: float | None, nodes: int):
    """Rule for a share ~ Beta(a, b) (Gaussian hyperplane) or the point ``hyperplane_share``."""
    if hyperplane_share is not None:
        return np.array([hyperplane_share]), np.ones(1)
    return beta_rule(a, b, nodes)


def finite_accuracies(
    blocks: Blocks, hyperplane: str, problem: Problem, *, nodes: int = FINITE_NODES, label: str = ""
) -> dict[str, float]:
    """Expected test accuracies (fractions in [0, 1]) of teacher, no-KD and KD student.

    Teacher: ridge logistic ERM on x^a (visible share rho_T = p_G + p_A); no-KD student: the same
    on x^b (rho_S = p_G + p_B); KD student: :func:`~mfh_sim.theory.gcm.kd_erm` with the trained
    teacher's order parameters, on the same sample or a fresh one.  Marginal Beta rules for the
    teacher and no-KD student (their accuracy depends on one share only), the product rule for the
    KD student.  NaN (with a warning) where a fixed point does not converge.
    """
    return finite_accuracies_many([(blocks, hyperplane, problem, label)], nodes=nodes)[0]


def finite_accuracies_many(items, *, nodes: int = FINITE_NODES) -> list[dict[str, float]]:
    """:func:`finite_accuracies` for many ``(blocks, hyperplane, problem, label)`` at once.

    Two vectorised solves for the whole list: every distinct logistic fixed point (teacher and
    no-KD student at every hyperplane node of every item) in one batch, then every KD student in
    one batch per protocol (same or fresh sample, with or without a KD term).  Each problem's
    iteration is independent of the batch, so the values equal the one-item calls'.
    """
    preps = []
    rows = []  # (rho, alpha, l2) of every logistic problem, with its label
    row_labels = []

    def request(x, alpha, l2, label):
        start = len(rows)
        rows.extend((float(v), float(alpha), float(l2)) for v in x)
        row_labels.extend([label] * len(x))
        return slice(start, len(rows))

    for blocks, hyperplane, problem, label in items:
        n = float(problem.n_train)
        total = blocks.total
        ones = hyperplane == "ones"
        # Teacher and no-KD student: one-dimensional rules in their own visible share.
        x_t, w_t = _marginal_rule((blocks.g + blocks.a) / 2, (blocks.b + blocks.u) / 2,
                                  (blocks.g + blocks.a) / total if ones else None, nodes)
        x_s, w_s = _marginal_rule((blocks.g + blocks.b) / 2, (blocks.a + blocks.u) / 2,
                                  (blocks.g + blocks.b) / total if ones else None, nodes)
        rule = shares_rule(blocks, hyperplane, nodes)
        # The KD student needs the teacher at every node's rho_T = X: solve once per distinct X.
        xs, inverse = np.unique(rule.x, return_inverse=True)
        preps.append(dict(
            n=n, problem=problem, label=label, x_t=x_t, w_t=w_t, x_s=x_s, w_s=w_s, rule=rule,
            xs=xs, inverse=inverse,
            teacher=request(x_t, n / problem.dim_a, problem.l2_teacher, f"{label} teacher"),
            no_kd=request(x_s, n / problem.dim_b, problem.l2_student, f"{label} no-KD student"),
            kd_teacher=request(xs, n / problem.dim_a, problem.l2_teacher, f"{label} teacher"),
        ))
    table = np.array(rows, dtype=np.float64).reshape(-1, 3)
    distinct, where = np.unique(table, axis=0, return_inverse=True)
    where = where.ravel()
    first = np.zeros(len(distinct), dtype=int)
    first[where[::-1]] = np.arange(len(where))[::-1]  # a row of each distinct problem, for labels
    fp = logistic_erm(distinct[:, 0], distinct[:, 1], distinct[:, 2],
                      label=[row_labels[i] for i in first])
    acc, m_all, q_all, v_all = (arr[where] for arr in (fp.accuracy, fp.m[:, 0], fp.q, fp.V))

    outs = []
    groups: dict = {}
    for i, prep in enumerate(preps):
        out = {
            "teacher_acc": float(np.sum(prep["w_t"] * _seen(acc[prep["teacher"]], prep["x_t"]))),
            "no_kd_acc": float(np.sum(prep["w_s"] * _seen(acc[prep["no_kd"]], prep["x_s"]))),
        }
        outs.append(out)
        problem, rule, xs, inverse = prep["problem"], prep["rule"], prep["xs"], prep["inverse"]
        sl = prep["kd_teacher"]
        m_t, q_t, v_t = m_all[sl][inverse], q_all[sl][inverse], v_all[sl][inverse]
        m_t = np.where(xs[inverse] > 0, m_t, 0.0)
        size = rule.p_g.size
        full = lambda v, size=size: np.full(size, float(v))
        kd_args = dict(
            p_g=rule.p_g, p_a=rule.p_a, p_b=rule.p_b, m_t=m_t, q_t=q_t,
            alpha=full(prep["n"] / problem.dim_b), l2=full(problem.l2_student),
            shared_channels=full(problem.shared_channels), dim_a=full(problem.dim_a),
            ce=full(problem.ce), kd=full(problem.k), temperature=full(problem.temperature),
            v_t=v_t if problem.same_sample else np.zeros(size),
        )
        if problem.mse > 0:
            kd_args["mse"] = full(problem.mse)
        # Logit-MSE students solve in batches of their own (the prox's loss is batch-wide in kind).
        key = (bool(problem.same_sample), bool(problem.k > 0), bool(problem.mse > 0))
        groups.setdefault(key, []).append((i, kd_args, [f"{prep['label']} KD student"] * size))
    for (same, _, _), members in groups.items():
        cat = {name: np.concatenate([args[name] for _, args, _ in members])
               for name in members[0][1]}
        labels = [lab for _, _, labs in members for lab in labs]
        v_t = cat.pop("v_t") if same else None
        if not same:
            cat.pop("v_t")
        p_g, p_a, p_b, m_t, q_t = (cat.pop(name) for name in ("p_g", "p_a", "p_b", "m_t", "q_t"))
        kd = kd_erm(p_g, p_a, p_b, m_t, q_t, v_t=v_t, label=labels, **cat)
        start = 0
        for i, args, _ in members:
            size = args["p_g"].size
            rule = preps[i]["rule"]
            accs = kd.accuracy[start:start + size]
            start += size
            outs[i]["kd_acc"] = float(np.sum(rule.weight * _seen(accs, rule.p_g + rule.p_b)))
            outs[i]["delta"] = outs[i]["kd_acc"] - outs[i]["no_kd_acc"]
    return outs


def _seen(acc: np.ndarray, share: np.ndarray) -> np.ndarray:
    """A model that sees none of w is at chance (1/2) exactly, whatever the algebra gives."""
    return np.where(np.asarray(share) > 0, acc, 0.5)


def crossover_gamma_gcm(
    blocks_of_overlap=None,
    *,
    n_train: float = 200,
    dim_a: float = 25,
    dim_b: float = 50,
    overlap_max: float = 10.0,
    l2: float | None = None,
    ce: float = 1.0,
    k: float = 0.5,
    temperature: float = 1.0,
    same_sample: bool = True,
    hyperplane: str = "gaussian",
    grid: int = 6,
    nodes: int = 4,
) -> float:
    """The GCM theory's crossover gamma* of a one-parameter family of Venn diagrams.

    ``blocks_of_overlap(o)`` gives the decisive blocks at a real overlap o in [0, overlap_max]
    (default: the paper's Fig. 2, :func:`~mfh_sim.theory.finite.fig2_blocks`); the shared channels
    are o.  The KD gain delta(o) of :func:`finite_accuracies` (ridge ``l2``, default the paper's GD
    map) is evaluated on ``grid`` overlaps, its last negative-to-positive sign change refined by
    Brent's method, and gamma* = G / (G + A + B) returned there.  0.0 if KD helps at every
    overlap > 0, NaN if it never turns positive.
    """
    from scipy.optimize import brentq

    from mfh_sim.theory.finite import fig2_blocks

    if blocks_of_overlap is None:
        blocks_of_overlap = fig2_blocks
    if not n_train >= 2:
        raise ValueError(f"n_train={n_train!r} is not allowed: it must be >= 2")
    for name, value in (("dim_a", dim_a), ("dim_b", dim_b)):
        if not value >= 1:
            raise ValueError(f"{name}={value!r} is not allowed: it must be >= 1")
    if l2 is None:
        l2 = gd_effective_l2(0.1, 1000)

    def delta(o: float) -> float:
        problem = Problem(n_train, dim_a, dim_b, o, l2, l2, ce, k, temperature, same_sample)
        return finite_accuracies(blocks_of_overlap(o), hyperplane, problem, nodes=nodes)["delta"]

    def gamma_of(o: float) -> float:
        b = blocks_of_overlap(o)
        return b.g / (b.g + b.a + b.b)

    overlaps = np.linspace(0.0, overlap_max, grid)
    deltas = np.array([delta(o) for o in overlaps])
    if np.isnan(deltas).any():
        return math.nan
    if (deltas[1:] > 0).all():
        return 0.0
    hits = np.flatnonzero((deltas[:-1] <= 0) & (deltas[1:] > 0))
    if hits.size == 0:
        return math.nan
    i = hits[-1]
    o_star = brentq(delta, overlaps[i], overlaps[i + 1], xtol=1e-3)
    return gamma_of(o_star)
