"""Speed of Algorithm 1 (joint training + permutation salience) on the paper's Table 2 data.

Setting: the Table 2 row with 10 a-specific and 10 shared decisive latents (gamma = 0.5), x^a and
x^b of 50 channels, n = 200 paired samples, joint training of two linear networks (SGD lr 0.01,
momentum 0.9, 1000 steps), salience of the 50 channels of x^a with M = 100 permutations, for 10
seeds as one ``jit(vmap(...))`` call.  Prints the wall time of the first call (tracing,
compilation and the run) and of a compiled call (best of 5), and the share of the shared
channels among the top |G| as a sanity check.  The bar: under 5 s including compilation on a
2-core CPU.

    PYTHONPATH=. python benchmarks/algorithm1.py [--seeds 10] [--permutations 100]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from mfh_sim.data import hyperplane, make_layout, sample
from mfh_sim.salience import algorithm1
from mfh_sim.venn import VennConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    venn = VennConfig(shared=10, a_only=10, b_only=0, dim_a=50, dim_b=50)
    layout = make_layout(venn, "ones")
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)

    def draw(key):
        w = hyperplane(key, layout)
        return sample(jax.random.fold_in(key, 1), layout, w, 200)

    data = jax.block_until_ready(jax.jit(jax.vmap(draw))(keys))
    run = jax.jit(jax.vmap(
        lambda key, x_a, x_b, labels: algorithm1(
            key, x_a, x_b, labels, permutations=args.permutations, steps=args.steps
        ).a
    ))
    start = time.perf_counter()
    salience = jax.block_until_ready(run(keys, data.x_a, data.x_b, data.labels))
    first = time.perf_counter() - start
    compiled = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(run(keys, data.x_a, data.x_b, data.labels))
        compiled.append(time.perf_counter() - start)

    shared = venn.channels_of("G", "a")
    top = np.argsort(-np.asarray(salience), axis=1)[:, : shared.size]
    recovery = np.isin(top, shared).mean()
    print(f"Algorithm 1: {args.seeds} seeds x {venn.dim_a} channels x M = {args.permutations} "
          f"permutations, {args.steps} joint-training steps, backend {jax.default_backend()}")
    print(f"  first call (trace + compile + run): {first:.2f} s   (bar: < 5 s)")
    print(f"  compiled call (best of 5):          {min(compiled):.3f} s")
    print(f"  recovery of the shared channels:    {100 * recovery:.1f}% "
          f"(chance {100 * shared.size / venn.dim_a:.0f}%)")


if __name__ == "__main__":
    main()
