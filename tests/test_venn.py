import warnings

import pytest

from mfh_sim.venn import VennConfig, decisive_shares, implied_gamma


def test_ratios_of_counts():
    venn = VennConfig(shared=4, a_only=6, b_only=2, unseen=3, dim_a=25, dim_b=50)
    assert venn.gamma == pytest.approx(4 / 12)
    assert venn.alpha == pytest.approx(6 / 10)
    assert venn.beta == pytest.approx(2 / 6)
    assert venn.n_decisive == 15 and venn.n_latent == 15
    # The identity 1/gamma = 1/(1-alpha) + 1/(1-beta) - 1 holds for any counts with G > 0.
    assert implied_gamma(venn.alpha, venn.beta) == pytest.approx(venn.gamma)


@pytest.mark.parametrize(
    "gamma, alpha, beta",
    [(0.5, 1 / 3, None), (0.25, None, 0.75), (None, 0.5, 0.0), (1.0, 0.0, None), (0.2, 0.8, 0.0)],
)
def test_ratio_round_trip_exact(gamma, alpha, beta):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # these ratios are exact on 20 latents: no rounding warning
        venn = VennConfig.from_ratios(gamma, alpha, beta, n_visible=20)
    assert venn.n_visible_decisive == 20
    for name, value in (("gamma", gamma), ("alpha", alpha), ("beta", beta)):
        if value is not None:
            assert getattr(venn, name) == pytest.approx(value)
    assert implied_gamma(venn.alpha, venn.beta) == pytest.approx(venn.gamma)


def test_real_ratios_rounded_by_largest_remainder_with_warning():
    # gamma=0.3, alpha=0.2 -> shares G:A:B = 0.3 : 0.075 : 0.625 -> 6 : 1.5 : 12.5 of 20.
    with pytest.warns(UserWarning, match="realise"):
        venn = VennConfig.from_ratios(gamma=0.3, alpha=0.2, n_visible=20)
    assert venn.shared == 6 and venn.a_only + venn.b_only == 14
    assert {venn.a_only, venn.b_only} in ({2, 12}, {1, 13})
    # Finer resolution gets closer: with 200 latents the ratios are within 1/200.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fine = VennConfig.from_ratios(gamma=0.3, alpha=0.2, n_visible=200, dim_a=300, dim_b=300)
    assert abs(fine.gamma - 0.3) < 1 / 200 and abs(fine.alpha - 0.2) < 2 / 60


def test_disjoint_and_degenerate_splits():
    venn = VennConfig.from_ratios(gamma=0.0, alpha=1.0, beta=1.0, n_visible=20)
    assert (venn.shared, venn.a_only, venn.b_only) == (0, 10, 10)
    venn = VennConfig.from_ratios(gamma=0.0, alpha=1.0, beta=1.0, n_visible=20,
                                  teacher_fraction_when_disjoint=0.25)
    assert (venn.shared, venn.a_only, venn.b_only) == (0, 5, 15)
    # A modality that sees no decisive latent makes its ratio 0/0: refused as ratios, allowed as counts.
    with pytest.raises(ValueError, match="alpha=0 with gamma=0 is 0/0"):
        VennConfig.from_ratios(alpha=0.0, beta=1.0, n_visible=10)
    only_student = VennConfig(shared=0, a_only=0, b_only=10)
    assert only_student.alpha == 0.0 and "alpha=n/a" in str(only_student)


def test_shares_sum_to_one():
    for gamma, alpha in [(0.1, 0.5), (0.7, 0.2), (0.4, 0.6)]:
        shares = decisive_shares(gamma, alpha, None)
        assert sum(shares) == pytest.approx(1.0)
        assert shares[0] == pytest.approx(gamma)


def test_layout_channels_show_the_right_latents():
    venn = VennConfig(shared=3, a_only=2, b_only=4, unseen=1, shared_nondecisive=2,
                      a_nondecisive=1, b_nondecisive=2, dim_a=12, dim_b=14)
    slices = venn.latent_slices()
    a, b = venn.channel_latents_a(), venn.channel_latents_b()
    assert a.shape == (12,) and b.shape == (14,)
    in_block = lambda index, region: slices[region].start <= index < slices[region].stop
    shown_a = [i for i in a if i >= 0]
    shown_b = [i for i in b if i >= 0]
    # x^a shows exactly G, A, Gn, An; x^b exactly G, B, Gn, Bn; each latent once; rest noise.
    assert sorted(shown_a) == sorted(
        i for r in ("G", "A", "Gn", "An") for i in range(slices[r].start, slices[r].stop))
    assert sorted(shown_b) == sorted(
        i for r in ("G", "B", "Gn", "Bn") for i in range(slices[r].start, slices[r].stop))
    assert (a[len(shown_a):] == -1).all() and (b[len(shown_b):] == -1).all()
    assert not any(in_block(i, "U") for i in shown_a + shown_b)
    assert list(venn.channels_of("G", "a")) == [i for i, l in enumerate(a) if l >= 0 and in_block(l, "G")]
    assert len(venn.channels_of("B", "a")) == 0 and len(venn.channels_of("B", "b")) == 4
    mask = venn.decisive_mask()
    assert mask.sum() == venn.n_decisive
    for region in ("Gn", "An", "Bn"):
        assert (mask[slices[region]] == 0).all()


def test_paper_fig2_layout():
    # Fig. 2 at overlap o: x^b shows latents 0..9, x^a shows latents (10-o)..(19-o).
    for o in range(0, 11, 2):
        venn = VennConfig(shared=o, a_only=10 - o, b_only=10 - o, unseen=o, dim_a=25, dim_b=50)
        b = venn.channel_latents_b()
        a = venn.channel_latents_a()
        assert list(b[:10]) == list(range(10))
        assert list(a[:10]) == list(range(10 - o, 20 - o))
        assert venn.gamma == pytest.approx(o / (20 - o))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gamma=1.2, alpha=0.0), "gamma=1.2"),
        (dict(gamma=float("nan"), alpha=0.0), "gamma=nan"),
        (dict(gamma=-0.1, alpha=0.0), "gamma=-0.1"),
        (dict(gamma=0.5), "at least two"),
        (dict(gamma=0.9, alpha=0.5), "gamma <= 1 - alpha"),
        (dict(gamma=0.5, alpha=0.5, beta=0.5), "inconsistent"),
        (dict(gamma=0.0, alpha=0.5), "alpha=0.5 is not allowed with gamma=0"),
        (dict(gamma=0.5, alpha=1.0), "alpha=1 is not allowed"),
        (dict(gamma=0.5, alpha=0.2, n_visible=0), "n_visible=0"),
    ],
)
def test_bad_ratios(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VennConfig.from_ratios(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(shared=-1, a_only=1, b_only=1), "shared=-1"),
        (dict(shared=1.5, a_only=1, b_only=1), "shared=1.5"),
        (dict(shared=0, a_only=0, b_only=0), "at least one decisive"),
        (dict(shared=10, a_only=20, b_only=0, dim_a=25), "dim_a=25"),
        (dict(shared=10, a_only=0, b_only=30, dim_b=35), "dim_b=35"),
        (dict(shared=1, a_only=1, b_only=1, dim_b=0), "dim_b=0"),
    ],
)
def test_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VennConfig(**kwargs)
