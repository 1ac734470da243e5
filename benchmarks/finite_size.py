"""Is a theory-vs-simulation gap a finite-size effect?  Scale one Venn diagram and watch the gap.

The finite-sample theory is exact in the proportional limit (n_train, channels and latents -> inf
at fixed ratios).  At finite size its error should shrink as the diagram grows; a gap that does not
shrink is a modelling error.  This scales every block count, both channel dims and n_train of a
family diagram of ``benchmarks/theory_family.py`` by s = 1, 2, 4 and compares converged ERM
(``optimizer='erm'``) with :func:`mfh_sim.theory.predict` at each scale.

    PYTHONPATH=. JAX_PLATFORMS=cpu python benchmarks/finite_size.py --index 8 --seeds 300
    PYTHONPATH=. JAX_PLATFORMS=cpu python benchmarks/finite_size.py --scales 2 --set hyperplane=ones --set a_only=0

Prints one row a scale: simulated mean +- SE and the prediction (points), for the teacher, the
no-KD and KD students and the KD gain.  Each scale is its own config, so its own draws.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import theory_family as tf  # noqa: E402

COUNTS = ("shared", "a_only", "b_only", "unseen", "shared_nondecisive", "a_nondecisive", "b_nondecisive",
          "dim_a", "dim_b", "n_train")


def scaled(point: dict, scale: int) -> dict:
    """``point`` with every block count, both dims and n_train multiplied by ``scale``."""
    out = {k: v for k, v in tf.config_kwargs(point).items() if k != "latent_padding"}
    for key in COUNTS:
        out[key] = point[key] * scale
    return out


def _knob(item: str) -> tuple[str, object]:
    """'name=value' -> (name, value): an int, a float, true/false, or the text itself."""
    name, sep, text = item.partition("=")
    if not sep or not name:
        raise SystemExit(f"--set {item!r}: give KNOB=VALUE")
    for parse in (int, float):
        try:
            return name, parse(text)
        except ValueError:
            pass
    return name, {"true": True, "false": False}.get(text.lower(), text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=int, default=8, help="family diagram (0-39)")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--l2", type=float, default=tf.L2)
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="change one knob after scaling (repeatable), e.g. --set hyperplane=ones "
                             "--set a_only=0 (block counts are not scaled again)")
    args = parser.parse_args(argv)
    changes = dict(_knob(item) for item in args.set)

    import mfh_sim
    from mfh_sim.theory import predict

    point = tf.draw_family()[args.index]
    print(f"family diagram #{args.index}: {tf.config_kwargs(point)}; ERM l2 = {args.l2}, {args.seeds} seeds"
          + (f"; changed: {changes}" if changes else ""))
    print("| scale | n_train | dims | teacher sim / th | no-KD sim / th | KD sim / th | gain sim / th | gap / SE |")
    print("|---|---|---|---|---|---|---|---|")
    for scale in args.scales:
        start = time.perf_counter()
        knobs = dict(scaled(point, scale), optimizer="erm", l2=args.l2, **changes)
        stats = tf.simulate_erm_point(knobs, args.seeds, args.l2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            theory = predict(mfh_sim.make_config(**knobs))
        cells = []
        for name in tf.QUANTITIES:
            sim, se = 100 * stats[name], 100 * stats[f"{name}_se"]
            cells.append(f"{sim:+.2f} +- {se:.2f} / {100 * theory[name]:+.2f}" if name == "delta"
                         else f"{sim:.2f} +- {se:.2f} / {100 * theory[name]:.2f}")
        gap = 100 * (theory["delta"] - stats["delta"])
        print(f"| {scale} | {knobs['n_train']} | {knobs['dim_a']}/{knobs['dim_b']} | " + " | ".join(cells)
              + f" | {gap:+.2f} / {gap / (100 * stats['delta_se']):+.1f} |  ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
