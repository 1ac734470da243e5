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
#: Gauss-Jacobi nodes per Beta variable with more than two classes: the shares' law is narrower
#: (parameters scaled by C - 1), and 2 nodes agree with 3 and 4 to ~2e-4 in accuracy (measured on
#: three configs); each KD node costs a C-class channel solve.
MULTICLASS_NODES = 2
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

    Extensions (defaults: the paper's generator): n_classes C >= 2 (C > 2: the symmetric softmax
    theory of :mod:`mfh_sim.theory.multiclass`; then k and mse are the per-sample weights of the
    C-logit KL and of |P (l - t)|^2, and the ridges are those of l2 ||W||_F^2 on the logit
    weights, which is (l2/2) ||theta||^2 for two classes); label_noise eps in [0, (C-1)/C) (a
    label replaced by a uniformly drawn other class, training and test alike); mixing: None or a
    :class:`mfh_sim.theory.mixing.Mixing` (random tanh layers on each modality's latent channels,
    through Gaussian equivalence).
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
    n_classes: int = 2
    label_noise: float = 0.0
    mixing: object = None


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


def _rule_blocks(blocks: Blocks, n_classes: int) -> Blocks:
    """Blocks whose Dirichlet law gives the hyperplane rule: scaled by C - 1 for C classes.

    Two classes: the shares of w ~ N(0, I) are Dirichlet(|G|/2, ...).  C classes: the class frame
    has C - 1 orthonormal directions; the theory takes its Gram on each block as isotropic, with
    the trace share Dirichlet((C - 1)|G|/2, ...) (matched mean, and variance to leading order:
    docs/theory.md 4.10).
    """
    if n_classes == 2:
        return blocks
    f = float(n_classes - 1)
    return Blocks(blocks.g * f, blocks.a * f, blocks.b * f, blocks.u * f)


def observed_accuracy(acc, label_noise: float, n_classes: int):
    """Accuracy against labels replaced by a uniformly drawn other class with probability eps.

    (1 - eps) acc + eps (1 - acc) / (C - 1): the simulator's test labels carry the noise too.
    """
    if label_noise == 0:
        return acc
    return (1.0 - label_noise) * acc + label_noise * (1.0 - acc) / (n_classes - 1)


