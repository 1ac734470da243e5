"""Entry points of the theory: validation and the mapping from a SimConfig to the formulas."""

from __future__ import annotations

import math

from mfh_sim.config import SimConfig
from mfh_sim.theory.criteria import LABELS, complementarity_gap
from mfh_sim.theory.highdim import FINITE_NODES, Problem, finite_accuracies_many, gd_effective_l2
from mfh_sim.theory.population import TEACHERS, population_accuracies, population_accuracies_mse
from mfh_sim.theory.quadrature import DEFAULT_NODES, Blocks, split_rule


class TheoryDeclined(NotImplementedError):
    """The theory does not model this config; ``reason`` says why, in words a user can read.

    A subclass of NotImplementedError, so callers that treat "not covered" as "no theory"
    (``mfh_sim.simulation.theory_for``) keep working.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decline_reason(config: object) -> str | None:
    """Why the theory does not model ``config``, or None if it does.

    Modelled: linear models (``model='linear'``) with any number of classes (more than two: the
    symmetric softmax theory, docs/theory.md 4.10), label noise (4.11) and the random tanh mixing
    of the channels (``mixing_depth >= 1``, through Gaussian equivalence, 4.12), the KL and the
    logit-MSE distillation losses (``kd_loss='kl'`` or ``'mse'``; not the feature hint), trained by
    full-batch GD (``optimizer='sgd'``, heavy-ball momentum included, the paper's recipe, through an
    effective ridge, 4.6 and 4.13) or by converged ridge ERM (``optimizer='erm'`` with ridge
    ``config.l2``), both hyperplanes, both student-sample protocols.
    """
    if not isinstance(config, SimConfig):
        raise ValueError(
            f"config={config!r} is not allowed: it must be a SimConfig (build one with "
            "mfh_sim.make_config)"
        )
    optimizer = getattr(config, "optimizer", "sgd")
    checks = (
        (config.model != "linear",
         f"model={config.model!r}: the theory treats linear models (model='linear') only"),
        (getattr(config, "kd_loss", "kl") not in ("kl", "mse"),
         f"kd_loss={getattr(config, 'kd_loss', 'kl')!r}: only the KL and logit-MSE distillation losses "
         "(kd_loss='kl' or 'mse') are modelled"),
        (optimizer not in ("sgd", "erm"),
         f"optimizer={optimizer!r}: only full-batch GD (optimizer='sgd', with or without heavy-ball "
         "momentum) and converged ridge ERM (optimizer='erm') are modelled; Adam's per-coordinate "
         "step sizes have no effective-ridge map"),
        (config.ce_weight == 0.0 and config.kd_weight == 0.0,
         "ce_weight=0 with kd_weight=0: the KD student's loss is identically zero"),
    )
    for bad, reason in checks:
        if bad:
            return f"the theory does not model this config: {reason}"
    if optimizer == "erm":
        l2 = getattr(config, "l2", 0.0)
        if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2={l2!r} is not allowed: it must be a finite number >= 0")
    return None


def _check_config(config: object) -> SimConfig:
    reason = decline_reason(config)
    if reason is not None:
        raise TheoryDeclined(reason)
    return config  # type: ignore[return-value]


def _check_nodes(nodes: object, name: str = "nodes") -> int:
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 2:
        raise ValueError(f"{name}={nodes!r} is not allowed: it must be an integer >= 2")
    return nodes


def blocks_of(config: SimConfig) -> Blocks:
    """The decisive block sizes (G, A, B, U) of ``config``'s Venn diagram."""
    v = config.venn
    return Blocks(float(v.shared), float(v.a_only), float(v.b_only), float(v.unseen))


def effective_l2(config: SimConfig) -> float:
    """The ridge weight the finite-sample theory uses for ``config`` (ERM normalisation).

    ``optimizer='erm'``: ``config.l2``.  GD (the paper's recipe): the effective ridge
    :func:`~mfh_sim.theory.highdim.gd_effective_l2` of ``steps`` steps at ``learning_rate``;
    heavy-ball momentum beta moves the slow directions like plain GD at learning_rate / (1 - beta)
    once its transient (~1 / (1 - beta) steps) has passed (docs/theory.md 4.13).
    """
    if getattr(config, "optimizer", "sgd") == "erm":
        return float(getattr(config, "l2", 0.0))
    momentum = float(getattr(config, "momentum", 0.0))
    return gd_effective_l2(config.learning_rate / (1.0 - momentum), config.steps)


