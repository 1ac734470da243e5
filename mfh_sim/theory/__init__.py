"""Theory of the modality Venn diagram generator: population and finite-sample predictions.

Public entry points (derivations and assumptions in ``docs/theory.md``):

* :func:`predict` — the finite-sample accuracies (high-dimensional GCM theory of the config's
  own optimiser: keys ``teacher_acc``, ``no_kd_acc``, ``kd_acc``, ``delta``) and the infinite-data
  limit (same keys with the suffix ``_limit``); :func:`mfh_sim.simulation.simulate` and ``sweep``
  attach it as ``result.theory``.  :func:`decline_reason` says why a config is not modelled
  (``predict`` then raises :class:`TheoryDeclined`, a NotImplementedError carrying ``reason``).
* :func:`predict_limit` — the infinite-data accuracies alone (fast).
* :func:`crossover_gamma_gcm` — the GCM theory's crossover gamma* for any blocks/dims/n_train.
* :func:`complementarity` — the Cross-modal Complementarity criterion I(h_T; h_S) - I(h_S; Y).
* :func:`crossover_gamma` — the least-squares surrogate's crossover gamma* of the Fig. 2 geometry
  as a function of n_train, channel dims and the KD mixing weight.
* :func:`linear_student` — population teacher and KD student for one hyperplane and any linear
  teacher; :func:`simulate_least_squares` — vmapped least-squares students (the surrogate's
  simulation).
"""

from __future__ import annotations

from mfh_sim.theory.api import (
    TheoryDeclined,
    complementarity,
    decline_reason,
    effective_l2,
    finite_prediction,
    predict,
    predict_limit,
    predict_many,
)
from mfh_sim.theory.finite import crossover_from_gains, crossover_gamma, fig2_blocks, fig2_delta, surrogate_lambda
from mfh_sim.theory.highdim import crossover_gamma_gcm, gd_effective_l2
from mfh_sim.theory.least_squares import simulate_least_squares
from mfh_sim.theory.population import linear_student, sheppard_accuracy

__all__ = [
    "TheoryDeclined",
    "complementarity",
    "crossover_gamma_gcm",
    "decline_reason",
    "effective_l2",
    "gd_effective_l2",
    "predict_limit",
    "predict_many",
    "crossover_from_gains",
    "crossover_gamma",
    "fig2_blocks",
    "fig2_delta",
    "finite_prediction",
    "linear_student",
    "predict",
    "sheppard_accuracy",
    "simulate_least_squares",
    "surrogate_lambda",
]