def finite_accuracies_many(items, *, nodes: int = FINITE_NODES) -> list[dict[str, float]]:
    """:func:`finite_accuracies` for many ``(blocks, hyperplane, problem, label)`` at once.

    Vectorised solves for the whole list: every distinct logistic fixed point (teacher and no-KD
    student at every hyperplane node of every item) in one batch per kind of channel (two-class
    or C-class, label noise or not, isotropic or mixed inputs), then every KD student in one batch
    per protocol and kind.  Each problem's iteration is independent of the batch, so the values
    equal the one-item calls'.
    """
    from mfh_sim.theory import mixing as mixing_theory

    preps = []
    rows = []  # (rho, alpha, l2, eps, C, spectrum index) of every logistic problem, with its label
    row_labels = []
    spectra: list = []  # spectral atoms of mixed inputs, by index
    spectrum_index: dict = {}

    def spectrum_of(description) -> int:
        if description is None:
            return -1
        if description not in spectrum_index:
            spectrum_index[description] = len(spectra)
            spectra.append(mixing_theory.spectrum(description))
        return spectrum_index[description]

    def request(x, alpha, l2, eps, classes, spec, label):
        start = len(rows)
        rows.extend((float(v), float(alpha), float(l2), float(eps), float(classes), float(spec)) for v in x)
        row_labels.extend([label] * len(x))
        return slice(start, len(rows))

    for blocks, hyperplane, problem, label in items:
        n = float(problem.n_train)
        C = int(problem.n_classes)
        eps = float(problem.label_noise)
        ridge = 1.0 if C == 2 else 2.0  # (l2/2)||theta||^2 on the margin = l2 ||W||^2 = (2 l2 / 2)||Theta||^2
        rblocks = _rule_blocks(blocks, C)
        nodes_here = nodes if C == 2 else min(nodes, MULTICLASS_NODES)
        total = rblocks.total
        ones = hyperplane == "ones"
        # Teacher and no-KD student: one-dimensional rules in their own visible share.
        x_t, w_t = _marginal_rule((rblocks.g + rblocks.a) / 2, (rblocks.b + rblocks.u) / 2,
                                  (rblocks.g + rblocks.a) / total if ones else None, nodes_here)
        x_s, w_s = _marginal_rule((rblocks.g + rblocks.b) / 2, (rblocks.a + rblocks.u) / 2,
                                  (rblocks.g + rblocks.b) / total if ones else None, nodes_here)
        rule = shares_rule(rblocks, hyperplane, nodes_here)
        # The KD student needs the teacher at every node's rho_T = X: solve once per distinct X.
        xs, inverse = np.unique(rule.x, return_inverse=True)
        mix = problem.mixing
        spec_a = spectrum_of(mixing_theory.modality(mix, "a") if mix is not None else None)
        spec_b = spectrum_of(mixing_theory.modality(mix, "b") if mix is not None else None)
        preps.append(dict(
            n=n, problem=problem, label=label, x_t=x_t, w_t=w_t, x_s=x_s, w_s=w_s, rule=rule,
            xs=xs, inverse=inverse, C=C, eps=eps, ridge=ridge, spec_a=spec_a, spec_b=spec_b,
            teacher=request(x_t, n / problem.dim_a, ridge * problem.l2_teacher, eps, C, spec_a, f"{label} teacher"),
            no_kd=request(x_s, n / problem.dim_b, ridge * problem.l2_student, eps, C, spec_b,
                          f"{label} no-KD student"),
            kd_teacher=request(xs, n / problem.dim_a, ridge * problem.l2_teacher, eps, C, spec_a, f"{label} teacher"),
        ))
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    distinct, where = np.unique(table, axis=0, return_inverse=True)
    where = where.ravel()
    first = np.zeros(len(distinct), dtype=int)
    first[where[::-1]] = np.arange(len(where))[::-1]  # a row of each distinct problem, for labels
    fields = {name: np.full(len(distinct), np.nan) for name in ("acc", "m", "q", "V", "mh", "qh", "Vh")}
    # One batch per kind of channel: (label noise or not, classes, spectrum).
    kinds = {}
    for i, row in enumerate(distinct):
        kinds.setdefault((row[3] > 0, row[4], row[5]), []).append(i)
    for (_, classes, spec), members in kinds.items():
        members = np.array(members)
        sub = distinct[members]
        fp = gcm_logistic(sub[:, 0], sub[:, 1], sub[:, 2], label_noise=sub[:, 3], n_classes=int(classes),
                          spectrum=None if spec < 0 else spectra[int(spec)].atoms,
                          label=[row_labels[i] for i in first[members]])
        for name, value in (("acc", fp.accuracy), ("m", fp.m[:, 0]), ("q", fp.q), ("V", fp.V),
                            ("mh", fp.mh[:, 0]), ("qh", fp.qh), ("Vh", fp.Vh)):
            fields[name][members] = value
    acc, m_all, q_all, v_all, mh_all, qh_all, vh_all = (fields[k][where]
                                                        for k in ("acc", "m", "q", "V", "mh", "qh", "Vh"))

    outs = []
    groups: dict = {}
    for i, prep in enumerate(preps):
        C, eps = prep["C"], prep["eps"]
        seen = lambda a, share, C=C, eps=eps: observed_accuracy(_seen(a, share, C), eps, C)
        out = {
            "teacher_acc": float(np.sum(prep["w_t"] * seen(acc[prep["teacher"]], prep["x_t"]))),
            "no_kd_acc": float(np.sum(prep["w_s"] * seen(acc[prep["no_kd"]], prep["x_s"]))),
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
            alpha=full(prep["n"] / problem.dim_b), l2=full(prep["ridge"] * problem.l2_student),
            shared_channels=full(problem.shared_channels), dim_a=full(problem.dim_a),
            ce=full(problem.ce), kd=full(problem.k), temperature=full(problem.temperature),
            v_t=v_t if problem.same_sample else np.zeros(size),
        )
        if problem.mse > 0:
            kd_args["mse"] = full(problem.mse)
        if eps > 0:
            kd_args["label_noise"] = full(eps)
        if prep["spec_b"] >= 0:
            # Mixed inputs: the teacher's weights seen from the student's channels through both
            # modalities' mixing (Gaussian equivalence, generic directions).
            kd_args["projection"] = mixing_theory.teacher_projection(
                spectra[prep["spec_a"]], spectra[prep["spec_b"]], problem, rule,
                mh_t=mh_all[sl][inverse], qh_t=qh_all[sl][inverse], vh_t=vh_all[sl][inverse],
                alpha_t=prep["n"] / problem.dim_a, l2_teacher=prep["ridge"] * problem.l2_teacher)
        # Logit-MSE students solve in batches of their own (the prox's loss is batch-wide in kind).
        key = (bool(problem.same_sample), bool(problem.k > 0), bool(problem.mse > 0), eps > 0, C, prep["spec_b"])
        groups.setdefault(key, []).append((i, kd_args, [f"{prep['label']} KD student"] * size))
    for (same, _, _, _, C, spec), members in groups.items():
        cat = {name: (np.concatenate([args[name] for _, args, _ in members]) if name != "projection" else
                      tuple(np.concatenate([args[name][j] for _, args, _ in members]) for j in range(3)))
               for name in members[0][1]}
        labels = [lab for _, _, labs in members for lab in labs]
        v_t = cat.pop("v_t") if same else None
        if not same:
            cat.pop("v_t")
        p_g, p_a, p_b, m_t, q_t = (cat.pop(name) for name in ("p_g", "p_a", "p_b", "m_t", "q_t"))
        kd = kd_erm(p_g, p_a, p_b, m_t, q_t, v_t=v_t, label=labels, n_classes=C,
                    spectrum=None if spec < 0 else spectra[spec].atoms, **cat)
        start = 0
        for i, args, _ in members:
            size = args["p_g"].size
            rule, eps = preps[i]["rule"], preps[i]["eps"]
            accs = kd.accuracy[start:start + size]
            start += size
            kd_acc = observed_accuracy(_seen(accs, rule.p_g + rule.p_b, C), eps, C)
            outs[i]["kd_acc"] = float(np.sum(rule.weight * kd_acc))
            outs[i]["delta"] = outs[i]["kd_acc"] - outs[i]["no_kd_acc"]
    return outs


