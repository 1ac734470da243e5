"""The KD arms on real paired data: points of the 'real' protocol and the one place they run.

Every arm of :mod:`mfh_sim.protocols.real` (``transfer``, ``general_teacher``,
``specific_teacher``, ``same_sample``) runs in each run of a point, on the same roles; the
``semi_synthetic`` rows are the transfer arm on :func:`mfh_sim.real.sources.semi_synthetic_tasks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfh_sim.protocols.real import BUDGET_SLOTS
from mfh_sim.real.sources import MIN_TEST, Task, fingerprint
from mfh_sim.validation import require_integer, require_real

#: The students' label budgets (labelled samples of view b).
BUDGETS = (20, 50, 100)
#: Largest teacher split, pool and test set a task gets by default (the pool's rows are trained
#: on by every student head: its size sets most of a run's cost).
MAX_ROLE = 200


@dataclass(frozen=True)
class Roles:
    """Disjoint sample counts of one split: test, the teacher's labelled split, the unlabelled
    pool, and the students' nested label budgets (the largest is the student's labelled split)."""

    n_test: int
    n_teacher: int
    n_pool: int
    budgets: tuple[int, ...]

    @property
    def needed(self) -> int:
        return self.n_test + self.n_teacher + self.n_pool + max(self.budgets)


def default_roles(n_samples: int, n_teacher: int | None = None, budgets: Sequence[int] = BUDGETS) -> Roles:
    """Roles for a task of ``n_samples``: a quarter each (at most 200) for test, the teacher and
    the pool, the rest (at most the largest budget) for the student's labels; the budgets that
    fit, or the student's whole split if none does.  ``n_teacher`` overrides the teacher's split."""
    quarter = min(n_samples // 4, MAX_ROLE)
    teacher = quarter if n_teacher is None else require_integer("n_teacher", n_teacher, 2)
    budgets = tuple(require_integer("budgets", b, 2) for b in budgets)
    if not budgets or list(budgets) != sorted(set(budgets)):
        raise ValueError(f"budgets={budgets!r} is not allowed: give increasing label budgets >= 2")
    student = min(n_samples - 2 * quarter - teacher, max(budgets))
    if student < 2 or quarter < MIN_TEST:
        raise ValueError(f"n_teacher={teacher} is not allowed with {n_samples} samples: the test set "
                         f"({quarter}, at least {MIN_TEST}), the pool ({quarter}) and at least 2 student labels "
                         f"must fit, so n_teacher <= {max(n_samples - 2 * quarter - 2, 1)}")
    if len(budgets) > BUDGET_SLOTS:
        raise ValueError(f"budgets={budgets!r} is not allowed: give at most {BUDGET_SLOTS} label budgets")
    fitting = tuple(b for b in budgets if b <= student) or (student,)
    return Roles(quarter, teacher, quarter, fitting)


def make_points(tasks: Sequence[Task], *, pairs: Sequence[tuple[str, str]] | None = None,
                n_teacher: int | None = None, budgets: Sequence[int] = BUDGETS, steps: int = 1000,
                learning_rate: float = 0.1, ce_weight: float = 1.0, kd_weight: float = 1.0,
                temperature: float = 1.0, ridge: float = 1.0) -> list:
    """One point per task and ordered view pair (``pairs``: default every ordered pair of the
    task's views).  The knobs carry the simulator's names and meaning: ``steps`` of full-batch GD
    at ``learning_rate``; the KD student's loss ``ce_weight`` CE + ``kd_weight`` T^2 KL at
    ``temperature`` T; ``ridge`` the x^a-on-x^b regression's ridge per pool sample (> 0)."""
    from mfh_sim.protocols.real import RealPoint

    knobs = dict(steps=require_integer("steps", steps, 1),
                 learning_rate=require_real("learning_rate", learning_rate, 0.0, None, open_low=True),
                 ce_weight=require_real("ce_weight", ce_weight, 0.0, None),
                 kd_weight=require_real("kd_weight", kd_weight, 0.0, None),
                 temperature=require_real("temperature", temperature, 0.0, None, open_low=True),
                 ridge=require_real("ridge", ridge, 0.0, None, open_low=True))
    if not tasks:
        raise ValueError("tasks=[] is not allowed: give at least one task")
    points = []
    for task in tasks:
        names = list(task.views)
        chosen = list(pairs) if pairs is not None else [(a, b) for a in names for b in names if a != b]
        roles = default_roles(task.labels.size, n_teacher, budgets)
        fp = fingerprint(task.labels, *(task.views[v] for v in names))
        for a, b in chosen:
            if a not in task.views or b not in task.views or a == b:
                raise ValueError(f"pairs={(a, b)!r} is not allowed: give two different views of {names}")
            points.append(RealPoint(task.name, a, b, task.views[a], task.views[b], task.labels, fp,
                                    task.n_classes, roles.n_test, roles.n_teacher, roles.n_pool, roles.budgets,
                                    **knobs))
    return points


def run_points(points: Sequence, splits: int, *, root_seed: int = 0, out: str | Path | None = None,
               workers: int | None = None, chunk_size: int | None = None, progress: bool = False
               ) -> dict[str, np.ndarray]:
    """Run the arms: arrays (points, splits, ...) per metric; resumable with ``out`` (a run store).
    The one call of the engine (store, progress and execute together)."""
    from mfh_sim.engine import execute
    from mfh_sim.progress import ProgressBar
    from mfh_sim.protocols.real import REAL

    splits = require_integer("splits", splits, 2)
    seeds = np.arange(splits)
    completed, store = [], None
    if out is not None:
        from mfh_sim.store import ResultStore

        store = ResultStore.open(out, REAL, points, [{} for _ in points], seeds, root_seed)
        completed = store.completed()
    done = sum(b.stop - b.start for b in completed)
    bar = ProgressBar(len(points) * splits - done, enabled=progress)
    try:
        return execute(REAL, points, seeds, root_seed, completed=completed, workers=workers,
                       chunk_size=chunk_size, progress=bar.update,
                       on_block=store.write if store is not None else None)
    finally:
        bar.close()
