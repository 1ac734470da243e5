"""The channel side of the GCM fixed point (docs/theory.md 4.3-4.5, 4.10-4.12): what a problem's
loss and label channel are (:class:`Channel`), and the Gaussian algebra the two-class quadrature
(:mod:`mfh_sim.theory.gcm`) and the symmetric C-class channel (:mod:`mfh_sim.theory.multiclass`)
share: the conditionals of the label latent, the teacher's logit and the cavity field
(:func:`gaussian_conditionals`), and the conjugates from the channel's expectations
(:func:`conjugates`).  A module of its own so that neither channel imports the other's module.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Channel(NamedTuple):
    """Per-problem parameters (arrays broadcast to one batch shape ``(P,)``).

    alpha: n / d > 0.  l2: ridge weight >= 0 in the (ERM) normalisation above.
    omega: (P, K, K) Gram matrix of the visible directions (K = 1 or 2).
    s_lt, s_tt: Cov(L, t), Var(t) of the teacher's margin (K = 2 only; zeros otherwise).
    ce, kd, temperature: a, k, T of the loss (kd = 0: plain logistic regression).
    mse: c, the weight of the margin-MSE term c (h - t)^2 (None: no such term, as zeros).
    """

    alpha: np.ndarray
    l2: np.ndarray
    omega: np.ndarray
    s_lt: np.ndarray
    s_tt: np.ndarray
    ce: np.ndarray
    kd: np.ndarray
    temperature: np.ndarray
    #: Same-sample KD only (zeros otherwise): the teacher's response V_T (its logit on a training
    #: sample is t = prox_{V_T CE(y, .)}(omega_T), omega_T its cavity field, the Gaussian "T") and
    #: the coefficient xi = V_T * shared_channels / dim_a of the teacher-student noise correlation.
    v_t: np.ndarray | None = None
    xi: np.ndarray | None = None
    mse: np.ndarray | None = None
    #: Probability eps that a label is replaced by a uniformly drawn other class (None: no noise).
    #: The channel averages the loss over the observed label given the true one.
    label_noise: np.ndarray | None = None
    #: Number of classes C (None or 2: the two-class margin channel; > 2: the symmetric
    #: multi-class channel of :mod:`mfh_sim.theory.multiclass`, equal across the batch).
    n_classes: np.ndarray | None = None
    #: Anisotropic inputs (nonlinear mixing, :mod:`mfh_sim.theory.mixing`): spectral atoms of the
    #: input covariance Omega, (P, A) each: eigenvalues ``spec_lam``, weights ``spec_w`` of
    #: (1/d) tr f(Omega) = sum_a w_a f(lam_a), and weights ``spec_s`` of the signal trace
    #: tau(f) = tr(T f(Omega) T^T) / c = sum_a s_a f(lam_a) (T the linear part of the channels'
    #: map from the latents).  None: isotropic inputs (Omega = I).
    spec_lam: np.ndarray | None = None
    spec_w: np.ndarray | None = None
    spec_s: np.ndarray | None = None



def gaussian_conditionals(ch: Channel, m: np.ndarray, q: np.ndarray, kd_on: bool):
    """The channel's Gaussian conditionals of (L, T, omega) with covariance
    [[1, s_lt, m_1], [s_lt, s_tt, m_2], [m_1, m_2, q]]: T | L ~ N(s_lt L, v_t),
    omega | L, T ~ N(b_l L + b_t T, sig2), and C = Cov((L, T) | omega) = [[c_ll, c_lt], [c_lt, c_tt]].

    Returns (q floored, m_1, m_2, s_lt, v_t, b_l, b_t, sig2, c_ll, c_lt, c_tt), one entry a problem.
    """
    P = q.shape[0]
    q = np.maximum(q, 1e-300)
    m1 = m[:, 0]
    m2 = m[:, 1] if kd_on else np.zeros(P)
    s_lt = ch.s_lt if kd_on else np.zeros(P)
    s_tt = ch.s_tt if kd_on else np.ones(P)
    v_t = np.maximum(s_tt - s_lt**2, 1e-12)
    b_l = (m1 * s_tt - m2 * s_lt) / v_t
    b_t = (m2 - m1 * s_lt) / v_t
    sig2 = np.maximum(q - (b_l * m1 + b_t * m2), 1e-12 * q)
    c_ll = np.maximum(1.0 - m1**2 / q, 1e-12)
    c_lt = s_lt - m1 * m2 / q
    c_tt = np.maximum(s_tt - m2**2 / q, 1e-12) if kd_on else np.ones(P)
    return q, m1, m2, s_lt, v_t, b_l, b_t, sig2, c_ll, c_lt, c_tt


def conjugates(alpha, kd_on, vh, qh, e_l, e_t, qh_st, vh_st, c_ll, c_lt, c_tt):
    """(Vh, qh, mh, qh_ST, Vh_ST) from the channel's expectations: mh = alpha C^-1 (e_l, e_t)."""
    if not kd_on:
        return alpha * vh, alpha * qh, (alpha * e_l / c_ll)[:, None], qh_st, vh_st
    det_c = c_ll * c_tt - c_lt**2
    mh1 = (c_tt * e_l - c_lt * e_t) / det_c
    mh2 = (-c_lt * e_l + c_ll * e_t) / det_c
    return (alpha * vh, alpha * qh, alpha[:, None] * np.stack([mh1, mh2], axis=1), alpha * qh_st,
            alpha * vh_st)
