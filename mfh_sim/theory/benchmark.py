"""Hand-run timing of the finite-sample theory (not a test): ``python -m mfh_sim.theory.benchmark``.

Prints wall and CPU (process) time of :func:`~mfh_sim.theory.api.predict` for single configs
(memo cleared, so every call solves), and of :func:`~mfh_sim.theory.api.predict_many` on a
66-config grid (Fig. 2 overlaps 0-10 x n_train 100/200/400 x both protocols) and on a
1,000-config sweep that asks 10 distinct theory questions (a grid of 10 overlaps x 100 values of
a knob the theory ignores, ``n_test``).
"""

from __future__ import annotations

import time

import mfh_sim
from mfh_sim.theory import api

SINGLE = {
    "fig2 o=5 (gaussian)": dict(shared=5, a_only=5, b_only=5, unseen=5, dim_a=25, dim_b=50),
    "n=100, 50 student channels (gaussian)": dict(shared=4, a_only=4, b_only=4, unseen=2,
                                                  shared_nondecisive=3, dim_a=30, dim_b=50,
                                                  n_train=100),
    "fig3 alpha=0 (gaussian)": dict(shared=10, a_only=0, b_only=0, unseen=40, dim_a=50, dim_b=50),
    "T=4 batchmean (gaussian)": dict(shared=6, a_only=3, b_only=3, unseen=4, dim_a=40, dim_b=40,
                                     kd_weight=2.0, temperature=4.0, kd_reduction="batchmean"),
    "table2 (ones, fresh)": dict(shared=10, a_only=10, b_only=0, hyperplane="ones",
                                 fresh_student_sample=True),
}


def _clear() -> None:
    api._CACHE.clear()
    getattr(api, "_LIMIT_CACHE", {}).clear()


def _timed(label: str, fn) -> None:
    _clear()
    w, c = time.perf_counter(), time.process_time()
    fn()
    print(f"{label:55s} wall {time.perf_counter() - w:6.2f} s  cpu {time.process_time() - c:6.2f} s")


def main() -> None:
    for label, knobs in SINGLE.items():
        config = mfh_sim.make_config(**knobs)
        _timed(f"predict: {label}", lambda config=config: api.predict(config))
    grid = [mfh_sim.make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25,
                                dim_b=50, n_train=n, fresh_student_sample=fresh)
            for o in range(11) for n in (100, 200, 400) for fresh in (False, True)]
    many = getattr(api, "predict_many", lambda cs: [api.predict(c) for c in cs])
    _timed(f"predict_many: {len(grid)}-config grid", lambda: many(grid))
    sweep = [mfh_sim.make_config(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25,
                                 dim_b=50, n_test=1000 + j)
             for o in range(10) for j in range(100)]
    _timed(f"predict_many: {len(sweep)}-config sweep (10 distinct)", lambda: many(sweep))


if __name__ == "__main__":
    main()
