"""Theory of the modality Venn diagram generator: population and finite-sample predictions.

Public entry points (derivations and assumptions in ``docs/theory.md``):

* :func:`predict` — the accuracies the theory predicts for a :class:`~mfh_sim.config.SimConfig`
  (population keys ``teacher_acc``, ``no_kd_acc``, ``kd_acc``, ``delta``; finite-sample keys with
  the suffix ``_finite``); :func:`mfh_sim.simulation.simulate` and ``sweep`` attach it as
  ``result.theory``.
* :func:`complementarity` — the Cross-modal Complementarity criterion I(h_T; h_S) - I(h_S; Y).
* :func:`crossover_gamma` — the least-squares surrogate's crossover gamma* of the Fig. 2 geometry
  as a function of n_train, channel dims and the KD mixing weight.
* :func:`linear_student` — population teacher and KD student for one hyperplane and any linear
  teacher; :func:`simulate_least_squares` — vmapped least-squares students (the surrogate's
  simulation).
"""

from __future__ import annotations

from mfh_sim.theory.api import complementarity, finite_prediction, predict
from mfh_sim.theory.finite import crossover_from_gains, crossover_gamma, fig2_blocks, fig2_delta, surrogate_lambda
from mfh_sim.theory.least_squares import simulate_least_squares
from mfh_sim.theory.population import linear_student, sheppard_accuracy

__all__ = [
    "complementarity",
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
