"""Theory of the modality Venn diagram generator: population and finite-sample predictions.

Public entry points (derivations and assumptions in ``docs/theory.md``):

* :func:`predict` — the finite-sample accuracies (high-dimensional GCM theory of the config's
  own optimiser: keys ``teacher_acc``, ``no_kd_acc``, ``kd_acc``, ``delta``) and the infinite-data
  limit (same keys with the suffix ``_limit``), for linear models with any number of classes,
  label noise, mixed (nonlinear) channels and GD with or without momentum or converged ERM;
  :func:`mfh_sim.simulation.simulate` and ``sweep`` attach it as ``result.theory``.
  :func:`decline_reason` says why a config is not modelled (``predict`` then raises
  :class:`TheoryDeclined`, a NotImplementedError carrying ``reason``).
* :func:`predict_many` — :func:`predict` for many configs in one batched solve.
* :func:`predict_limit` — the infinite-data accuracies alone (fast).
* :func:`crossover_gamma_gcm` — the GCM theory's crossover gamma* for a one-parameter family of
  diagrams (the geometry is an argument; one training size or many at once);
  :func:`crossover_from_gains` — the same read off a simulated KD-gain curve.
* :func:`complementarity` — the Cross-modal Complementarity criterion I(h_T; h_S) - I(h_S; Y).
* :func:`linear_student` — population teacher and KD student for one hyperplane and any linear
  teacher; :func:`sheppard_accuracy`.
"""

from __future__ import annotations

from mfh_sim.theory.api import (
    TheoryDeclined,
    complementarity,
    decline_reason,
    effective_l2,
    predict,
    predict_limit,
    predict_many,
)
from mfh_sim.theory.highdim import crossover_from_gains, crossover_gamma_gcm, gd_effective_l2
from mfh_sim.theory.population import linear_student, sheppard_accuracy

__all__ = [
    "TheoryDeclined",
    "complementarity",
    "crossover_from_gains",
    "crossover_gamma_gcm",
    "decline_reason",
    "effective_l2",
    "gd_effective_l2",
    "linear_student",
    "predict",
    "predict_limit",
    "predict_many",
    "sheppard_accuracy",
]
