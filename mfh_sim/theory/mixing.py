"""Nonlinear modalities: the random tanh mixing of :func:`mfh_sim.data.mix_channels` through Gaussian
equivalence, as spectral data for the GCM fixed point (derivation: docs/theory.md 4.12).

The generator maps a modality's latent channels (c of them, the latents it shows; its noise
channels are left alone) through ``depth`` layers u -> (1 - s) u + s phi(u M / sqrt(c)),
phi = tanh / 0.6278, M with N(0, 1) entries, drawn per run.  Gaussian equivalence (Goldt et al.
2022; Hu and Lu 2022; several layers: Schroeder et al. 2023) replaces each layer's phi(g_j), g_j of
variance v_j, by mu_1(v_j) g_j + mu_*(v_j) xi_j with xi independent N(0, 1),
mu_1 = E[phi'(g)], mu_*^2 = E[phi(g)^2] - mu_1^2 v: a linear map of the latents plus independent
Gaussian noise, u_l = u_{l-1} A_l + s xi_l D_*, A_l = (1 - s) I + s M_l D_1 / sqrt(c).  So the
channels are Gaussian with covariance Omega = T^T T + N (T = A_1 ... A_L, N the propagated noise)
and Cov(x, L) = T^T w: a Gaussian covariate model with anisotropic inputs, whose ridge fixed point
needs (1/d) tr f(Omega) and tr(T f(Omega) T^T) / c for the resolvent f(lam) = 1 / (lam' + Vh lam)
and its powers.  The label direction w, drawn independently of the mixing weights, is generic in
Omega's eigenbasis (the law of M is rotation invariant), so a quadratic form w^T T f(Omega) T^T w
is ||w||^2 tr(T f(Omega) T^T) / c to leading order in 1/c.

Which Omega.  The weights M are drawn per run, at the config's own c: the theory averages the
spectral measure over :data:`DRAWS` fixed draws (numpy seed :data:`SEED`), each propagated
through the Gaussian-equivalent layers with its exact per-channel pre-activation variances.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

#: Mixing draws averaged into the spectral measure, and their numpy seed (part of the definition).
DRAWS = 16
SEED = 20261204
#: Gauss-Hermite nodes of the one-dimensional moments mu_1, mu_*.
_MOMENT_NODES = 80
#: phi = tanh / TANH_SCALE (the simulator's constant, mfh_sim.data._TANH_SCALE).
TANH_SCALE = 0.6278


class Mixing(NamedTuple):
    """The mixing of a config, as the theory needs it (hashable).

    depth >= 1 layers of strength in [0, 1]; latent_a, latent_b: latent channels of each modality
    (the latents it shows: its shared and specific, decisive and non-decisive blocks); dim_a,
    dim_b: all channels; shared_latents: latents both modalities show (decisive and not).
    """

    depth: int
    strength: float
    latent_a: int
    latent_b: int
    dim_a: int
    dim_b: int
    shared_latents: int


class Modality(NamedTuple):
    """One modality's mixing: ``latent`` channels of ``dim``, ``depth`` layers of ``strength``."""

    latent: int
    dim: int
    depth: int
    strength: float


class Spectrum(NamedTuple):
    """Spectral data of one modality's Gaussian-equivalent channels.

    atoms: (lam, w, s), each (A,): eigenvalues of Omega with the weights of (1/d) tr f(Omega) and
    of tr(T f(Omega) T^T) / c (the noise channels are one atom at lam = 1 with s = 0).
    draws: per mixing draw, (eigenvalues (c,), S2 (c, c)) with S2 = (E^T T^T T E)^2 elementwise,
    E the eigenvectors: tr((T f T^T)^2) / c = f^T S2 f / c.  latent, dim: c, d.
    """

    atoms: tuple
    draws: tuple
    latent: int
    dim: int


def modality(mixing: Mixing, which: str) -> Modality:
    """The mixing of modality 'a' or 'b'."""
    if which == "a":
        return Modality(mixing.latent_a, mixing.dim_a, mixing.depth, mixing.strength)
    return Modality(mixing.latent_b, mixing.dim_b, mixing.depth, mixing.strength)


@functools.cache
def _hermite() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(_MOMENT_NODES)
    return x, w / w.sum()


