"""Losses: cross-entropy, knowledge distillation, and Algorithm 1's agreement distance.

All take logits of shape (n, classes) and return a scalar averaged over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mfh_sim.choices import KD_REDUCTIONS


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """mean_i [ -log softmax(logits_i)[labels_i] ]  (labels are integer classes)."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[..., None], axis=-1))


def kd_kl(
    student_logits: jax.Array,
    teacher_logits: jax.Array,
    temperature: float | jax.Array = 1.0,
    reduction: str = "batchmean",
) -> jax.Array:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch.

    ``reduction='batchmean'`` sums the KL over classes and averages over samples (the KL divergence
    per sample).  ``reduction='paper'`` averages over samples *and* classes, as PyTorch's
    ``KLDivLoss()`` with its default ``reduction='mean'`` does in the original implementation: it is
    ``batchmean / n_classes``, so with two classes the KD term carries half its nominal weight.
    The teacher's logits are treated as constants (no gradient flows into the teacher).
    """
    if reduction not in KD_REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not allowed: use one of {KD_REDUCTIONS}")
    teacher_logits = jax.lax.stop_gradient(teacher_logits)
    teacher_log_probs = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = jax.nn.log_softmax(student_logits / temperature, axis=-1)
    pointwise = jnp.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs)
    per_sample = jnp.sum(pointwise, axis=-1)
    if reduction == "paper":
        per_sample = per_sample / student_logits.shape[-1]
    return temperature**2 * jnp.mean(per_sample)


def logit_mse(student_logits: jax.Array, teacher_logits: jax.Array) -> jax.Array:
    """mean_i ||s_i - t_i||^2 / classes: squared error between logits (teacher held constant)."""
    return jnp.mean((student_logits - jax.lax.stop_gradient(teacher_logits)) ** 2)


def feature_hint(regressed_features: jax.Array, teacher_features: jax.Array) -> jax.Array:
    """mean_{i,k} (r_ik - h_ik)^2: a feature hint (Romero et al., FitNets, ICLR 2015).

    ``regressed_features`` (n, d_t) are the student's hidden features mapped by a learned linear
    regressor to the teacher's width; ``teacher_features`` (n, d_t) are the teacher's hidden
    features, held constant.  Averaged over samples and features.
    """
    return jnp.mean((regressed_features - jax.lax.stop_gradient(teacher_features)) ** 2)


def distillation(
    student_logits: jax.Array,
    labels: jax.Array,
    teacher_logits: jax.Array,
    *,
    ce_weight: float | jax.Array = 1.0,
    kd_weight: float | jax.Array = 1.0,
    temperature: float | jax.Array = 1.0,
    reduction: str = "paper",
) -> jax.Array:
    """ce_weight * CE(s, y) + kd_weight * T^2 * KL(softmax(t/T) || softmax(s/T))."""
    return ce_weight * cross_entropy(student_logits, labels) + kd_weight * kd_kl(
        student_logits, teacher_logits, temperature, reduction
    )


def nontarget_divergence(
    teacher_logits: jax.Array, student_logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """Per-sample KL(q_T || q_S) between the two models' distributions over the non-target classes.

    q_M(k) = p_M(k) / (1 - p_M(y)) for k != y, with p_M = softmax(logits) and y the label: the
    quantity whose size the Non-target Divergence Hypothesis (Chen et al., 2024, arXiv 2409.02438)
    relates to the efficacy of crossmodal KD (the smaller, the better KD works).  In nats, >= 0,
    shape (n,).  With two classes there is one non-target class and the divergence is 0.
    """
    classes = teacher_logits.shape[-1]
    target = jax.nn.one_hot(labels, classes, dtype=bool)
    # Drop the target by setting its logit to -inf: log_softmax then renormalises over the rest.
    masked = lambda logits: jax.nn.log_softmax(jnp.where(target, -jnp.inf, logits), axis=-1)
    log_q_t, log_q_s = masked(teacher_logits), masked(student_logits)
    pointwise = jnp.where(target, 0.0, jnp.exp(log_q_t) * (log_q_t - log_q_s))
    return jnp.sum(pointwise, axis=-1)


def softmax_first(logits: jax.Array) -> jax.Array:
    """Softmax over the leading (class) axis."""
    shifted = logits - jax.lax.stop_gradient(jnp.max(logits, axis=0, keepdims=True))
    exp = jnp.exp(shifted)
    return exp / jnp.sum(exp, axis=0, keepdims=True)


def logit_gradient(
    logits: jax.Array,
    onehot: jax.Array,
    teacher_probs: jax.Array | None = None,
    *,
    ce_weight: float | jax.Array = 1.0,
    kd_weight: float | jax.Array = 0.0,
    temperature: float | jax.Array = 1.0,
    reduction: str = "paper",
    kd_head: int | None = -1,
) -> jax.Array:
    """d/d logits of :func:`distillation` for any number of classes, in closed form, classes first.

    ``logits`` (C, n, heads): C classes, n samples, heads trained side by side; ``onehot``
    (C, n, 1) the labels.  With p = softmax(l), p^T = softmax(l / T) and q = ``teacher_probs``
    the teacher's softened probabilities softmax(t / T), per head

        d CE / d l                  = (p - onehot) / n                  (times ``ce_weight``)
        d T^2 KL(q || p^T) / d l    = T (p^T - q) / (n c)               (times ``kd_weight``)

    with c = C for ``reduction='paper'`` and c = 1 for ``'batchmean'``.  ``ce_weight`` and
    ``kd_weight`` may be arrays that broadcast against (C, n, heads) (per head, or per sample and
    head: a 0/1 mask times n / its count averages a head's loss over its own samples).

    Which heads distil: ``kd_head=h`` (default the last), the KD term applies to head h only and
    q is (C, n), so the softened softmax is computed for that head alone (the paper's no-KD and
    KD students side by side); ``kd_head=None``, every head distils from its own teacher, q is
    (C, n, heads) (a head whose ``kd_weight`` is 0 is a no-KD head).  Either way q is taken as
    given, computed once outside a training loop (XLA does not hoist loop invariants out of a
    scan).  Classes first: a softmax over a short leading axis is elementwise work over samples,
    about twice as fast on a CPU as over a trailing axis.
    """
    if reduction not in KD_REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not allowed: use one of {KD_REDUCTIONS}")
    classes, n = logits.shape[0], logits.shape[1]
    grad = ce_weight * (softmax_first(logits) - onehot) / n
    if teacher_probs is None:
        return grad
    scale = kd_weight * temperature / (n * (classes if reduction == "paper" else 1))
    if kd_head is None:
        return grad + scale * (softmax_first(logits / temperature) - teacher_probs)
    soft = softmax_first(logits[:, :, kd_head] / temperature)
    return grad.at[:, :, kd_head].add(scale * (soft - teacher_probs))


def agreement_distance(logits_a: jax.Array, logits_b: jax.Array) -> jax.Array:
    """Algorithm 1's distance: mean squared difference of the two networks' outputs."""
    return jnp.mean((logits_a - logits_b) ** 2)


def margin_gradient(
    margins: jax.Array,
    labels: jax.Array,
    teacher_margins: jax.Array | None = None,
    *,
    ce_weight: float | jax.Array = 1.0,
    kd_weight: float | jax.Array = 0.0,
    temperature: float | jax.Array = 1.0,
    reduction: str = "paper",
) -> jax.Array:
    """d/dm of :func:`distillation` for two classes, in closed form, per sample.

    With two classes the logits enter softmax only through the margin m = l_1 - l_0.  Writing
    sigma for the logistic function, for n samples

        d CE / d m_i               = (sigma(m_i) - y_i) / n
        d T^2 KL(q_i || p_i) / d m_i = T (sigma(m_i / T) - sigma(t_i / T)) / (n c)

    with t_i the teacher's margin, and c = 2 for ``reduction='paper'`` (mean over classes too),
    c = 1 for ``'batchmean'``.  ``margins`` may carry trailing head axes as long as ``labels``
    and ``teacher_margins`` broadcast against them.
    """
    if reduction not in KD_REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not allowed: use one of {KD_REDUCTIONS}")
    n = margins.shape[0]
    grad = ce_weight * (jax.nn.sigmoid(margins) - labels) / n
    if teacher_margins is not None:
        classes = 2.0 if reduction == "paper" else 1.0
        soft = jax.nn.sigmoid(margins / temperature) - jax.nn.sigmoid(teacher_margins / temperature)
        grad = grad + kd_weight * temperature * soft / (n * classes)
    return grad
