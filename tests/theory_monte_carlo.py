"""Independent numpy solvers for the theory's Monte-Carlo tests (no package code): converged ridge
ERM of the two-class margin model and of the C-class softmax model, by Newton's method in float64."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax


def newton_logistic(X, y, l2, t=None, k=0.0, T=1.0, c=0.0):
    """argmin mean_i [CE(y_i, h_i) + k T^2 KL(sigma(t_i/T) || sigma(h_i/T)) + c (h_i - t_i)^2]
    + l2/2 ||theta||^2 over h = X theta (no intercept), y in {-1, 1}."""
    n, d = X.shape
    theta = np.zeros(d)
    for _ in range(60):
        h = X @ theta
        s = expit(-y * h)
        g, gp = -y * s, s * (1 - s)
        if k:
            sh = expit(h / T)
            g, gp = g + k * T * (sh - expit(t / T)), gp + k * sh * (1 - sh)
        if c:
            g, gp = g + 2 * c * (h - t), gp + 2 * c
        step = np.linalg.solve((X.T * gp) @ X / n + l2 * np.eye(d), X.T @ g / n + l2 * theta)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta


def sum_zero_basis(C):
    """(C, C - 1) orthonormal basis of the sum-zero subspace (the simplex's vertices as rows)."""
    centred = np.eye(C) - 1.0 / C
    q, _ = np.linalg.qr(centred[:, : C - 1])
    return q


def newton_softmax(X, y, l2, C, t=None, k=0.0, T=1.0):
    """argmin mean_i [CE(y_i, l_i) + k T^2 KL(softmax(t_i/T) || softmax(l_i/T))] + l2 ||W||_F^2 over
    sum-zero logits l = B Theta^T x (no bias: zero by symmetry in the limit); returns W (d, C)."""
    n, d = X.shape
    B = sum_zero_basis(C)
    onehot = np.eye(C)[y]
    q = softmax(t / T, axis=1) if k else None
    theta = np.zeros((d, C - 1))
    for _ in range(60):
        logits = X @ theta @ B.T
        p = softmax(logits, axis=1)
        G = p - onehot
        H = p[:, :, None] * (np.eye(C) - p[:, None, :])
        if k:
            r = softmax(logits / T, axis=1)
            G = G + k * T * (r - q)
            H = H + k * r[:, :, None] * (np.eye(C) - r[:, None, :])
        grad = X.T @ (G @ B) / n + 2 * l2 * theta
        hg = np.einsum("kc,ikl,le->ice", B, H, B)
        hess = np.einsum("ia,ib,ice->acbe", X, X, hg).reshape(d * (C - 1), d * (C - 1)) / n
        hess += 2 * l2 * np.eye(d * (C - 1))
        step = np.linalg.solve(hess, grad.reshape(-1)).reshape(d, C - 1)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta @ B.T
