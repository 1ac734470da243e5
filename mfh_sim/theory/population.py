"""Population (infinite-data) accuracies of the teacher, the no-KD student and the KD student.

Setting (the simulator's generator, :mod:`mfh_sim.data`): decisive latents z ~ N(0, I), label
y = 1[w.z > 0]; each channel of x^a and x^b shows one latent or independent N(0, 1) noise; models
are linear logistic (two logits = one margin m = theta.x + b).  Derivations: ``docs/theory.md``.

Three facts carry everything (phi(0) = 1/sqrt(2 pi), sigma the logistic function):

1. Sheppard: a linear score m, jointly Gaussian with w.z, has accuracy 1 - arccos(rho)/pi,
   rho = Cov(m, w.z) / (sd(m) ||w||).
2. Stein: for jointly Gaussian (v, m), E[v f(m)] = Cov(v, m) E[f'(m)]; and E[x y] =
   phi(0) Cov(x, w.z) / ||w|| (the derivative of the step is a delta at 0).
3. Hence the population gradient of w_ce CE + w_kd T^2 KL / c (c = 2 for the 'paper' reduction,
   which averages the KL over the two classes, c = 1 for 'batchmean') vanishes at

       theta [w_ce E sigma'(m) + k E sigma'(m/T)] = w_ce phi(0) P_b w / ||w|| + k tau C_ba theta_T,

   k = w_kd / c, tau = E[sigma'(t/T)], t = theta_T.x^a the teacher's margin, P_b w the label
   direction on the student's channels and C_ba theta_T the teacher's weights carried over to the
   channels the student shares with it.  The bracket on the left is a positive scalar, so the KD
   student's *direction* is in closed form; only its norm needs a one-dimensional fixed point.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, log_ndtr

from mfh_sim.theory.quadrature import (
    PHI0,
    SplitRule,
    logistic_slope,
    logistic_slope_times_scale,
    solve_teacher_scale,
)

TEACHERS = ("logistic", "bayes")


def sheppard_accuracy(rho: np.ndarray | float) -> np.ndarray:
    """1 - arccos(rho) / pi: accuracy of a linear score whose correlation with w.z is rho in [-1, 1]."""
    return 1.0 - np.arccos(np.clip(rho, -1.0, 1.0)) / math.pi


def kd_shared_coefficient(
    x: np.ndarray,
    *,
    kd: float,
    temperature: float,
    teacher: str = "logistic",
) -> np.ndarray:
    """The KD target's weight on the shared label direction, per unit of ``w_G`` (||w|| = 1).

    The KD term pulls the student toward ``coef * w_G`` on its shared channels, where
    ``coef = k T E[x_G sigma(t/T)] / w_G``, ``k = kd`` the effective KD weight (already divided by
    the number of classes for the 'paper' reduction), and ``x`` = p_G + p_A = rho_T^2 is the share
    of ||w||^2 the teacher sees.

    teacher='logistic': the population minimiser of the teacher's cross-entropy, margin t with
        standard deviation s_T = :func:`solve_teacher_scale`(sqrt(x)); coef = k tau s_T / sqrt(x)
        with tau = E[sigma'(t/T)]; at T = 1 this is exactly k phi(0) for every x (the teacher's
        own stationarity condition), and k T phi(0) / sqrt(x) for a separable teacher (x = 1).
    teacher='bayes': the Bayes posterior P(y=1 | x^a) = Phi(s / sqrt(1 - x)), s the teacher's
        visible score, softened at temperature T through its log-odds; coef =
        k T E[s sigma(l(s)/T)] / x (one-dimensional quadrature); k phi(0) at T = 1.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and x.size > 1:
        # A product rule repeats each teacher share many times: solve once per distinct value.
        distinct, inverse = np.unique(x, return_inverse=True)
        if distinct.size < x.size:
            return kd_shared_coefficient(
                distinct, kd=kd, temperature=temperature, teacher=teacher
            )[inverse.ravel()]
    rho = np.sqrt(np.clip(x, 0.0, 1.0))
    out = np.zeros_like(x)
    seen = rho > 0
    if teacher == "logistic":
        scale = solve_teacher_scale(rho[seen])
        finite = np.isfinite(scale)
        coef = np.empty_like(scale)
        tau_s = temperature * logistic_slope_times_scale(scale[finite] / temperature)
        coef[finite] = tau_s
        coef[~finite] = temperature * PHI0  # s E[sigma'(s xi / T)] -> T phi(0) as s -> inf
        out[seen] = kd * coef / rho[seen]
    elif teacher == "bayes":
        xi = np.linspace(-12.0, 12.0, 4801)
        dxi = xi[1] - xi[0]
        density = np.exp(-0.5 * xi**2) * PHI0
        r = np.sqrt(np.clip(1.0 - x[seen], 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = rho[seen, None] * xi[None, :] / r[:, None]
            log_odds = log_ndtr(ratio) - log_ndtr(-ratio)
        soft = expit(log_odds / temperature)
        soft = np.where(r[:, None] == 0.0, (xi[None, :] > 0).astype(float), soft)
        moment = (xi[None, :] * soft * density[None, :]).sum(axis=1) * dxi  # E[xi sigma(l/T)]
        out[seen] = kd * temperature * moment / rho[seen]
    else:
        raise ValueError(f"teacher={teacher!r} is not allowed: use one of {TEACHERS}")
    return out


def kd_rho(p_g: np.ndarray, p_b: np.ndarray, shared_coef: np.ndarray, ce: float) -> np.ndarray:
    """Correlation with w.z of the KD student whose latent loadings are (ce phi0 + c) w_G, ce phi0 w_B."""
    c_g = ce * PHI0 + shared_coef
    c_b = ce * PHI0
    num = c_g * p_g + c_b * p_b
    den = np.sqrt(c_g**2 * p_g + c_b**2 * p_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def population_accuracies(
    rule: SplitRule,
    *,
    ce_weight: float,
    kd_weight: float,
    temperature: float,
    kd_reduction: str,
    teacher: str = "logistic",
) -> dict[str, float]:
    """Expected population accuracies of teacher, no-KD and KD student under the hyperplane rule.

    Returns fractions in [0, 1]: ``teacher_acc``, ``no_kd_acc``, ``kd_acc``, ``delta``, and the
    ceilings ``pure_kd_acc`` (w_ce = 0: 1 - arccos(||w_G||/||w||)/pi) for reference.
    """
    k = kd_weight / (2.0 if kd_reduction == "paper" else 1.0)
    wsum = lambda values: float(np.sum(rule.weight * values))
    teacher_acc = wsum(sheppard_accuracy(np.sqrt(rule.x)))
    no_kd_acc = wsum(sheppard_accuracy(np.sqrt(rule.p_g + rule.p_b)))
    coef = kd_shared_coefficient(rule.x, kd=k, temperature=temperature, teacher=teacher)
    kd_acc = wsum(sheppard_accuracy(kd_rho(rule.p_g, rule.p_b, coef, ce_weight)))
    pure_kd_acc = wsum(sheppard_accuracy(np.sqrt(rule.p_g)))
    return {
        "teacher_acc": teacher_acc,
        "no_kd_acc": no_kd_acc,
        "kd_acc": kd_acc,
        "delta": kd_acc - no_kd_acc,
        "pure_kd_acc": pure_kd_acc,
    }


# ------------------------------------------------------------------ one fixed hyperplane, any teacher
def population_accuracies_mse(rule: SplitRule, ce: float, c: float, teacher: str = "logistic") -> dict[str, float]:
    """Population accuracies with the margin loss ce CE(y, m) + c (m - t)^2 (logit-MSE KD; the
    simulator's logit MSE at weight kd_weight has c = kd_weight / 4, docs/theory.md 4.4b).

    Stationarity, with Stein's lemma as in docs/theory.md section 3 (||w|| = 1):
    theta [ce E sigma'(m) + 2c] = ce phi(0) P_b w + 2c C_ba theta_T, and C_ba theta_T =
    (E[s_T t] / X) w_G for a teacher margin t = l(s_T) of its Bayes score s_T (Var s_T = X): the
    student loads ce phi(0) + 2c E[s_T t] / X on w_G and ce phi(0) on w_B.  Logistic teacher:
    t = s s_T / sqrt(X) (s of :func:`solve_teacher_scale`), so the coefficient is 2c s / sqrt(X)
    (infinite where the teacher separates, X = 1: the student's direction is then w_G).  Bayes
    teacher: t = its log-odds, E[s_T t] by one-dimensional quadrature.  Unlike the KL at T = 1
    the teacher's scale enters: MSE pulls the student's margin to the teacher's size.
    """
    x = np.asarray(rule.x, dtype=np.float64)
    rho = np.sqrt(np.clip(x, 0.0, 1.0))
    moment = np.zeros_like(x)  # E[s_T t] / X
    seen = rho > 0
    if teacher == "logistic":
        moment[seen] = solve_teacher_scale(rho[seen]) / rho[seen]
    else:
        xi = np.linspace(-12.0, 12.0, 4801)
        density = np.exp(-0.5 * xi**2) * PHI0 * (xi[1] - xi[0])
        r = np.sqrt(np.clip(1.0 - x[seen], 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = rho[seen, None] * xi[None, :] / r[:, None]
            log_odds = log_ndtr(ratio) - log_ndtr(-ratio)
        # E[s_T t] / X = E[xi l(rho xi)] / rho, infinite for a noise-free teacher (r = 0).
        moment[seen] = np.where(r > 0, (xi * log_odds * density).sum(axis=1) / rho[seen], np.inf)
    coef = 2.0 * c * moment
    infinite = ~np.isfinite(coef)
    rho_kd = kd_rho(rule.p_g, rule.p_b, np.where(infinite, 0.0, coef), ce)
    # An infinitely large teacher margin: the KD target's direction w_G alone.
    rho_kd = np.where(infinite, np.sqrt(rule.p_g), rho_kd)
    wsum = lambda values: float(np.sum(rule.weight * values))
    kd_acc = wsum(sheppard_accuracy(rho_kd))
    no_kd_acc = wsum(sheppard_accuracy(np.sqrt(rule.p_g + rule.p_b)))
    return {
        "teacher_acc": wsum(sheppard_accuracy(rho)),
        "no_kd_acc": no_kd_acc,
        "kd_acc": kd_acc,
        "delta": kd_acc - no_kd_acc,
        "pure_kd_acc": wsum(sheppard_accuracy(np.sqrt(rule.p_g))),
    }


def linear_student(
    latents_a: np.ndarray,
    latents_b: np.ndarray,
    w: np.ndarray,
    *,
    teacher_weights: np.ndarray | None = None,
    ce_weight: float = 1.0,
    kd_weight: float = 1.0,
    temperature: float = 1.0,
    kd_reduction: str = "paper",
) -> dict[str, object]:
    """Population teacher and KD student for one hyperplane ``w``, in channel coordinates.

    Args:
        latents_a, latents_b: latent index shown by each channel of x^a / x^b (-1 = noise), as
            :meth:`mfh_sim.venn.VennConfig.channel_latents_a` gives.
        w: (n_latent,) hyperplane (zero on non-decisive latents).
        teacher_weights: (dim_a,) margin weights of a given linear teacher (bias 0); None = the
            population logistic teacher (its scale from :func:`solve_teacher_scale`).
        ce_weight, kd_weight, temperature, kd_reduction: the KD student's loss.

    Returns dict with ``teacher`` and ``student`` margin weights (the student's at its population
    norm, found by solving the scalar fixed point of the stationarity condition), and accuracies
    ``teacher_acc``, ``no_kd_acc``, ``kd_acc`` (Sheppard).
    """
    latents_a = np.asarray(latents_a)
    latents_b = np.asarray(latents_b)
    w = np.asarray(w, dtype=np.float64)
    norm_w = np.linalg.norm(w)
    k = kd_weight / (2.0 if kd_reduction == "paper" else 1.0)
    label_a = np.where(latents_a >= 0, w[np.maximum(latents_a, 0)], 0.0)
    label_b = np.where(latents_b >= 0, w[np.maximum(latents_b, 0)], 0.0)

    def loading(theta: np.ndarray, latents: np.ndarray) -> tuple[np.ndarray, float]:
        """Latent loading and noise variance of the score theta.x."""
        lat = np.zeros(w.shape[0])
        np.add.at(lat, latents[latents >= 0], theta[latents >= 0])
        return lat, float(np.sum(theta[latents < 0] ** 2))

    def accuracy(theta: np.ndarray, latents: np.ndarray) -> float:
        lat, noise = loading(theta, latents)
        sd = math.sqrt(lat @ lat + noise)
        return float(sheppard_accuracy(lat @ w / (sd * norm_w))) if sd > 0 else 0.5

    if teacher_weights is None:
        rho_a = np.linalg.norm(label_a) / norm_w
        scale = float(solve_teacher_scale(rho_a)[0])
        direction = label_a / max(np.linalg.norm(label_a), 1e-300)
        teacher = direction * (scale if np.isfinite(scale) else 1.0)
        if np.isfinite(scale):
            kd_target_scale = (temperature * float(logistic_slope_times_scale(scale / temperature)) / scale
                               if scale > 0 else 0.0)
            carried = teacher * kd_target_scale
        else:  # separable teacher: sigma(t/T) is the label's step in the teacher's score
            carried = direction * temperature * PHI0
    else:
        teacher = np.asarray(teacher_weights, dtype=np.float64)
        lat, noise = loading(teacher, latents_a)
        sd_t = math.sqrt(lat @ lat + noise)
        carried = teacher * float(logistic_slope(sd_t / temperature))
    # C_ba: move the teacher's weight on each latent to the student's channels showing it.
    lat_t, _ = loading(carried, latents_a)
    shared_target = np.where(latents_b >= 0, lat_t[np.maximum(latents_b, 0)], 0.0)
    rhs = ce_weight * PHI0 * label_b / norm_w + k * shared_target
    # Scalar fixed point for the norm r of theta = r rhs/||rhs||: r [ce E s'(r xi) + k E s'(r xi/T)] = ||rhs||.
    size = np.linalg.norm(rhs)
    if size > 0:
        low, high = -30.0, 40.0
        for _ in range(100):
            mid = 0.5 * (low + high)
            r = math.exp(mid)
            lhs = ce_weight * float(logistic_slope_times_scale(r)) + k * temperature * float(
                logistic_slope_times_scale(r / temperature))
            low, high = (low, mid) if lhs > size else (mid, high)
        student = rhs / size * math.exp(0.5 * (low + high))
    else:
        student = rhs
    return {
        "teacher": teacher,
        "student": student,
        "teacher_acc": accuracy(teacher, latents_a),
        "no_kd_acc": accuracy(label_b, latents_b),
        "kd_acc": accuracy(student, latents_b),
    }


# ------------------------------------------------------- more classes, label noise, mixed channels
def population_accuracies_extended(
    rule: SplitRule,
    *,
    n_classes: int,
    label_noise: float,
    ce: float,
    k: float,
    mse: float,
    temperature: float,
    mixing: tuple[float, float, float] | None = None,
    shared_fraction: float = 0.0,
) -> dict[str, float]:
    """Population accuracies (fractions, against the noisy test labels) for C classes, label noise
    eps and mixed channels (docs/theory.md 4.10-4.12; the logistic, i.e. softmax, teacher).

    Stationarity with Stein's lemma as in section 3, per sum-zero logit direction: a model on
    Gaussian-equivalent channels of covariance Omega reads out the label latent through
    Omega^-1 T^T w (Brillinger), with correlation r^2 = share * tau(Omega^-1) (``mixing`` =
    (tau_a, tau_b, spread_a): tau = tr(T Omega^-1 T^T) / c for modality a, b, spread_a =
    tr((T_a Omega_a^-1 T_a^T)^2) / c_a - tau_a^2; None: 1, 1, 0).  The KD student loads c_1 on its
    label part and c_2 on the teacher's weights pulled to the shared latents
    (tau_a w_G + a generic part of squared norm ``shared_fraction`` spread_a rho_T,
    shared_fraction = shared latents / a's latent channels): c_1 = ce lambda_y with the label's Stein
    coefficient lambda_y (phi(0)(1 - 2 eps) for two classes, E[max L] / (C - 1) (1 - eps C/(C - 1))
    for C), and c_2 = k T u kappa(u / T) / r_T (KL) or 2 c u / r_T (logit MSE), u the population
    teacher's logit scale at correlation r_T.  Accuracy: Sheppard (two classes) or
    :func:`mfh_sim.theory.multiclass.accuracy` of r = sqrt(tau_b) N / D with
    N = c_1 rho_S + c_2 tau_a p_G, D^2 = c_1^2 rho_S + 2 c_1 c_2 tau_a p_G + c_2^2 (tau_a^2 p_G + |e|^2).
    """
    from mfh_sim.theory import multiclass

    C = int(n_classes)
    eps = float(label_noise)
    tau_a, tau_b, spread_a = (1.0, 1.0, 0.0) if mixing is None else mixing

    def acc(r):
        r = np.clip(np.asarray(r, dtype=np.float64), 0.0, 1.0)
        raw = sheppard_accuracy(r) if C == 2 else multiclass.accuracy(r.ravel(), C).reshape(r.shape)
        return (1.0 - eps) * raw + eps * (1.0 - raw) / (C - 1)

    x = np.asarray(rule.x, dtype=np.float64)
    rho_s = rule.p_g + rule.p_b
    r_t = np.sqrt(np.clip(x * tau_a, 0.0, 1.0))
    wsum = lambda values: float(np.sum(rule.weight * values))
    if C == 2:
        lam = PHI0 * (1.0 - 2.0 * eps)
    else:
        lam = multiclass.label_stein(C, eps)

    distinct, inverse = np.unique(r_t, return_inverse=True)
    inverse = inverse.ravel()

    def teacher_coefficient(r: float) -> float:
        """c_2 per unit of (the teacher's weights on w_G): KL and MSE terms."""
        if r <= 0:
            return 0.0
        if C == 2:
            s = float(solve_teacher_scale(np.array([min(r * (1.0 - 2.0 * eps), 1.0)]))[0])
            slope_scale = lambda v: float(logistic_slope_times_scale(np.array([v]))[0])
            limit_kl = temperature * PHI0
        else:
            s = multiclass.teacher_scale(r * r, C, eps) if (r < 1.0 or eps > 0) else math.inf
            slope_scale = lambda v: v * multiclass.mean_jacobian(v, C)
            limit_kl = temperature * lam
        coef = 0.0
        if k > 0:
            coef += k * (limit_kl if not math.isfinite(s) else temperature * slope_scale(s / temperature)) / r
        if mse > 0:
            coef += 2.0 * mse * s / r if math.isfinite(s) else math.inf
        return coef

    c2 = np.array([teacher_coefficient(float(r)) for r in distinct])[inverse]

    def kd_corr(c1):
        with np.errstate(invalid="ignore", divide="ignore"):
            extra = shared_fraction * spread_a * x
            num = c1 * rho_s + c2 * tau_a * rule.p_g
            den2 = c1**2 * rho_s + 2 * c1 * c2 * tau_a * rule.p_g + c2**2 * (tau_a**2 * rule.p_g + extra)
            corr = np.where(den2 > 0, num / np.sqrt(np.where(den2 > 0, den2, 1.0)), 0.0)
            # An infinitely large teacher coefficient: the teacher's direction alone.
            alone = np.where(tau_a**2 * rule.p_g + extra > 0,
                             tau_a * rule.p_g / np.sqrt(np.maximum(tau_a**2 * rule.p_g + extra, 1e-300)), 0.0)
            corr = np.where(np.isfinite(c2), corr, alone)
        return math.sqrt(tau_b) * corr

    with np.errstate(invalid="ignore"):
        kd_acc = wsum(acc(kd_corr(ce * lam)))
        no_kd_acc = wsum(acc(np.sqrt(np.clip(rho_s * tau_b, 0.0, 1.0))))
        extra = shared_fraction * spread_a * x
        alone = np.where(tau_a**2 * rule.p_g + extra > 0,
                         tau_a * rule.p_g / np.sqrt(np.maximum(tau_a**2 * rule.p_g + extra, 1e-300)), 0.0)
        pure = wsum(acc(math.sqrt(tau_b) * alone))  # the KD-only ceiling: the teacher's direction alone
        return {
            "teacher_acc": wsum(acc(r_t)),
            "no_kd_acc": no_kd_acc,
            "kd_acc": kd_acc,
            "delta": kd_acc - no_kd_acc,
            "pure_kd_acc": pure,
        }
