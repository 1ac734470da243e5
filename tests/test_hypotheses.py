"""The head-to-head: statistics (Spearman with bootstrap intervals, cross-fitted sign agreement),
the random family's design (few compiled programs), an end-to-end run and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mfh_sim.cli import main
from mfh_sim.experiments.hypotheses import (
    FamilySpec,
    bootstrap_spearman,
    partial_spearman,
    random_family,
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


@pytest.mark.parametrize("knobs, name", [
    (dict(n_configs=5), "n_configs"),
    (dict(multiclass_share=1.5), "multiclass_share"),
    (dict(n_classes=2), "n_classes"),
    (dict(dim=10), "dim"),
    (dict(n_train_values=(1,)), "n_train_values"),
    (dict(n_train_values=()), "n_train_values"),
    (dict(max_unseen=-1), "max_unseen"),
    (dict(seed=-3), "seed"),
])
def test_bad_family_knobs_raise_value_errors_naming_them(knobs, name):
    with pytest.raises(ValueError, match=name):
        FamilySpec(**knobs)


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


def test_cli_rejects_bad_input(capsys):
    assert main(["hypotheses", "--configs", "3", "--quiet"]) == 2
    assert "n_configs" in capsys.readouterr().err