def mixing_of(config: SimConfig):
    """The config's channel mixing as :class:`~mfh_sim.theory.mixing.Mixing`, or None (linear channels)."""
    depth = int(getattr(config, "mixing_depth", 0))
    strength = float(getattr(config, "mixing_strength", 0.0))
    if depth == 0 or strength == 0.0:
        return None
    from mfh_sim.theory.mixing import Mixing

    v = config.venn
    return Mixing(depth=depth, strength=strength,
                  latent_a=v.shared + v.a_only + v.shared_nondecisive + v.a_nondecisive,
                  latent_b=v.shared + v.b_only + v.shared_nondecisive + v.b_nondecisive,
                  dim_a=v.dim_a, dim_b=v.dim_b, shared_latents=v.shared + v.shared_nondecisive)


def problem_of(config: SimConfig) -> Problem:
    """The sizes and loss of ``config`` for :func:`~mfh_sim.theory.highdim.finite_accuracies`.

    KL distillation: k = kd_weight / 2 ('paper' reduction) or kd_weight ('batchmean').  Logit MSE
    (``kd_loss='mse'``): the mean over samples and both logits of (s - t)^2 is, per sample,
    ((h - h_T)^2 + (sum - sum_T)^2) / 4 in the margin h and the logit sum, and the sum part never
    reaches the margin, so the margin loss is ce_weight CE + c (h - h_T)^2 with c = kd_weight / 4,
    whatever the reduction and the temperature (neither enters the simulator's MSE term):
    k = 0, mse = c, temperature 1 (docs/theory.md 4.4b).  C > 2 classes: k = kd_weight / C
    ('paper') or kd_weight, and the logit MSE's sum-zero part is (kd_weight / C) |P (l - t)|^2.
    """
    v = config.venn
    l2 = effective_l2(config)
    classes = int(getattr(config, "n_classes", 2))
    if getattr(config, "kd_loss", "kl") == "mse":
        k, mse, temperature = 0.0, config.kd_weight / (4.0 if classes == 2 else classes), 1.0
    else:
        k = config.kd_weight / (float(classes) if config.kd_reduction == "paper" else 1.0)
        mse, temperature = 0.0, config.temperature
    return Problem(
        n_train=float(config.n_train), dim_a=float(v.dim_a), dim_b=float(v.dim_b),
        shared_channels=float(v.shared + v.shared_nondecisive), l2_teacher=l2, l2_student=l2,
        ce=config.ce_weight, k=k, temperature=temperature,
        same_sample=not config.fresh_student_sample, mse=mse, n_classes=classes,
        label_noise=float(getattr(config, "label_noise", 0.0)), mixing=mixing_of(config),
    )


def predict(
    config: SimConfig, *, teacher: str = "logistic", nodes: int = DEFAULT_NODES,
    finite_nodes: int = FINITE_NODES,
) -> dict[str, float]:
    """The theory's accuracies (fractions in [0, 1]) for ``config``.

    Finite-sample keys (the config's n_train, channel dims and optimiser; high-dimensional GCM
    fixed point, :mod:`mfh_sim.theory.gcm`, averaged over hyperplanes):

    * ``teacher_acc``, ``no_kd_acc``, ``kd_acc`` and ``delta`` = kd_acc - no_kd_acc;
    * ``l2_effective``: the ridge weight used (``config.l2`` for ``optimizer='erm'``, the GD
      map :func:`~mfh_sim.theory.highdim.gd_effective_l2` for the paper's GD).

    ERM normalisation (what ``optimizer='erm'`` must minimise for the theory to apply): each
    model minimises (1/n) sum_i loss_i + (l2/2) ||theta||^2, the mean over the n training samples
    of the per-sample loss in the two-class margin form, ridge on the margin weights
    theta = w_1 - w_0 only (not the bias); see :mod:`mfh_sim.theory.highdim`.  More than two
    classes: (1/n) sum_i loss_i + l2 ||W||_F^2 on the logit weights (the same at two classes;
    :func:`mfh_sim.erm.softmax_newton_solve` minimises it).  Label noise, mixed channels and
    momentum: docs/theory.md 4.11-4.13.

    Infinite-data limit (population minimisers, Gauss-Jacobi over hyperplanes with ``nodes``
    per Beta variable): ``teacher_acc_limit``, ``no_kd_acc_limit``, ``kd_acc_limit``,
    ``delta_limit``, ``pure_kd_acc_limit`` (the KD-only ceiling 1 - arccos(||w_G||/||w||)/pi).

    Many configs: :func:`predict_many` (one batched solve; this function calls it with one).

    Raises ValueError for a bad argument and :class:`TheoryDeclined` (a NotImplementedError whose
    ``reason`` attribute is :func:`decline_reason`'s text) for configs the theory does not model.
    Values are NaN, with a RuntimeWarning naming the config, where a fixed point does not converge
    (converged ERM with l2 = 0 on separable data: the estimator does not exist).
    """
    return predict_many([config], teacher=teacher, nodes=nodes, finite_nodes=finite_nodes)[0]


