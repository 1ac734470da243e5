"""The Cross-modal Complementarity criterion (Xie, Xu and Sanguinetti, 2025, arXiv:2510.13182).

Their hypothesis: crossmodal KD helps when the mutual information between the teacher's and the
student's representations exceeds the mutual information between the student's representation
and the label,  I(h_T; h_S) > I(h_S; Y).  Here the representations are the Bayes logits' scores
of the two modalities, h_T = w_{G u A}.z and h_S = w_{G u B}.z (with ||w|| = 1): jointly Gaussian
with variances p_T = p_G + p_A, p_S = p_G + p_B and covariance p_G, so

    I(h_T; h_S) = -1/2 log(1 - p_G^2 / (p_T p_S))                          (nats, closed form)

and, for the binary label Y = 1[w.z > 0] = 1[h_S + e > 0] with e ~ N(0, 1 - p_S) independent,

    I(h_S; Y) = log 2 - E[ H_2( Phi(h_S / sqrt(1 - p_S)) ) ]                 (one-dimensional quadrature)

with H_2 the binary entropy in nats.  ``label='gaussian'`` replaces Y by its Gaussian score w.z
(the joint Gaussian model of the CCH paper), I(h_S; w.z) = -1/2 log(1 - p_S), closed form.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from mfh_sim.theory.quadrature import Blocks, beta_rule, split_rule

LABELS = ("binary", "gaussian")
_XI = np.linspace(-12.0, 12.0, 6001)
_DXI = _XI[1] - _XI[0]
_DENSITY = np.exp(-0.5 * _XI**2) / math.sqrt(2.0 * math.pi)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-300, 1.0 - 1e-16)
    q = 1.0 - p
    return -(p * np.log(p) + q * np.log(np.clip(q, 1e-300, None)))


def teacher_student_information(p_g: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """I(h_T; h_S) in nats (inf when the two scores coincide: A and B both empty)."""
    p_t, p_s = p_g + p_a, p_g + p_b
    with np.errstate(divide="ignore", invalid="ignore"):
        rho2 = np.where((p_t > 0) & (p_s > 0), p_g**2 / (p_t * p_s), 0.0)
        return -0.5 * np.log1p(-np.clip(rho2, 0.0, 1.0))


def student_label_information(p_s: np.ndarray, label: str = "binary") -> np.ndarray:
    """I(h_S; Y) in nats for a student score carrying the share p_s of ||w||^2."""
    p_s = np.asarray(p_s, dtype=np.float64)
    if label == "gaussian":
        with np.errstate(divide="ignore"):
            return -0.5 * np.log1p(-np.clip(p_s, 0.0, 1.0))
    if label != "binary":
        raise ValueError(f"label={label!r} is not allowed: use one of {LABELS}")
    flat = p_s.ravel()
    out = np.full(flat.shape, math.log(2.0))
    inner = flat < 1.0
    ratio = np.sqrt(flat[inner] / (1.0 - flat[inner]))
    # Trapezoid in xi on a fine grid: the integrand steepens as p_s -> 1 (Phi becomes a step).
    entropy = _binary_entropy(ndtr(ratio[:, None] * _XI[None, :]))
    out[inner] = math.log(2.0) - (entropy * _DENSITY[None, :]).sum(axis=1) * _DXI
    return out.reshape(p_s.shape)


def complementarity_gap(blocks: Blocks, hyperplane: str, label: str = "binary", nodes: int = 24) -> float:
    """E_w[ I(h_T; h_S) ] - E_w[ I(h_S; Y) ] in nats for hyperplane 'gaussian' or 'ones'.

    The first term depends on (p_G, p_A, p_B): the product rule of :func:`split_rule`; the second
    on p_S = p_G + p_B alone, which is Beta((|G|+|B|)/2, (|A|+|U|)/2): a one-dimensional rule.
    """
    if label not in LABELS:
        raise ValueError(f"label={label!r} is not allowed: use one of {LABELS}")
    rule = split_rule(blocks, hyperplane, nodes)
    mutual_ts = float(np.sum(rule.weight * teacher_student_information(rule.p_g, rule.p_a, rule.p_b)))
    if hyperplane == "ones":
        p_s, weight = np.array([(blocks.g + blocks.b) / blocks.total]), np.ones(1)
    else:
        p_s, weight = beta_rule((blocks.g + blocks.b) / 2.0, (blocks.a + blocks.u) / 2.0, 4 * nodes)
    mutual_sy = float(np.sum(weight * student_label_information(p_s, label)))
    return mutual_ts - mutual_sy
