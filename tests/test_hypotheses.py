"""The head-to-head: statistics (Spearman with bootstrap intervals, cross-fitted sign agreement),
the random family's design (few compiled programs), an end-to-end run and the CLI; the claims
judged across families, the report's files, and a report that resumes after an interruption."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mfh_sim.cli import main
from mfh_sim.experiments.hypotheses import (
    CLAIMS,
    FAMILIES,
    PREDICTORS,
    Claim,
    ClaimResult,
    FamilySpec,
    bootstrap_spearman,
    claim_statistic,
    family_spec,
    judge_claims,
    load_family_report,
    partial_spearman,
    random_family,
    run_families,
    run_head_to_head,
    sign_agreement,
    wilson_interval,
)


def test_spearman_matches_scipy_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    y = x + rng.normal(size=80)
    rho, low, high = bootstrap_spearman(x, y, n_boot=500, seed=1)
    assert rho == pytest.approx(scipy_stats.spearmanr(x, y).statistic, abs=1e-12)
    assert low < rho < high
    # With 80 pairs the bootstrap SE of rho is about 0.06-0.08: the interval is neither a point
    # nor wider than the whole range.
    assert 0.1 < high - low < 0.6
    rho, low, high = bootstrap_spearman(x, 3 * x**3 + 1, n_boot=200)
    assert (rho, low, high) == (1.0, 1.0, 1.0)
    assert math.isnan(bootstrap_spearman(np.ones(10), np.arange(10.0))[0])
    # Non-finite pairs are left out.
    assert bootstrap_spearman(np.r_[x, np.nan], np.r_[y, 0.0], n_boot=500, seed=1)[0] == pytest.approx(
        scipy_stats.spearmanr(x, y).statistic)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_spearman(x, y, n_boot=1)


def test_partial_spearman_removes_what_the_controls_explain():
    rng = np.random.default_rng(4)
    z = rng.normal(size=300)
    x = z + 0.3 * rng.normal(size=300)
    y = z + 0.3 * rng.normal(size=300)
    # x and y are related only through z: the plain correlation is strong, the partial one is
    # near 0 (its SE with 300 points is about 1/sqrt(300) = 0.06; 0.2 is over 3 SE).
    assert bootstrap_spearman(x, y, n_boot=100)[0] > 0.8
    rho, low, high = partial_spearman(x, y, [z], n_boot=300)
    assert abs(rho) < 0.2 and low < rho < high
    # w carries what z does not: its partial correlation with z + w given z stays high.
    w = rng.normal(size=300)
    assert partial_spearman(w, z + w, [z], n_boot=100)[0] > 0.8
    # With no relation left to explain, a constant control gives NaN rather than an error.
    assert math.isnan(partial_spearman(x, y, [np.ones(300)], n_boot=100)[0])


def test_sign_agreement_is_perfect_for_a_separating_predictor_and_reports_the_baseline():
    rng = np.random.default_rng(2)
    predictor = rng.uniform(size=60)
    gain = predictor - 0.3  # KD helps exactly where the predictor exceeds 0.3
    rate, baseline, n = sign_agreement(predictor, gain, folds=5)
    assert n == 60 and rate == 1.0
    assert baseline == pytest.approx(max(np.mean(gain > 0), np.mean(gain <= 0)), abs=0.1)
    # A decreasing relation is found too (the orientation is fitted).
    assert sign_agreement(-predictor, gain)[0] == 1.0
    # An unrelated predictor does about as well as the majority rule.  Binomial SE of a rate on
    # 400 configs is <= 0.025; 0.12 is about 5 SE.
    noise = rng.normal(size=400)
    gains = rng.normal(loc=0.5, size=400)
    rate, baseline, _ = sign_agreement(noise, gains)
    assert abs(rate - baseline) < 0.12
    low, high = wilson_interval(30, 60)
    assert low < 0.5 < high and 0 < low and high < 1


def test_random_family_shares_few_programs_and_varies_the_knobs():
    spec = FamilySpec(n_configs=200, multiclass_share=0.25)
    configs = random_family(spec)
    assert len(configs) == 200
    assert sum(c.n_classes == 3 for c in configs) == 50
    from mfh_sim.protocols.paper import static_of

    signatures = {static_of(c) for c in configs}
    assert len(signatures) == len(spec.n_train_values) * 2
    assert {c.n_latent for c in configs} == {spec.n_latent}
    gammas = np.array([c.gamma for c in configs])
    assert gammas.min() == 0.0 and gammas.max() == 1.0 and np.std(gammas) > 0.2
    assert np.ptp([c.venn.unseen_share for c in configs]) > 0.3
    assert len({(c.venn.shared_nondecisive, c.venn.a_nondecisive, c.venn.b_nondecisive) for c in configs}) > 50
    assert all(c.venn.shared + c.venn.a_only >= 1 and c.venn.shared + c.venn.b_only >= 1 for c in configs)
    assert random_family(spec) == configs  # deterministic in the seed
    assert random_family(FamilySpec(n_configs=200, multiclass_share=0.25, seed=1)) != configs


TINY = FamilySpec(n_configs=12, multiclass_share=0.5, n_visible=4, max_unseen=2, max_nondecisive=1,
                  dim=6, n_train_values=(24,), n_test=60, steps=30)


def test_head_to_head_end_to_end_and_cli(tmp_path):
    result = run_head_to_head(TINY, seeds=3, n_boot=50, workers=1)
    assert result.arrays["kd_acc"].shape == (12, 3)
    assert set(result.scores) == {"all", "two-class", "multi-class"}
    names = {s.predictor for s in result.scores["multi-class"]}
    assert "nontarget_kl" in names and "gamma" in names
    assert "nontarget_kl" not in {s.predictor for s in result.scores["all"]}
    gain = result.arrays["kd_acc"].astype(float) - result.arrays["no_kd_acc"]
    np.testing.assert_allclose(result.gain, gain.mean(axis=1))
    np.testing.assert_allclose(result.predictors["teacher_acc"], result.arrays["teacher_acc"].mean(axis=1),
                               rtol=1e-6)
    multi = result.multiclass
    assert np.all(np.isnan(result.predictors["nontarget_kl"][~multi]))
    assert np.all(result.predictors["nontarget_kl"][multi] > 0)
    gamma_score = next(s for s in result.scores["all"] if s.predictor == "gamma")
    assert gamma_score.spearman_low <= gamma_score.spearman <= gamma_score.spearman_high
    assert "gamma (MFH)" in result.table()
    assert result.divergence == {"teacher_diverged": 0, "no_kd_diverged": 0, "kd_diverged": 0,
                                 "configs_affected": 0, "runs": 36}
    assert "diverged runs of 36: teacher 0, no-KD 0, KD 0 (in 0 configs)" in result.table()

    # A diverged no-KD student on one seed of config 0: counted, and the teacher predictor of that
    # config averages the other two seeds only (the seeds its gain is over).
    import dataclasses

    from mfh_sim.experiments.hypotheses import predictors_of

    arrays = {k: v.copy() for k, v in result.arrays.items()}
    arrays["no_kd_acc"][0, 1], arrays["no_kd_diverged"][0, 1] = np.nan, True
    hurt = dataclasses.replace(result, arrays=arrays)
    assert hurt.divergence["no_kd_diverged"] == 1 and hurt.divergence["configs_affected"] == 1
    assert "no-KD 1, KD 0 (in 1 configs)" in hurt.table()
    teacher = predictors_of(result.configs, arrays)["teacher_acc"]
    assert teacher[0] == pytest.approx(result.arrays["teacher_acc"][0, [0, 2]].mean(), rel=1e-6)
    np.testing.assert_allclose(teacher[1:], result.predictors["teacher_acc"][1:], rtol=1e-6)

    out = tmp_path / "h2h"
    code = main(["hypotheses", "--configs", "12", "--seeds", "3", "--multiclass-share", "0.5",
                 "--n-train", "24", "--steps", "30", "--bootstrap", "50", "--workers", "1",
                 "--out", str(out), "--quiet", "--no-figure", "--n-visible", "4", "--max-unseen", "2",
                 "--max-nondecisive", "1", "--dim", "6", "--n-test", "60"])
    assert code == 0
    saved = json.loads((out / "hypotheses.json").read_text())
    assert len(saved["configs"]) == 12 and saved["seeds"] == 3
    assert (out / "hypotheses.txt").read_text().startswith("KD gain predictors")
    # Same family, seeds and root seed through the CLI: the same gains.
    np.testing.assert_allclose(saved["gain"], result.gain)


def test_the_theory_thread_leaves_the_warnings_filters_to_the_main_thread(monkeypatch):
    # run_head_to_head solves the theory in a worker thread beside the simulations.
    # warnings.catch_warnings saves and restores the whole process's filter list, so entered from
    # two threads at once it can leave one thread's filter behind (every RuntimeWarning silenced
    # for the rest of the process): only the main thread may enter it.
    import threading
    import warnings

    entered_from = []
    real = warnings.catch_warnings

    def recording(*args, **kwargs):
        entered_from.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(warnings, "catch_warnings", recording)
    before = list(warnings.filters)
    result = run_head_to_head(TINY, seeds=2, n_boot=20, workers=1)
    assert np.isfinite(result.predictors["theory_gain"]).all()
    assert entered_from and all(entered_from)
    assert warnings.filters == before


# ----------------------------------------------------------------- claims across families
def test_a_contrast_claim_pairs_its_resamples_and_a_single_one_is_the_tables_statistic():
    rng = np.random.default_rng(3)
    z = rng.normal(size=200)
    gain = z + 0.5 * rng.normal(size=200)
    predictors = {"sharp": z + 0.2 * rng.normal(size=200), "blunt": z + 2.0 * rng.normal(size=200),
                  "flat": np.ones(200), "half": np.where(np.arange(200) < 100, z, np.nan)}
    sharp, blunt = ("sharp", ()), ("blunt", ())
    better = claim_statistic(Claim("c", "sharp beats blunt", (sharp, blunt), +1), predictors, gain, n_boot=400)
    # rho(sharp) is about 0.87 and rho(blunt) about 0.4: the difference is many SEs above 0.
    assert better[1] > 0.2 and better[3] == 200
    worse = claim_statistic(Claim("c", "blunt beats sharp", (blunt, sharp), +1), predictors, gain, n_boot=400)
    assert worse[:3] == pytest.approx((-better[0], -better[2], -better[1]))
    # Paired resamples: a predictor against itself is exactly 0 on every resample.  (Resampled
    # apart, each side would carry its own bootstrap noise, an interval about 0.2 wide.)
    assert claim_statistic(Claim("c", "same", (sharp, sharp), +1), predictors, gain, n_boot=400)[:3] == (0, 0, 0)
    # One term: the numbers of the family's tables (bootstrap_spearman, partial_spearman).
    single = claim_statistic(Claim("c", "sharp", (sharp,), +1), predictors, gain, n_boot=300, seed=5)
    assert single[:3] == bootstrap_spearman(predictors["sharp"], gain, n_boot=300, seed=5)
    given = claim_statistic(Claim("c", "sharp | blunt", (("sharp", ("blunt",)),), +1), predictors, gain,
                            n_boot=300, seed=5)
    assert given[:3] == partial_spearman(predictors["sharp"], gain, [predictors["blunt"]], n_boot=300, seed=5)
    # NaN predictors leave their configs out; a constant one gives no value.
    assert claim_statistic(Claim("c", "half", (("half", ()), sharp), +1), predictors, gain, n_boot=50)[3] == 100
    assert math.isnan(claim_statistic(Claim("c", "flat", (("flat", ()),), +1), predictors, gain, n_boot=50)[0])
    assert claim_statistic(Claim("c", "absent", (("absent", ()),), +1), predictors, gain)[3] == 0


def test_verdicts_say_holds_in_all_families_or_that_it_depends_with_the_range():
    negative = Claim("c", "x ranks the gain negatively", (("x", ()),), -1)
    result = ClaimResult(negative, {"a": (-0.6, -0.7, -0.5, 240), "b": (-0.2, -0.3, -0.1, 240),
                                    "c": (math.nan, math.nan, math.nan, 240)})
    assert [result.status(f) for f in "abc"] == ["holds", "holds", "n/a"]
    assert result.verdict == "holds in all 2 families (range -0.60 to -0.20); n/a in c"
    result = ClaimResult(negative, {"a": (-0.6, -0.7, -0.5, 240), "b": (0.05, -0.05, 0.15, 240),
                                    "c": (0.3, 0.2, 0.4, 240)})
    assert [result.status(f) for f in "abc"] == ["holds", "unclear", "reversed"]
    assert result.verdict == ("depends on the family (range -0.60 to +0.30; holds in 1, unclear in 1, "
                              "reversed in 1 of 3)")
    reversed_everywhere = ClaimResult(negative, {"a": (0.3, 0.2, 0.4, 9)})
    assert reversed_everywhere.verdict == "reversed in all 1 families (range +0.30 to +0.30)"
    assert ClaimResult(negative, {"a": (0.0, -0.1, 0.1, 9), "b": (-0.05, -0.2, 0.0, 9)}).verdict.startswith(
        "not shown in any of the 2 families")
    assert [c.key for c in CLAIMS] == list(dict.fromkeys(c.key for c in CLAIMS))  # keys are unique
    assert all(name in PREDICTORS for c in CLAIMS for term in c.terms for name in (term[0], *term[1]))


def _tiny_families() -> dict:
    """Two small designs that compile into few programs (run in seconds)."""
    small = dict(n_configs=12, multiclass_share=0.5, n_visible=4, max_unseen=2, max_nondecisive=1, dim=6,
                 n_train_values=(24,), n_test=60, steps=30)
    return {"gamma-split": family_spec("gamma-split", **small), "alpha-beta": family_spec("alpha-beta", **small)}


def test_a_family_report_resumes_after_an_interruption_and_saves_what_it_shows(tmp_path, monkeypatch):
    import mfh_sim.experiments.hypotheses as hypotheses
    from mfh_sim.store import ResultStore

    families = _tiny_families()
    common = dict(seeds=3, n_boot=50, workers=1)
    fresh = run_families(families, out=tmp_path / "fresh", **common)
    assert set(fresh.families) == {"gamma-split", "alpha-beta"} and len(fresh.claims) == len(CLAIMS)
    for name in families:
        assert (tmp_path / "fresh" / name / "runs" / "manifest.json").is_file()
        assert json.loads((tmp_path / "fresh" / name / "hypotheses.json").read_text())["family"] == name

    # Interrupted while the second family simulates; the rerun simulates only that one.
    simulate = hypotheses.simulate_family
    calls = []

    def interrupted(points, **kwargs):
        calls.append(kwargs["out"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return simulate(points, **kwargs)

    monkeypatch.setattr(hypotheses, "simulate_family", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_families(families, out=tmp_path / "resumed", **common)
    monkeypatch.setattr(hypotheses, "simulate_family", simulate)
    written = []
    write = ResultStore.write
    monkeypatch.setattr(ResultStore, "write", lambda store, block: written.append(store.path.parent.name)
                        or write(store, block))
    resumed = run_families(families, out=tmp_path / "resumed", **common)
    assert set(written) == {"alpha-beta"}
    for name in families:
        np.testing.assert_array_equal(resumed.families[name].gain, fresh.families[name].gain)
    assert resumed.table() == fresh.table()

    # The saved report is the report: loaded, it prints the same, and its per-config data give
    # the same claims again.
    json_path, text_path = resumed.save(tmp_path / "report")
    loaded = load_family_report(json_path)
    assert loaded.table() == resumed.table() == text_path.read_text().rstrip("\n")
    again = judge_claims(loaded.families, n_boot=50)
    np.testing.assert_equal([r.values for r in again], [r.values for r in resumed.claims])  # NaN == NaN here


def test_the_command_runs_several_families_and_a_rerun_computes_nothing(tmp_path, monkeypatch, capsys):
    from mfh_sim.commands.hypotheses import FAMILY_NAMES, REPORT_STEM
    from mfh_sim.store import ResultStore

    assert FAMILY_NAMES == tuple(FAMILIES)
    argv = ["hypotheses", "--family", "gamma-split", "--family", "alpha-beta", "--configs", "12", "--seeds", "3",
            "--multiclass-share", "0.5", "--n-train", "24", "--steps", "30", "--bootstrap", "50", "--workers", "1",
            "--n-visible", "4", "--max-unseen", "2", "--max-nondecisive", "1", "--dim", "6", "--n-test", "60",
            "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    report = (tmp_path / "out" / f"{REPORT_STEM}.txt").read_text()
    assert "verdict:" in report and (tmp_path / "out" / f"{REPORT_STEM}.png").is_file()
    # The same report as the Python function on the same families.
    assert report.rstrip("\n") == run_families(_tiny_families(), seeds=3, n_boot=50, workers=1).table()
    written = []
    write = ResultStore.write
    monkeypatch.setattr(ResultStore, "write", lambda store, block: written.append(block) or write(store, block))
    assert main([*argv, "--no-figure"]) == 0
    assert written == [] and (tmp_path / "out" / f"{REPORT_STEM}.txt").read_text() == report
    capsys.readouterr()
    # Other seeds into the same folder: refused in one line before anything runs or is written.
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*"))
    assert main([*argv[:-3], "--seeds", "4", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds the gamma-split family's runs with 3 seeds" in err
    assert written == [] and sorted(p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")) == before


@pytest.mark.parametrize("argv, expected", [
    (["--family", "gamma_split"], "argument --family: invalid choice: 'gamma_split'"),
    (["--family", "no-unseen", "--family", "no-unseen"], "--family no-unseen is given twice"),
    (["--family", "all", "--family", "wide-n-train"], "--family wide-n-train is given twice ('all' includes it)"),
    (["--family", "varied-shapes", "--dim", "40"], "--dim: dim=40 is not allowed with family='varied-shapes'"),
    (["--family", "varied-shapes", "--configs", "30"], "--configs: n_configs=30 is not allowed with family="),
    (["--family", "gamma-alpha", "--configs", "3"], "--configs: n_configs=3 is not allowed"),
    (["--family", "uniform-counts", "--n-visible", "20"], "--n-visible: n_visible=20 is not allowed with diagram="),
])
def test_a_mistake_in_the_families_is_one_line_before_anything_runs(argv, expected, tmp_path, monkeypatch, capsys):
    import mfh_sim.simulation

    monkeypatch.setattr(mfh_sim.simulation, "sweep", lambda *a, **k: pytest.fail("a simulation started"))
    out = tmp_path / "out"
    code = main(["hypotheses", *argv, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("mfh-sim hypotheses: error: ")
    assert expected in err
    assert not out.exists()
