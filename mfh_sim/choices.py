"""The vocabulary of choices: every string-valued knob's allowed values, in one place.

This module imports nothing (no numpy, JAX, flax or optax), so that the config, the validation
and the command line can name the choices without loading a numerical library.  The modules that
implement a choice (:mod:`mfh_sim.data`, :mod:`mfh_sim.losses`, :mod:`mfh_sim.models`,
:mod:`mfh_sim.train`) take their tuples from here; to add a choice, add it here and implement it
there.
"""

from __future__ import annotations

#: The separating hyperplane over the decisive latents: 'gaussian' (w ~ N(0, I) per run, the
#: paper's Fig. 2 and 3) or 'ones' (w = 1, the paper's Table 2).
HYPERPLANES: tuple[str, ...] = ("gaussian", "ones")

#: The model of teacher and students: 'linear' (one layer with bias, the paper's) or 'mlp'.
MODELS: tuple[str, ...] = ("linear", "mlp")

#: Initialisation of the weights: 'torch' (U(+-1/sqrt(fan_in)), PyTorch's default, the paper's)
#: or 'lecun' (flax's default).
INITS: tuple[str, ...] = ("torch", "lecun")

#: How a model is trained: full-batch 'sgd' (with heavy-ball momentum, the paper's at momentum 0),
#: 'adam', or 'erm': ridge-regularised logistic ERM solved to convergence by Newton's method
#: (linear models, any number of classes; the regime in which the theory is exact, see mfh_sim.erm).
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "erm")

#: How the KL term of the KD loss is averaged: 'paper' (over batch and classes, as PyTorch's
#: KLDivLoss 'mean' in the original code) or 'batchmean' (per-sample KL).
KD_REDUCTIONS: tuple[str, ...] = ("paper", "batchmean")

#: The distillation term: 'kl' (T^2 KL, the paper's), 'mse' (logit matching) or 'hint'
#: (a FitNets-style feature hint; needs model='mlp').
KD_LOSSES: tuple[str, ...] = ("kl", "mse", "hint")

__all__ = ["HYPERPLANES", "INITS", "KD_LOSSES", "KD_REDUCTIONS", "MODELS", "OPTIMIZERS"]
