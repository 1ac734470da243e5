"""Real crossmodal KD (docs/real.md): does the modality Venn diagram predict when distilling from
a teacher on view a helps a student on view b?

* :mod:`~mfh_sim.real.sources`: the paired data sources, user arrays, semi-synthetic views;
* :mod:`~mfh_sim.real.arms`: the KD arms' points and the one run of the engine;
* :mod:`~mfh_sim.real.estimator`: estimator v2 of the Venn diagram (:func:`estimate`);
* :mod:`~mfh_sim.real.validation`: the estimator on simulated diagrams of known truth;
* :mod:`~mfh_sim.real.report`: rows, predictors, scores (:func:`check`), with the intervals over
  resampled splits and the cluster bootstrap of :mod:`mfh_sim.stats`.
"""

from mfh_sim.real.arms import BUDGETS, Roles, default_roles, make_points, run_points
from mfh_sim.real.estimator import VennEstimate, estimate, estimate_views
from mfh_sim.real.report import COLUMNS, PREDICTORS, RealCheck, check
from mfh_sim.real.sources import (
    DEFAULT_TASKS,
    VIEWS,
    Task,
    basicmotions_task,
    check_paired,
    digit_tasks,
    load_multifeature,
    load_paired,
    mnist_tasks,
    nutrimouse_task,
    semi_synthetic_tasks,
    user_task,
)
from mfh_sim.real.validation import validate

__all__ = [
    "BUDGETS", "COLUMNS", "DEFAULT_TASKS", "PREDICTORS", "VIEWS", "RealCheck", "Roles", "Task", "VennEstimate",
    "basicmotions_task", "check", "check_paired", "default_roles",
    "digit_tasks", "estimate", "estimate_views", "load_multifeature", "load_paired", "make_points", "mnist_tasks",
    "nutrimouse_task", "run_points", "semi_synthetic_tasks", "user_task",
    "validate",
]