def predict_many(
    configs, *, teacher: str = "logistic", nodes: int = DEFAULT_NODES,
    finite_nodes: int = FINITE_NODES,
) -> list[dict[str, float]]:
    """:func:`predict` for every config of ``configs`` (a sequence), as one vectorised solve.

    Returns one dict per config, in order, with :func:`predict`'s keys and values.  Configs are
    checked first (ValueError, :class:`TheoryDeclined` for the first bad one); configs that ask the
    theory the same question (same blocks, hyperplane, sizes, ridge and loss: seeds and other
    knobs the theory ignores do not count) are solved once; every distinct fixed point of every
    config goes into one batched solve (:func:`~mfh_sim.theory.highdim.finite_accuracies_many`).
    A non-converged fixed point gives NaN for its config only, with a warning naming it.
    """
    configs = [_check_config(config) for config in configs]
    _check_nodes(finite_nodes, "finite_nodes")
    if teacher not in TEACHERS:
        raise ValueError(f"teacher={teacher!r} is not allowed: use one of {TEACHERS}")
    _check_nodes(nodes)
    results: list = [None] * len(configs)
    todo: dict = {}  # theory key -> indices of the configs that need it
    for i, config in enumerate(configs):
        try:
            cached = _CACHE.get((config, teacher, nodes, finite_nodes))
        except TypeError:  # an unhashable config (never with SimConfig's frozen fields)
            cached = None
        if cached is not None:
            results[i] = dict(cached)
        else:
            todo.setdefault(_theory_key(config, teacher, nodes, finite_nodes), []).append(i)
    if todo:
        firsts = [configs[indices[0]] for indices in todo.values()]
        finite = finite_accuracies_many(
            [(blocks_of(c), c.hyperplane, problem_of(c), _describe(c)) for c in firsts],
            nodes=finite_nodes,
        )
        for (key, indices), config, out in zip(todo.items(), firsts, finite):
            limit = _LIMIT_CACHE.get(key[:2] + key[3:])
            if limit is None:
                limit = predict_limit(config, teacher=teacher, nodes=nodes)
                _LIMIT_CACHE[key[:2] + key[3:]] = limit
            out["l2_effective"] = effective_l2(config)
            out.update({f"{k}_limit": v for k, v in limit.items()})
            for i in indices:
                results[i] = dict(out)
                if len(_CACHE) < 4096:
                    try:
                        _CACHE[(configs[i], teacher, nodes, finite_nodes)] = dict(out)
                    except TypeError:
                        pass
    return results


def _theory_key(config: SimConfig, teacher: str, nodes: int, finite_nodes: int) -> tuple:
    """Everything :func:`predict` reads from ``config`` (configs with equal keys get equal values).

    Positions 0, 1 and 3 onward also determine :func:`predict_limit`.
    """
    return (
        blocks_of(config), config.hyperplane, problem_of(config), effective_l2(config),
        config.ce_weight, config.kd_weight, config.temperature, config.kd_reduction, teacher,
        nodes, finite_nodes, getattr(config, "kd_loss", "kl"), getattr(config, "n_classes", 2),
        getattr(config, "label_noise", 0.0), mixing_of(config),
    )


#: Memo of predict() by config: the finite-sample fixed points cost seconds per Gaussian config,
#: and simulate/sweep/plots ask for the same config repeatedly.
_CACHE: dict = {}
#: Memo of predict_limit's values by what it reads (blocks, hyperplane, loss, teacher, nodes).
_LIMIT_CACHE: dict = {}


