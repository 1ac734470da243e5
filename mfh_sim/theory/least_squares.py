"""Simulated least-squares students (the surrogate of :mod:`mfh_sim.theory.finite`), vmapped over seeds.

One run: draw the hyperplane and a paired sample exactly as the simulator does
(:func:`mfh_sim.data.hyperplane`, :func:`mfh_sim.data.sample`); fit a least-squares teacher on
x^a to y in {-1, +1}; fit least-squares students on x^b to u = (1 - lam) y + lam t for every lam
of a grid (t the teacher's logit on the students' sample, which is the teacher's own training
sample unless ``same_sample=False``).  No intercepts.  The accuracy reported is the *expected* test
accuracy given the fitted weights, 1 - arccos(rho)/pi with rho the exact correlation of the score
with w.z (Sheppard), so no test-sample noise is added.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mfh_sim.data import Layout, hyperplane, make_layout, sample, split
from mfh_sim.venn import VennConfig


class LeastSquaresRuns(NamedTuple):
    """Per-seed expected accuracies in [0, 1]: teacher (seeds,), students (seeds, lams)."""

    teacher_acc: np.ndarray
    student_acc: np.ndarray
    lams: np.ndarray


def _score_accuracy(theta: jax.Array, channel_latents: jax.Array, w: jax.Array) -> jax.Array:
    """Expected accuracy of sign(theta.x) against sign(w.z); theta (dim,) or (dim, heads)."""
    theta = theta.reshape(theta.shape[0], -1)
    shows = (channel_latents >= 0)[:, None]
    signal = jnp.where(shows, w[jnp.maximum(channel_latents, 0)][:, None], 0.0)
    # Channels show distinct latents, so the score's variance is ||theta||^2.
    rho = jnp.sum(theta * signal, axis=0) / (jnp.linalg.norm(theta, axis=0) * jnp.linalg.norm(w))
    return 1.0 - jnp.arccos(jnp.clip(rho, -1.0, 1.0)) / jnp.pi


def _spd_solve(gram: jax.Array, rhs: jax.Array) -> jax.Array:
    """Solve gram @ out = rhs for a symmetric positive definite ``gram`` by Gauss-Jordan elimination.

    No pivoting is needed for a positive definite matrix (every pivot is a positive Schur
    complement).  Written with plain array operations in one ``fori_loop`` rather than a LAPACK
    call: XLA's CPU LAPACK custom calls, batched under vmap, intermittently stalled on a loaded
    2-core machine, while this is cheap at these sizes (d^2 (d + k) flops).
    """
    d = gram.shape[0]
    augmented = jnp.concatenate([gram, rhs], axis=1)

    def eliminate(i, a):
        row = a[i] / a[i, i]
        a = a - a[:, i][:, None] * row[None, :]
        return a.at[i].set(row)

    return jax.lax.fori_loop(0, d, eliminate, augmented)[:, d:]


def _least_squares(x: jax.Array, targets: jax.Array) -> jax.Array:
    targets = targets.reshape(targets.shape[0], -1)
    return _spd_solve(x.T @ x, x.T @ targets)


@partial(jax.jit, static_argnames=("n_train", "same_sample"))
def _run_batch(keys, layout: Layout, lams, n_train: int, same_sample: bool):
    def run(key):
        k_w, k_data = jax.random.split(key)
        w = hyperplane(k_w, layout)
        sizes = (n_train,) if same_sample else (n_train, n_train)
        parts = split(sample(k_data, layout, w, sum(sizes)), sizes)
        teach, students = parts[0], parts[-1]
        y_t = 2.0 * teach.labels.astype(jnp.float32) - 1.0
        y_s = 2.0 * students.labels.astype(jnp.float32) - 1.0
        theta_t = _least_squares(teach.x_a, y_t)[:, 0]
        logits = students.x_a @ theta_t
        targets = (1.0 - lams)[None, :] * y_s[:, None] + lams[None, :] * logits[:, None]
        theta_s = _least_squares(students.x_b, targets)
        return (_score_accuracy(theta_t, layout.latents_a, w)[0],
                _score_accuracy(theta_s, layout.latents_b, w))

    return jax.vmap(run)(keys)


def simulate_least_squares(
    venn: VennConfig,
    *,
    n_train: int = 200,
    lams: np.ndarray | list[float] = (0.0, 1.0 / 3.0, 1.0),
    seeds: int = 100,
    hyperplane_kind: str = "gaussian",
    same_sample: bool = True,
    root_seed: int = 0,
) -> LeastSquaresRuns:
    """Least-squares teacher and students for ``venn`` over ``seeds`` seeds (one vmapped program).

    Args:
        venn: the Venn diagram and channel dims; n_train > max(dim_a, dim_b) (integer).
        lams: mixing weights in [0, 1] (0 = no KD).
        seeds: number of runs (>= 1); run s uses fold_in(PRNGKey(root_seed), s).
        hyperplane_kind: 'gaussian' or 'ones'.
        same_sample: students train on the teacher's sample (True) or a fresh one.
    """
    if not isinstance(venn, VennConfig):
        raise ValueError(f"venn={venn!r} is not allowed: it must be a VennConfig")
    widest = max(venn.dim_a, venn.dim_b)
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train <= widest:
        raise ValueError(
            f"n_train={n_train!r} is not allowed: least squares needs an integer > max(dim_a, dim_b) "
            f"= {max(venn.dim_a, venn.dim_b)}"
        )
    lams = np.asarray(lams, dtype=np.float32).ravel()
    if lams.size == 0 or not np.all((lams >= 0) & (lams <= 1)):
        raise ValueError(f"lams={lams!r} is not allowed: give values in [0, 1]")
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds={seeds!r} is not allowed: it must be an integer >= 1")
    layout = make_layout(venn, hyperplane_kind)
    root = jax.random.PRNGKey(root_seed)
    keys = jax.vmap(lambda s: jax.random.fold_in(root, s))(jnp.arange(seeds))
    teacher, students = _run_batch(keys, layout, jnp.asarray(lams), int(n_train), bool(same_sample))
    return LeastSquaresRuns(np.asarray(teacher), np.asarray(students), lams)