def gcm_logistic(rho, alpha, l2, *, label_noise, n_classes, spectrum, label):
    """:func:`~mfh_sim.theory.gcm.logistic_erm` of a batch of one kind (see finite_accuracies_many)."""
    eps = label_noise if np.any(label_noise > 0) else None
    spec = None if spectrum is None else tuple(np.broadcast_to(a, (len(rho),) + a.shape[-1:]) for a in spectrum)
    return logistic_erm(rho, alpha, l2, label_noise=eps, n_classes=n_classes, spectrum=spec, label=label)


def _seen(acc: np.ndarray, share: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """A model that sees none of w is at chance (1/C) exactly, whatever the algebra gives."""
    return np.where(np.asarray(share) > 0, acc, 1.0 / n_classes)


def crossover_gamma_gcm(
    blocks_of_overlap,
    *,
    n_train,
    dim_a: float,
    dim_b: float,
    overlap_max: float,
    l2: float | None = None,
    ce: float = 1.0,
    k: float = 0.5,
    temperature: float = 1.0,
    same_sample: bool = True,
    hyperplane: str = "gaussian",
    grid: int = 6,
    nodes: int = 4,
) -> float | np.ndarray:
    """The GCM theory's crossover gamma* of a one-parameter family of Venn diagrams.

    ``blocks_of_overlap(o)`` gives the decisive blocks at a real overlap o in [0, overlap_max]
    (the paper's Fig. 2: :func:`mfh_sim.experiments.fig2_blocks`, overlap_max 10, dims 25 / 50); the
    shared channels are o.  The KD gain delta(o) of :func:`finite_accuracies` (ridge ``l2``, default the paper's GD
    map) is evaluated on ``grid`` overlaps, its last negative-to-positive sign change refined by
    Brent's method, and gamma* = G / (G + A + B) returned there.  0.0 if KD helps at every
    overlap > 0, NaN if it never turns positive.

    ``n_train``: a training size >= 2 (returns a float), or a sequence of them (returns an array,
    one gamma* a size): the grids of every size are then solved in one batch, each value equal
    to its one-size call's (the theory's problems do not depend on their batch), and the Brent
    refinements follow size by size.
    """
    from scipy.optimize import brentq

    if not callable(blocks_of_overlap):
        raise ValueError(f"blocks_of_overlap={blocks_of_overlap!r} is not allowed: it must be a function of the "
                         "overlap returning Blocks")
    scalar = np.ndim(n_train) == 0
    n_trains = [n_train] if scalar else list(n_train)
    for size in n_trains:
        if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)) or not size >= 2:
            raise ValueError(f"n_train={size!r} is not allowed: it must be >= 2 (or a sequence of such sizes)")
    for name, value in (("dim_a", dim_a), ("dim_b", dim_b)):
        if not value >= 1:
            raise ValueError(f"{name}={value!r} is not allowed: it must be >= 1")
    if l2 is None:
        l2 = gd_effective_l2(0.1, 1000)

    def item(n_train: float, o: float):
        problem = Problem(n_train, dim_a, dim_b, o, l2, l2, ce, k, temperature, same_sample)
        return blocks_of_overlap(o), hyperplane, problem, ""

    def gamma_of(o: float) -> float:
        b = blocks_of_overlap(o)
        return b.g / (b.g + b.a + b.b)

    overlaps = np.linspace(0.0, overlap_max, grid)
    grids = finite_accuracies_many([item(n, o) for n in n_trains for o in overlaps], nodes=nodes)

    def crossover(j: int) -> float:
        deltas = np.array([values["delta"] for values in grids[j * grid:(j + 1) * grid]])
        hits = np.flatnonzero((deltas[:-1] <= 0) & (deltas[1:] > 0))
        if np.isnan(deltas).any():
            return math.nan
        if (deltas[1:] > 0).all():
            return 0.0
        if hits.size == 0:
            return math.nan
        i = hits[-1]
        # Brent starts by evaluating the bracket's ends, which the grid has solved already: the
        # same problems, so the same values (a problem's values do not depend on its batch).
        known = {float(overlaps[i]): float(deltas[i]), float(overlaps[i + 1]): float(deltas[i + 1])}

        def delta(o: float) -> float:
            if o in known:
                return known[o]
            return finite_accuracies_many([item(n_trains[j], o)], nodes=nodes)[0]["delta"]

        return gamma_of(brentq(delta, overlaps[i], overlaps[i + 1], xtol=1e-3))

    out = np.array([crossover(j) for j in range(len(n_trains))], dtype=np.float64)
    return float(out[0]) if scalar else out


