"""Losses: cross-entropy, knowledge distillation, and Algorithm 1's agreement distance.

All take logits of shape (n, classes) and return a scalar averaged over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

KD_REDUCTIONS = ("paper", "batchmean")


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
