"""Entry points of the theory: validation and the mapping from a SimConfig to the formulas."""

from __future__ import annotations

from mfh_sim.config import SimConfig
import math

from mfh_sim.theory.criteria import LABELS, complementarity_gap
from mfh_sim.theory.finite import least_squares_accuracies, surrogate_lambda
from mfh_sim.theory.population import TEACHERS, population_accuracies
from mfh_sim.theory.quadrature import DEFAULT_NODES, Blocks, split_rule


def _check_config(config: object) -> SimConfig:
    if not isinstance(config, SimConfig):
        raise ValueError(
            f"config={config!r} is not allowed: it must be a SimConfig (build one with "
            "mfh_sim.make_config)"
        )
    if config.model != "linear":
        raise NotImplementedError(
            f"model={config.model!r} is not covered by the theory: it treats linear models "
            "(model='linear') on Gaussian inputs only"
        )
    if config.ce_weight == 0.0 and config.kd_weight == 0.0:
        raise NotImplementedError(
            "ce_weight=0 with kd_weight=0 is not covered by the theory: the KD student's loss is "
            "identically zero, so it stays at its random initialisation"
        )
    return config


def _check_nodes(nodes: object) -> int:
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 2:
        raise ValueError(f"nodes={nodes!r} is not allowed: it must be an integer >= 2")
    return nodes


def blocks_of(config: SimConfig) -> Blocks:
    """The decisive block sizes (G, A, B, U) of ``config``'s Venn diagram."""
    v = config.venn
    return Blocks(float(v.shared), float(v.a_only), float(v.b_only), float(v.unseen))


def predict(
    config: SimConfig, *, teacher: str = "logistic", nodes: int = DEFAULT_NODES
) -> dict[str, float]:
    """The theory's accuracies (fractions in [0, 1]) for ``config``.

    Population (infinite n_train) keys, expected over Gaussian hyperplanes by Gauss-Jacobi
    quadrature when ``config.hyperplane == 'gaussian'`` and exact for 'ones':

    * ``teacher_acc``: 1 - arccos(rho_T)/pi, rho_T^2 = p_G + p_A (Bayes = population logistic).
    * ``no_kd_acc``: 1 - arccos(rho_S)/pi, rho_S^2 = p_G + p_B.
    * ``kd_acc``: the population minimiser of ce_weight CE + kd_weight T^2 KL (with the config's
      reduction and temperature), with a population logistic teacher (``teacher='logistic'``) or
      the Bayes posterior teacher (``teacher='bayes'``).
    * ``delta`` = kd_acc - no_kd_acc; ``pure_kd_acc``: the KD-only ceiling 1 - arccos(||w_G||)/pi.

    Finite-sample keys ``teacher_acc_finite``, ``no_kd_acc_finite``, ``kd_acc_finite``,
    ``delta_finite`` come from the least-squares surrogate at the config's n_train and channel
    dims (:func:`finite_prediction`; NaN where it does not apply).

    Raises ValueError for a bad argument, NotImplementedError for configs the theory does not
    cover (a non-linear model; an all-zero student loss).
    """
    config = _check_config(config)
    if teacher not in TEACHERS:
        raise ValueError(f"teacher={teacher!r} is not allowed: use one of {TEACHERS}")
    rule = split_rule(blocks_of(config), config.hyperplane, _check_nodes(nodes))
    out = population_accuracies(
        rule,
        ce_weight=config.ce_weight,
        kd_weight=config.kd_weight,
        temperature=config.temperature,
        kd_reduction=config.kd_reduction,
        teacher=teacher,
    )
    out.update({f"{k}_finite": v for k, v in finite_prediction(config, rule).items()})
    return out


def finite_prediction(config: SimConfig, rule=None) -> dict[str, float]:
    """The least-squares surrogate's accuracies at the config's n_train and dims (fractions).

    Keys ``teacher_acc``, ``no_kd_acc``, ``kd_acc``, ``delta``.  The KD student mixes labels and
    teacher logits with lam = k / (ce_weight + k) (:func:`~mfh_sim.theory.finite.surrogate_lambda`),
    which matches the CE + KD population direction at temperature 1 only: for temperature != 1, and
    where n_train <= max(dim_a, dim_b) + 1 (no inverse-Wishart mean), the values are NaN.
    """
    config = _check_config(config)
    if rule is None:
        rule = split_rule(blocks_of(config), config.hyperplane)
    nan = {k: math.nan for k in ("teacher_acc", "no_kd_acc", "kd_acc", "delta")}
    v = config.venn
    if config.temperature != 1.0 or config.n_train <= max(v.dim_a, v.dim_b) + 1:
        return nan
    return least_squares_accuracies(
        rule,
        surrogate_lambda(config.ce_weight, config.kd_weight, config.kd_reduction),
        n_train=config.n_train,
        dim_a=v.dim_a,
        dim_b=v.dim_b,
        shared_channels=v.shared + v.shared_nondecisive,
        same_sample=not config.fresh_student_sample,
    )


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