def crossover_from_gains(overlaps: np.ndarray, gains: np.ndarray, *, n_decisive: float) -> float:
    """gamma* where a measured KD-gain curve over overlaps o turns positive (for simulated curves).

    ``gains`` has shape (len(overlaps),) or (len(overlaps), seeds) (then averaged over seeds).
    The last negative-to-positive change of the mean gain is located by linear interpolation in
    the overlap o and returned as gamma* = o / (n_decisive - o), the geometry's gamma when G = o and
    G + A + B = n_decisive - o (the paper's Fig. 2: n_decisive = 20); NaN if the mean never changes
    sign that way.
    """
    overlaps = np.asarray(overlaps, dtype=np.float64)
    gains = np.asarray(gains, dtype=np.float64)
    mean = gains.mean(axis=1) if gains.ndim == 2 else gains
    if mean.shape != overlaps.shape:
        raise ValueError(f"gains has shape {gains.shape}: it must start with len(overlaps) = {overlaps.size}")
    hits = np.flatnonzero((mean[:-1] <= 0) & (mean[1:] > 0))
    if hits.size == 0:
        return float("nan")
    j = hits[-1]
    star = overlaps[j] + (overlaps[j + 1] - overlaps[j]) * (-mean[j]) / (mean[j + 1] - mean[j])
    return float(star / (n_decisive - star))