def predict_limit(
    config: SimConfig, *, teacher: str = "logistic", nodes: int = DEFAULT_NODES
) -> dict[str, float]:
    """The infinite-data (population) accuracies for ``config``, fractions in [0, 1], unsuffixed keys.

    ``teacher_acc`` = E[1 - arccos(rho_T)/pi] (rho_T^2 = p_G + p_A), ``no_kd_acc`` likewise with
    p_G + p_B, ``kd_acc`` the population minimiser of the KD loss with a population logistic
    (``teacher='logistic'``) or Bayes (``'bayes'``) teacher, ``delta``, ``pure_kd_acc``; expected
    over Gaussian hyperplanes by Gauss-Jacobi quadrature (``nodes`` per Beta variable), exact for
    'ones'.  Fast (closed forms and one-dimensional solves).  :func:`predict` returns these with
    the suffix ``_limit``.  Declines like :func:`predict`.
    """
    config = _check_config(config)
    if teacher not in TEACHERS:
        raise ValueError(f"teacher={teacher!r} is not allowed: use one of {TEACHERS}")
    if (getattr(config, "n_classes", 2) > 2 or getattr(config, "label_noise", 0.0) > 0
            or mixing_of(config) is not None):
        return extended_limit(config, teacher=teacher, nodes=_check_nodes(nodes))
    rule = split_rule(blocks_of(config), config.hyperplane, _check_nodes(nodes))
    if getattr(config, "kd_loss", "kl") == "mse":
        return population_accuracies_mse(rule, config.ce_weight, config.kd_weight / 4.0, teacher)
    return population_accuracies(
        rule,
        ce_weight=config.ce_weight,
        kd_weight=config.kd_weight,
        temperature=config.temperature,
        kd_reduction=config.kd_reduction,
        teacher=teacher,
    )


def extended_limit(config: SimConfig, *, teacher: str = "logistic", nodes: int = DEFAULT_NODES) -> dict[str, float]:
    """:func:`predict_limit` for more than two classes, label noise or mixed channels (logistic teacher)."""
    from mfh_sim.theory import mixing as mixing_theory
    from mfh_sim.theory.highdim import _rule_blocks
    from mfh_sim.theory.population import population_accuracies_extended

    if teacher != "logistic":
        raise ValueError(
            f"teacher={teacher!r} is not allowed for this config: with more than two classes, label noise "
            "or mixed channels the infinite-data limit is computed for the trained (teacher='logistic') "
            "teacher only")
    problem = problem_of(config)
    classes = problem.n_classes
    rule = split_rule(_rule_blocks(blocks_of(config), classes), config.hyperplane,
                      nodes if classes == 2 else min(nodes, 8))
    mix = problem.mixing
    traces, fraction = None, 0.0
    if mix is not None:
        spec_a = mixing_theory.spectrum(mixing_theory.modality(mix, "a"))
        spec_b = mixing_theory.spectrum(mixing_theory.modality(mix, "b"))
        tau_a = mixing_theory.inverse_trace(spec_a)
        traces = (tau_a, mixing_theory.inverse_trace(spec_b),
                  max(mixing_theory.inverse_trace_square(spec_a) - tau_a**2, 0.0))
        fraction = mix.shared_latents / max(mix.latent_a, 1)
    return population_accuracies_extended(
        rule, n_classes=classes, label_noise=problem.label_noise, ce=config.ce_weight, k=problem.k,
        mse=problem.mse, temperature=problem.temperature, mixing=traces, shared_fraction=fraction)


def _describe(config: SimConfig) -> str:
    v = config.venn
    return (f"config G={v.shared} A={v.a_only} B={v.b_only} U={v.unseen} dim_a={v.dim_a} "
            f"dim_b={v.dim_b} n_train={config.n_train} optimizer={getattr(config, 'optimizer', 'sgd')}")


def complementarity(config: SimConfig, *, label: str = "binary", nodes: int = DEFAULT_NODES) -> float:
    """The Cross-modal Complementarity criterion I(h_T; h_S) - I(h_S; Y) in nats (> 0: KD helps).

    h_T, h_S are the Bayes scores of the teacher's and the student's modality (jointly Gaussian);
    Y is the binary label (``label='binary'``, exact by one-dimensional quadrature) or its Gaussian
    score w.z (``label='gaussian'``, the closed form of the CCH paper's joint Gaussian model).
    Expected over hyperplanes for ``hyperplane='gaussian'``.  The value is +inf when teacher and
    student see exactly the same decisive latents (their scores coincide).  Depends on the Venn
    diagram and the hyperplane only (not on n_train, dims or training knobs).
    """
    if not isinstance(config, SimConfig):
        raise ValueError(
            f"config={config!r} is not allowed: it must be a SimConfig (build one with "
            "mfh_sim.make_config)"
        )
    if label not in LABELS:
        raise ValueError(f"label={label!r} is not allowed: use one of {LABELS}")
    return complementarity_gap(blocks_of(config), config.hyperplane, label, _check_nodes(nodes))