def moments(variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu_1, mu_*^2) of phi = tanh / 0.6278 at pre-activation variances ``variance`` (> 0).

    mu_1 = E[phi'(g)], mu_*^2 = E[phi(g)^2] - mu_1^2 v for g ~ N(0, v) (phi odd: no constant).
    """
    x, w = _hermite()
    g = np.sqrt(np.asarray(variance, dtype=np.float64))[..., None] * x
    th = np.tanh(g)
    mu1 = ((1.0 - th**2) @ w) / TANH_SCALE
    second = ((th / TANH_SCALE) ** 2) @ w
    return mu1, np.maximum(second - mu1**2 * np.asarray(variance), 0.0)


def equivalent_layers(weights: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, Omega) of the Gaussian-equivalent channels for one draw of ``weights`` (depth, c, c).

    Layer by layer: v_j = (M^T Sigma M)_jj / c, A = (1 - s) I + s M diag(mu_1) / sqrt(c),
    T <- T A, Sigma <- A^T Sigma A + s^2 diag(mu_*^2), from T = Sigma = I (latent channels are the
    latents, unit variance).  Returns T (c, c) with Cov(x_lat, z) = T^T and Omega = Sigma.
    """
    c = weights.shape[-1]
    T = np.eye(c)
    sigma = np.eye(c)
    for M in weights:
        v = np.einsum("ij,ik,kj->j", M, sigma, M) / c
        mu1, mu_star2 = moments(np.maximum(v, 1e-12))
        A = (1.0 - strength) * np.eye(c) + strength * M * mu1[None, :] / math.sqrt(c)
        T = T @ A
        sigma = A.T @ sigma @ A + strength**2 * np.diag(mu_star2)
    return T, sigma


@functools.cache
def spectrum(mod: Modality) -> Spectrum:
    """The averaged spectral data of ``mod`` (:data:`DRAWS` fixed draws of the mixing weights)."""
    c, d = int(mod.latent), int(mod.dim)
    rng = np.random.default_rng([SEED, c, int(mod.depth)])
    lams, ws, ss, draws = [], [], [], []
    for _ in range(DRAWS):
        weights = rng.standard_normal((int(mod.depth), c, c)) if c else np.zeros((int(mod.depth), 0, 0))
        if c == 0:
            break
        T, omega = equivalent_layers(weights, float(mod.strength))
        lam, E = np.linalg.eigh(omega)
        S = E.T @ (T.T @ T) @ E
        lams.append(lam)
        ws.append(np.full(c, 1.0 / (d * DRAWS)))
        ss.append(np.diag(S) / (c * DRAWS))
        draws.append((lam, S**2))
    lam = np.concatenate(lams + [np.ones(1)])
    w = np.concatenate(ws + [np.array([(d - c) / d])])
    s = np.concatenate(ss + [np.zeros(1)])
    return Spectrum((lam, w, s), tuple(draws), c, d)


def _resolvent(spec: Spectrum, lam_prime: np.ndarray, vh: np.ndarray, lam: np.ndarray) -> np.ndarray:
    return 1.0 / (np.asarray(lam_prime)[..., None] + np.asarray(vh)[..., None] * lam)


def traces(spec: Spectrum, lam_prime, vh) -> dict[str, np.ndarray]:
    """Trace functionals of the resolvent R = (lam' + Vh Omega)^-1 at per-problem (lam', Vh).

    kappa = tr(T R T^T) / c, kappa2 = tr((T R T^T)^2) / c, noise = tr(T R Omega R T^T) / c,
    V = (1/d) tr(Omega R).
    """
    lam, w, s = spec.atoms
    r = _resolvent(spec, lam_prime, vh, lam)
    kappa = r @ s
    noise = (r**2 * lam) @ s
    v = (r * lam) @ w
    kappa2 = np.zeros_like(kappa)
    for lam_d, s2 in spec.draws:
        rd = _resolvent(spec, lam_prime, vh, lam_d)
        kappa2 = kappa2 + np.einsum("...i,ij,...j->...", rd, s2, rd) / (spec.latent * len(spec.draws))
    return dict(kappa=kappa, kappa2=kappa2, noise=noise, V=v)


def teacher_projection(spec_a: Spectrum, spec_b: Spectrum, problem, rule, *, mh_t, qh_t, vh_t, alpha_t,
                       l2_teacher) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cross, teacher_sq, xi) of the KD student on mixed inputs, per hyperplane node.

    The teacher's weights in Gaussian-equivalent form theta_T = R_T (mh_T phi_T + sqrt(qh_T)
    Omega_T^(1/2) g / sqrt(d_a)), pulled back to the a-latents (u_T = T_a theta_T) and restricted to
    the shared latents, are v = kappa_T w_G + (a generic part) of squared norm
    mh_T^2 (kappa_T^2 p_G + (g/c_a)(kappa2_T - kappa_T^2) rho_T) + qh_T (g/c_a) (c_a/d_a) noise_T,
    and w_b . v = mh_T kappa_T p_G; the student sees them through its own mixing (its spectral
    traces multiply them in the prior).  The same-sample coefficient is xi = g kappa_T / d_a
    (tr(R_S C_ba R_T C_ab) / d_a = tau_S(R_S) xi with C_ba the shared latents' cross-covariance).
    Without mixing these are c_T p_G, c_T^2 p_G + ||nu_S||^2 and V_T g / d_a to leading order.
    """
    g = float(problem.shared_channels)
    c_a = float(max(spec_a.latent, 1))  # no latent channel: g = 0 as well
    t = traces(spec_a, alpha_t * l2_teacher, vh_t)
    kappa, kappa2 = t["kappa"], t["kappa2"]
    rho_t = rule.p_g + rule.p_a
    cross = mh_t * kappa * rule.p_g
    spread = np.maximum(kappa2 - kappa**2, 0.0)
    teacher_sq = mh_t**2 * (kappa**2 * rule.p_g + (g / c_a) * spread * rho_t) \
        + qh_t * (g / float(spec_a.dim)) * t["noise"]
    xi = g * kappa / float(spec_a.dim)
    return cross, teacher_sq, xi


def inverse_trace(spec: Spectrum) -> float:
    """tau(Omega^-1) = tr(T Omega^-1 T^T) / c: the share of a latent signal a linear read-out of the
    mixed channels recovers in the infinite-data limit (Brillinger: direction Omega^-1 phi)."""
    lam, _, s = spec.atoms
    return float(np.sum(s / lam))


def inverse_trace_square(spec: Spectrum) -> float:
    """tr((T Omega^-1 T^T)^2) / c (the spread of T Omega^-1 T^T w around its mean direction)."""
    total = 0.0
    for lam_d, s2 in spec.draws:
        r = 1.0 / lam_d
        total += float(r @ s2 @ r) / (spec.latent * len(spec.draws))
    return total
