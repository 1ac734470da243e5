"""Mutation check (``make mutate``, not part of ``make test`` or CI): would the suite catch a bug?

Each mutation is a deliberate, realistic bug written as a textual patch (exact old text -> new
text in one file of the package).  For each, the tree is copied to a temporary directory (the
working tree is never touched), the patch applied there (it must match exactly once, or the
harness stops: a patch that silently matched nothing would test nothing), and a chosen, fast
subset of the tests run there with ``PYTHONPATH`` pointing at the copy.  A mutation is *caught*
when those tests fail.  First, the union of the chosen tests runs on an unpatched copy: they must
pass there, so a failure under a mutation is the mutation's doing.

    PYTHONPATH=. python benchmarks/mutate.py                 # every mutation, the fast tests
    PYTHONPATH=. python benchmarks/mutate.py --only kd_weight_x2 --thorough
                                                             # also the slow paper-level checks

Prints a table (mutation, where, caught or not, the first test that failed, seconds) and exits 1
if any mutation survives, 2 if the harness itself could not run (a patch that does not apply,
tests failing on the unpatched tree, no tests collected).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Not copied: version control, environments, caches and outputs no test under mutation reads.
IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache",
                                "figures", "results", "*.egg-info", ".ipynb_checkpoints")


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids: the smallest fast set that catches it
    thorough: tuple[str, ...] = field(default=())  # slower checks that should catch it too


REFERENCE = "tests/test_paper_reference.py::test_paper_recipe_trains_what_the_papers_script_trains"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "softmax_erm_kd_by_two", "the C-class ERM student's KD weight normalised by 2 instead of C",
        "mfh_sim/protocols/paper.py",
        "k=erm.softmax_effective_kd_weight(knobs.kd_weight, classes, static.kd_reduction, static.kd_loss)",
        "k=erm.softmax_effective_kd_weight(knobs.kd_weight, 2, static.kd_reduction, static.kd_loss)",
        ("tests/test_erm.py::test_optimizer_erm_trains_the_c_class_minimisers_on_the_protocols_draws",),
    ),
    Mutation(
        "kd_weight_x2", "the KD student's KD weight doubled (margin fast path)",
        "mfh_sim/protocols/paper.py",
        "jnp.stack([jnp.float32(0.0), knobs.kd_weight])",
        "jnp.stack([jnp.float32(0.0), 2.0 * knobs.kd_weight])",
        (REFERENCE,),
        ("tests/test_presets.py::test_fig2_kd_gain_slope_is_the_papers",),
    ),
    Mutation(
        "reduction_swapped", "'paper' and 'batchmean' KL reductions swapped in the margin gradient",
        "mfh_sim/losses.py",
        'classes = 2.0 if reduction == "paper" else 1.0',
        'classes = 1.0 if reduction == "paper" else 2.0',
        (REFERENCE,),
        ("tests/test_presets.py::test_fig2_kd_gain_slope_is_the_papers",),
    ),
    Mutation(
        "kd_term_dropped", "the KD student trained without the KD term (teacher margins not passed)",
        "mfh_sim/protocols/paper.py",
        "m, student_labels, teacher_margins, ce_weight=ce_weights",
        "m, student_labels, None, ce_weight=ce_weights",
        (REFERENCE,),
        ("tests/test_presets.py::test_fig3_kd_helps_where_the_teacher_sees_only_shared_latents_and_the_help_falls",
         "tests/test_presets.py::test_kd_gain_curve_within_three_standard_errors_of_the_papers"),
    ),
    Mutation(
        "margin_lr_not_doubled", "margin form without the factor 2 (half the two-output learning rate)",
        "mfh_sim/train.py",
        "chain = lambda g: (2.0 * (x_t @ g), 2.0 * jnp.sum(g, axis=0))",
        "chain = lambda g: (x_t @ g, jnp.sum(g, axis=0))",
        ("tests/test_losses_and_training.py::test_margin_fast_path_equals_two_output_flax_training", REFERENCE),
    ),
    Mutation(
        "theory_coefficient", "GCM theory: the teacher's shared-channel noise with c_T m_T scaled by 0.8",
        "mfh_sim/theory/gcm.py",
        "noise = np.maximum(q_t - c_t * m_t, 0.0)",
        "noise = np.maximum(q_t - 0.8 * c_t * m_t, 0.0)",
        ("tests/test_theory_gcm.py::test_fixed_points_match_monte_carlo_erm",
         "tests/test_theory_gcm.py::test_golden_values"),
    ),
    Mutation(
        "keys_shared_across_seeds", "engine: every seed of a point gets the point's key",
        "mfh_sim/engine.py",
        "key = jax.random.fold_in(jax.random.fold_in(root, identity), seed)",
        "key = jax.random.fold_in(root, identity)",
        ("tests/test_engine.py::test_keys_are_those_of_the_documented_formula",),
    ),
    Mutation(
        "wrong_block_channel", "x^b shows the teacher-only non-decisive block (An) instead of its own (Bn)",
        "mfh_sim/venn.py",
        'return self._channel_latents(("G", "B", "Gn", "Bn"), self.dim_b)',
        'return self._channel_latents(("G", "B", "Gn", "An"), self.dim_b)',
        ("tests/test_venn.py::test_layout_channels_show_the_right_latents",),
    ),
    # Beyond the list: the KD variants and the intervals, whose tests were strengthened.
    Mutation(
        "mse_kd_term_dropped", "logit-MSE KD without its KD term",
        "mfh_sim/protocols/paper.py",
        "kd_loss = lambda logits: ce(logits) + knobs.kd_weight * logit_mse(logits, teacher_logits)",
        "kd_loss = lambda logits: ce(logits) + 0.0 * logit_mse(logits, teacher_logits)",
        ("tests/test_kd_variants.py::test_mse_and_hint_kd_move_the_student_toward_the_teacher",),
    ),
    Mutation(
        "hint_kd_term_dropped", "feature-hint KD without its hint term",
        "mfh_sim/protocols/paper.py",
        "kd_loss = lambda outputs: ce(outputs[0]) + knobs.kd_weight * feature_hint(",
        "kd_loss = lambda outputs: ce(outputs[0]) + 0.0 * feature_hint(",
        ("tests/test_kd_variants.py::test_mse_and_hint_kd_move_the_student_toward_the_teacher",),
    ),
    Mutation(
        "response_term_dropped", "theory: the same-sample student's field ignores the teacher's fit",
        "mfh_sim/theory/gcm.py",
        "field = omega - coef * ex(ch.xi * vh_st) * f_t if vh_st is not None else omega",
        "field = omega",
        ("tests/test_theory_gcm.py::test_same_sample_gain_with_many_shared_channels_matches_monte_carlo",),
    ),
    Mutation(
        "response_teacher_factor_dropped", "theory: the response term without the teacher's 1 / (1 + V_T CE'')",
        "mfh_sim/theory/gcm.py",
        'cache[("ht", y_true, y, rule)] = loss_ht / (1.0 + ex(ch.v_t) * s_y * (1.0 - s_y))',
        'cache[("ht", y_true, y, rule)] = loss_ht',
        ("tests/test_theory_gcm.py::test_same_sample_mse_gain_matches_monte_carlo_and_needs_the_response",),
    ),
    Mutation(
        "z_interval", "summaries: normal quantile in place of Student's t",
        "mfh_sim/stats.py",
        "half = float(stdtrit(n - 1, 0.5 + level / 2.0)) * sem",
        "half = float(ndtri(0.5 + level / 2.0)) * sem",
        ("tests/test_intervals.py::test_t_interval_of_a_mean_covers_at_its_level",),
    ),
    # Issue 21: one trainer and initialiser, one runner, every knob acts or is refused, files.
    Mutation(
        "torch_bound_squared", "the one linear initialiser's bound 1/fan_in instead of 1/sqrt(fan_in)",
        "mfh_sim/init.py",
        "bound = 1.0 / jnp.sqrt(jnp.float32(fan_in))\n        values = bound * (2.0 * uniform - 1.0)",
        "bound = 1.0 / jnp.float32(fan_in)\n        values = bound * (2.0 * uniform - 1.0)",
        ("tests/test_table2.py::test_teacher_init_uses_the_fan_in_of_the_selection",),
        (REFERENCE,),
    ),
    Mutation(
        "kd_logit_temperature_dropped", "multi-class closed-form KD gradient without its factor T",
        "mfh_sim/losses.py",
        "scale = kd_weight * temperature / (n * (classes if reduction == \"paper\" else 1))",
        "scale = kd_weight / (n * (classes if reduction == \"paper\" else 1))",
        ("tests/test_kd_variants.py::test_closed_form_logit_gradient_equals_autodiff",),
    ),
    Mutation(
        "more_seeds_by_position", "a results directory extended with more seeds files runs by position, not seed",
        "mfh_sim/store.py",
        "column_of = {int(s): i for i, s in enumerate(seeds)}",
        "column_of = {i: i for i, s in enumerate(seeds)}",
        ("tests/test_store.py::test_more_seeds_run_only_the_new_ones_and_equal_a_fresh_run",),
    ),
    Mutation(
        "inert_knob_allowed", "mixing_strength without mixing layers is no longer refused",
        "mfh_sim/config.py",
        'Dependence("mixing_strength", "mixing_depth", lambda v: v > 0,',
        'Dependence("mixing_strength", "mixing_depth", lambda v: True,',
        ("tests/test_knobs.py::test_a_sweep_refuses_every_inert_grid_point_before_running",),
        ("tests/test_knobs.py::test_every_knob_changes_the_numbers_or_is_refused_under_every_switch",),
    ),
    Mutation(
        "negative_zero_printed", "CSV cells keep the sign of a value that rounds to zero",
        "mfh_sim/files.py",
        "return repr(round(value, 10) + 0.0) if math.isfinite(value) else \"\"",
        "return repr(round(value, 10)) if math.isfinite(value) else \"\"",
        ("tests/test_files.py::test_a_value_that_rounds_to_zero_prints_the_same_from_either_side",),
    ),
    Mutation(
        "wide_cpu_chunk", "a CPU chunk wider than engine.CPU_CHUNK runs as one vmap (other float bits)",
        "mfh_sim/engine.py",
        'batch = CPU_CHUNK if devices[0].platform == "cpu" else None',
        "batch = None",
        ("tests/test_engine.py::test_large_chunks_give_the_default_chunks_numbers",),
    ),
    Mutation(
        "pack_key_ignores_student_view", "points with different student views (x^b) packed together",
        "mfh_sim/protocols/paper.py",
        'for name, value in layout._asdict().items() if name != "latents_a")',
        'for name, value in layout._asdict().items() if name not in ("latents_a", "latents_b"))',
        ("tests/test_packs.py::test_packs_give_every_metric_bit_for_bit",),
    ),
    Mutation(
        "students_side_by_side", "a run's students train side by side as one (d, heads) product (its float "
        "rounding then depends on how many points share the pack), not one after another",
        "mfh_sim/protocols/paper.py",
        "    return jax.lax.map(head, (teacher_margins, ce_weights, kd_weights, temperatures))",
        "    return jax.vmap(head)((teacher_margins, ce_weights, kd_weights, temperatures))",
        ("tests/test_packs.py::test_packs_give_every_metric_bit_for_bit",),
    ),
    Mutation(
        "no_kd_sees_teacher", "the no-KD student takes the first point's teacher margins (times KD weight 0)",
        "mfh_sim/protocols/paper.py",
        "return (first(0.0, teacher_margins), first(1.0, ce_weights),",
        "return (jnp.concatenate([teacher_margins[:1], teacher_margins]), first(1.0, ce_weights),",
        ("tests/test_packs.py::test_a_nan_teacher_leaves_the_no_kd_student_alone",),
    ),
    Mutation(
        "erm_pack_one_teacher", "an ERM pack's KD students all distil from the first point's teacher",
        "mfh_sim/protocols/paper.py",
        "(teacher_margins, knobs.ce_weight, knobs.kd_weight, knobs.temperature))\n    trained = Trained(teacher_test, "
        "jnp.broadcast_to(no_kd_test",
        "(jnp.broadcast_to(teacher_margins[0], teacher_margins.shape), knobs.ce_weight, knobs.kd_weight,"
        " knobs.temperature))\n    trained = Trained(teacher_test, jnp.broadcast_to(no_kd_test",
        ("tests/test_packs.py::test_packs_give_every_metric_bit_for_bit",),
    ),
    Mutation(
        "pack_teachers_all_first", "every point of a pack takes the first distinct teacher",
        "mfh_sim/protocols/paper.py",
        "a[np.searchsorted(distinct, teachers)]",
        "a[np.zeros_like(teachers)]",
        ("tests/test_packs.py::test_packs_give_every_metric_bit_for_bit",),
    ),
    Mutation(
        "theory_rule_sum_by_blas", "the two-class channel sums its rule by a BLAS matrix-vector product",
        "mfh_sim/theory/gcm.py",
        "wsum = lambda v: (v.reshape(P, -1) * weight).sum(axis=1)",
        "wsum = lambda v: v.reshape(P, -1) @ weight",
        ("tests/test_theory_gcm.py::test_values_do_not_depend_on_how_solve_batches_problems",),
    ),
    Mutation(
        "multiclass_prox_batch_wide_stop", "the C-class prox steps every point until the batch's slowest settles",
        "mfh_sim/theory/multiclass.py",
        "moving = err > PROX_TOL",
        "moving = np.full(err.shape, bool(np.any(err > PROX_TOL)))",
        ("tests/test_theory_gcm.py::test_values_do_not_depend_on_how_solve_batches_problems",),
    ),
    Mutation(
        "theory_solve_frees_to_the_kernel", "the fixed-point solve leaves the allocator to hand its memory back",
        "mfh_sim/theory/gcm.py",
        "    with kept_memory():",
        "    if True:",
        ("tests/test_memory.py::test_the_solve_runs_inside_kept_memory_and_its_values_do_not_depend_on_it",),
    ),
)


# --- The theory's extensions (docs/theory.md 4.10-4.13): each new term dropped or mis-normalised,
# --- each caught by its independent Monte-Carlo test in tests/test_theory_knobs.py.
_KNOBS = "tests/test_theory_knobs.py::"
THEORY_EXTENSION_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "label_noise_channel_dropped", "theory: the channel trains on clean labels (only the test labels noisy)",
        "mfh_sim/theory/gcm.py",
        "    noisy = ch.label_noise is not None and bool(np.any(ch.label_noise > 0))\n    if noisy:\n        eps",
        "    noisy = False\n    if noisy:\n        eps",
        (_KNOBS + "test_label_noise_matches_monte_carlo",),
    ),
    Mutation(
        "multiclass_channel_dropped", "theory: C-class problems solved with the two-class channel",
        "mfh_sim/theory/gcm.py",
        "    if n_classes is not None and int(np.max(n_classes)) > 2:",
        "    if False:",
        (_KNOBS + "test_more_classes_match_monte_carlo[True]",),
    ),
    Mutation(
        "multiclass_kd_weight_halved", "theory: the C-class KL's 'paper' weight divided by 2, not by C",
        "mfh_sim/theory/api.py",
        'k = config.kd_weight / (float(classes) if config.kd_reduction == "paper" else 1.0)',
        'k = config.kd_weight / (2.0 if config.kd_reduction == "paper" else 1.0)',
        (_KNOBS + "test_more_classes_match_monte_carlo[True]",),
    ),
    Mutation(
        "multiclass_ridge_factor_dropped", "theory: the C-class ridge l2 ||W||_F^2 read as (l2 / 2) ||Theta||^2",
        "mfh_sim/theory/highdim.py",
        "ridge = 1.0 if C == 2 else 2.0",
        "ridge = 1.0",
        (_KNOBS + "test_more_classes_match_monte_carlo[True]",),
    ),
    Mutation(
        "mixing_spectrum_dropped", "theory: mixed channels treated as the linear generator's (isotropic)",
        "mfh_sim/theory/highdim.py",
        "        mix = problem.mixing\n",
        "        mix = None\n",
        (_KNOBS + "test_mixed_channels_match_monte_carlo",),
    ),
    Mutation(
        "momentum_map_dropped", "theory: heavy-ball GD mapped as plain GD at the same learning rate",
        "mfh_sim/theory/api.py",
        "return gd_effective_l2(config.learning_rate / (1.0 - momentum), config.steps)",
        "return gd_effective_l2(config.learning_rate, config.steps)",
        (_KNOBS + "test_momentum_map_matches_monte_carlo_and_fails_without",),
    ),
)

# --- The fused Pallas kernel (mfh_sim/kernels.py), each caught by its comparison with the XLA path.
_KERNEL = ("tests/test_kernels.py",)
KERNEL_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "kernel_kd_temperature_dropped", "kernel: the KD term's factor T dropped (kd_weight / (n c))",
        "mfh_sim/kernels.py",
        "(kd_weight * temperature / (n * classes))",
        "(kd_weight / (n * classes))",
        _KERNEL,
    ),
    Mutation(
        "kernel_chain_factor_dropped", "kernel: the margin form's factor 2 of the chain rule dropped",
        "mfh_sim/kernels.py",
        "gradient = 2.0 * jnp.sum(x * g[:, None], axis=0)",
        "gradient = jnp.sum(x * g[:, None], axis=0)",
        _KERNEL,
    ),
    Mutation(
        "kernel_mean_over_padding", "kernel: the cross-entropy averaged over the padded samples too",
        "mfh_sim/kernels.py",
        "ce_scale = true_sample * (ce_weight / n)[:, None]",
        "ce_scale = true_sample * (ce_weight / n_block)[:, None]",
        _KERNEL,
    ),
    Mutation(
        "kernel_momentum_dropped", "kernel: heavy-ball momentum ignored (plain GD)",
        "mfh_sim/kernels.py",
        "trace = gradient + momentum * trace",
        "trace = gradient",
        _KERNEL,
    ),
    Mutation(
        "protocol_kernel_drops_kd", "the paper protocol's kernel setting trains its KD students without the teacher",
        "mfh_sim/protocols/paper.py",
        "None if teacher_margins is None else teacher_margins[None, :, 0],",
        "None,",
        ("tests/test_kernels.py::test_the_protocol_with_the_kernel_trains_the_same_models_as_with_xla",),
    ),
)
MUTATIONS = MUTATIONS + THEORY_EXTENSION_MUTATIONS + KERNEL_MUTATIONS


class HarnessError(RuntimeError):
    """The harness could not test what it claims to (exit status 2)."""


def copy_tree(destination: Path) -> Path:
    tree = destination / "tree"
    shutil.copytree(ROOT, tree, ignore=IGNORE, symlinks=True)
    return tree


def apply(tree: Path, mutation: Mutation) -> None:
    target = tree / mutation.path
    if not target.is_file():
        raise HarnessError(f"{mutation.name}: {mutation.path} does not exist")
    text = target.read_text()
    found = text.count(mutation.old)
    if found != 1:
        raise HarnessError(f"{mutation.name}: the text to replace occurs {found} times in {mutation.path} "
                           f"(must be exactly once): {mutation.old!r}")
    target.write_text(text.replace(mutation.old, mutation.new))


def run_tests(tree: Path, tests: tuple[str, ...], stop_first: bool) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "--no-header",
               *(["-x"] if stop_first else []), *tests]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def first_failure(output: str) -> str:
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return match.group(1).split("::", 1)[-1] if match else "?"


def check_mutation(mutation: Mutation, thorough: bool) -> tuple[bool, str, float]:
    tests = mutation.tests + (mutation.thorough if thorough else ())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutate-{mutation.name}-") as scratch:
        tree = copy_tree(Path(scratch))
        apply(tree, mutation)
        # Without -x under --thorough, so every listed check reports; otherwise stop at the first.
        code, output = run_tests(tree, tests, stop_first=not thorough)
    seconds = time.perf_counter() - start
    if code == 0:
        return False, "-", seconds
    if code != 1:  # 2: interrupted or collection error, 4: usage, 5: nothing collected
        raise HarnessError(f"{mutation.name}: pytest exited {code}, not a test failure:\n{output[-3000:]}")
    caught_by = sorted({m.split("::", 1)[-1] for m in re.findall(r"^FAILED (\S+)", output, re.MULTILINE)})
    return True, ", ".join(caught_by) if thorough else first_failure(output), seconds


def baseline(mutations: list[Mutation], thorough: bool) -> float:
    tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests + (m.thorough if thorough else ())))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutate-baseline-") as scratch:
        code, output = run_tests(copy_tree(Path(scratch)), tests, stop_first=False)
    if code != 0:
        raise HarnessError(f"the chosen tests do not pass on the unpatched tree (pytest exit {code}):\n"
                           f"{output[-3000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[m.name for m in MUTATIONS],
                        help="run only these mutations")
    parser.add_argument("--thorough", action="store_true",
                        help="also run each mutation's slower paper-level checks (minutes each)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip checking that the chosen tests pass on the unpatched tree")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name:26} {m.path:28} {m.what}")
        return 0
    try:
        for m in mutations:  # every patch must apply before anything runs
            with tempfile.TemporaryDirectory() as scratch:
                probe = Path(scratch) / m.path
                probe.parent.mkdir(parents=True)
                shutil.copy(ROOT / m.path, probe)
                apply(Path(scratch), m)
        if not args.no_baseline:
            seconds = baseline(mutations, args.thorough)
            print(f"baseline: the chosen tests pass on the unpatched tree ({seconds:.0f} s)", flush=True)
        rows = []
        for m in mutations:
            caught, by, seconds = check_mutation(m, args.thorough)
            rows.append((m, caught, by, seconds))
            print(f"  {m.name}: {'caught' if caught else 'NOT CAUGHT'} ({seconds:.0f} s)", flush=True)
    except HarnessError as error:
        print(f"mutate: {error}", file=sys.stderr)
        return 2
    print()
    print("| mutation | file | caught | failing test (the first; all with --thorough) | s |")
    print("|---|---|---|---|---|")
    for m, caught, by, seconds in rows:
        print(f"| {m.name} | {m.path} | {'yes' if caught else 'NO'} | {by} | {seconds:.0f} |")
    survivors = [m.name for m, caught, _, _ in rows if not caught]
    print()
    print(f"{len(rows) - len(survivors)} of {len(rows)} mutations caught"
          + (f"; survived: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
