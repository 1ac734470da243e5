"""The simulator's data as numpy arrays: :func:`generate` takes what :func:`mfh_sim.simulate` takes.

    import mfh_sim
    data = mfh_sim.generate(gamma=0.5, alpha=1/3, n=400, seed=0)
    data.x_a, data.x_b, data.y            # (400, dim_a), (400, dim_b), (400,) int labels
    data.shares["gamma"]                  # the draw's true gamma as a signal share

The arrays are the simulator's own draw: the run of seed ``seed`` of the paper's protocol
(:func:`mfh_sim.protocols.paper.draw_run`, with the key :func:`mfh_sim.simulate` gives that seed
under ``root_seed``) with ``n_train = n``.  So a model trained on ``x_a, y`` sees exactly the
teacher's training sample of that simulated run, and ``x_a_test`` its test sample.

Signal shares.  The label is y = 1[w.z > 0] (two classes) for the drawn hyperplane w; the
decisive latents fall into blocks G (both views), A (x^a only), B (x^b only) and U (neither).
The share of a block is its part of the label direction's energy, p_R = ||w_R||^2 / ||w||^2, and

    gamma = p_G / (p_G + p_A + p_B),  alpha = p_A / (p_G + p_A),  beta = p_B / (p_G + p_B),

the Venn ratios of :class:`mfh_sim.VennConfig` with latents weighted by their weight in the label.
With ``hyperplane='ones'`` every decisive latent weighs 1 and the shares are the count ratios;
with a Gaussian hyperplane they vary from draw to draw around them.  With more than two classes w
is the (n_latent, n_classes) matrix of class directions and ||w_R||^2 its rows' total energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfh_sim.validation import require_integer, require_root_seed


@dataclass(frozen=True)
class Generated:
    """One draw of the simulator: training and test arrays, the layout, the label direction and
    its true shares (``p_g``, ``p_a``, ``p_b``, ``p_u`` in [0, 1], summing to 1, and ``gamma``,
    ``alpha``, ``beta``; see the module docstring)."""

    x_a: np.ndarray
    x_b: np.ndarray
    y: np.ndarray
    x_a_test: np.ndarray
    x_b_test: np.ndarray
    y_test: np.ndarray
    latents: np.ndarray = field(repr=False)
    w: np.ndarray = field(repr=False)
    venn: Any = None
    layout: Any = field(default=None, repr=False)
    shares: dict[str, float] = field(default_factory=dict)


def shares_of(w: np.ndarray, venn) -> dict[str, float]:
    """The signal shares of label direction ``w`` ((n_latent,) or (n_latent, n_classes)) over the
    blocks of ``venn``: p_g, p_a, p_b, p_u and gamma, alpha, beta (a ratio of 0 / 0 is 0, as
    :class:`mfh_sim.VennConfig` defines it)."""
    w = np.asarray(w, np.float64)
    energy = w**2 if w.ndim == 1 else np.sum(w**2, axis=1)
    slices = venn.latent_slices()
    part = {r: float(np.sum(energy[slices[r]])) for r in ("G", "A", "B", "U")}
    total = sum(part.values())
    p = {f"p_{r.lower()}": (part[r] / total if total > 0 else 0.0) for r in part}
    ratio = lambda a, b: a / b if b > 0 else 0.0
    p["gamma"] = ratio(p["p_g"], p["p_g"] + p["p_a"] + p["p_b"])
    p["alpha"] = ratio(p["p_a"], p["p_g"] + p["p_a"])
    p["beta"] = ratio(p["p_b"], p["p_g"] + p["p_b"])
    return p


def generate(gamma: float | None = None, alpha: float | None = None, beta: float | None = None, *,
             n: int = 400, seed: int = 0, root_seed: int = 0, **knobs: Any) -> Generated:
    """Draw ``n`` paired samples (and ``n_test`` test samples) from the simulator's generator.

    Args:
        gamma, alpha, beta, knobs: what :func:`mfh_sim.simulate` takes (ratios, or counts such as
            ``shared``/``a_only``/``b_only``, or ``venn=``; ``hyperplane``, ``n_classes``,
            ``label_noise``, ``mixing_depth`` / ``mixing_strength``, ``dim_a``, ``dim_b``,
            ``n_test`` ...), validated by :func:`mfh_sim.make_config`.  ``n_train`` is not
            allowed: ``n`` is the training sample's size.
        n: training samples, an integer >= 2.
        seed: the seed index (>= 0) of the simulated run whose data these are.
        root_seed: integer in [0, 2**32), as in :func:`mfh_sim.simulate`.

    Returns a :class:`Generated`; features float32, labels int32 in [0, n_classes).
    """
    import jax

    from mfh_sim.config import make_config
    from mfh_sim.data import hyperplane_from_normals
    from mfh_sim.engine import run_keys
    from mfh_sim.protocols.paper import draw_run, inputs_of, split_run_key

    if "n_train" in knobs:
        raise ValueError(f"n_train={knobs['n_train']!r} is not allowed in generate: give the sample size as n")
    n = require_integer("n", n, 2)
    seed = require_integer("seed", seed, 0)
    root_seed = require_root_seed(root_seed)
    config = make_config(gamma=gamma, alpha=alpha, beta=beta, n_train=n, **knobs)
    static = config.static_signature()
    layout, run_knobs = inputs_of(config)
    key = jax.numpy.asarray(run_keys(0, np.array([seed]), root_seed)[0])  # simulate's key of this seed
    draws = draw_run(key, layout, run_knobs, static)
    if static.n_classes == 2:
        # draw_run cuts its normals as (hyperplane, samples, initial weights): the first n_latent
        # normals of the run's draws key are the hyperplane's (tested against the labels).
        w = hyperplane_from_normals(_leading_normals(split_run_key(key).draws, static, layout), layout)
    else:
        from mfh_sim.data import class_directions

        w = class_directions(split_run_key(key).classes, layout, static.n_classes)
    w = np.asarray(w, np.float64)
    arrays = lambda s: (np.asarray(s.x_a), np.asarray(s.x_b), np.asarray(s.labels, np.int32))
    x_a, x_b, y = arrays(draws.train)
    x_a_test, x_b_test, y_test = arrays(draws.test)
    return Generated(x_a, x_b, y, x_a_test, x_b_test, y_test, np.asarray(draws.train.latents), w,
                     config.venn, layout, shares_of(w, config.venn))


def _leading_normals(key, static, layout):
    """The hyperplane's normals: the first n_latent of the one normal draw of :func:`draw_run`
    (drawn at its full length: a shorter draw from the same key gives other numbers)."""
    import jax

    from mfh_sim.data import sample_width
    from mfh_sim.models import linear_init_size

    rows = static.n_train * (2 if static.fresh_student_sample else 1) + static.n_test
    total = (layout.decisive.shape[-1] + rows * sample_width(layout)
             + linear_init_size(static.dim_a, static.n_classes) + linear_init_size(static.dim_b, static.n_classes))
    return jax.random.normal(key, (total,))[: layout.decisive.shape[-1]]
