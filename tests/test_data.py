import jax
import numpy as np
import pytest

from mfh_sim.data import hyperplane, make_layout, sample, split
from mfh_sim.venn import VennConfig

VENN = VennConfig(shared=3, a_only=2, b_only=4, unseen=2, shared_nondecisive=2,
                  a_nondecisive=1, b_nondecisive=1, dim_a=12, dim_b=14)


def _draw(n=4000, seed=0, kind="gaussian"):
    layout = make_layout(VENN, kind)
    key_w, key_x = jax.random.split(jax.random.PRNGKey(seed))
    w = hyperplane(key_w, layout)
    return layout, np.asarray(w), jax.tree.map(np.asarray, sample(key_x, layout, w, n))


def test_channels_carry_their_latents_and_noise_elsewhere():
    layout, w, data = _draw()
    for x, channel_latents in ((data.x_a, VENN.channel_latents_a()), (data.x_b, VENN.channel_latents_b())):
        for channel, latent in enumerate(channel_latents):
            if latent >= 0:
                np.testing.assert_array_equal(x[:, channel], data.latents[:, latent])
            else:
                # A noise channel is independent of every latent: |corr| < 4 / sqrt(n) (4 sigma).
                corr = np.corrcoef(np.c_[x[:, channel], data.latents].T)[0, 1:]
                assert np.abs(corr).max() < 4 / np.sqrt(len(x))
    # Shared channels are the same values in both modalities.
    np.testing.assert_array_equal(data.x_a[:, VENN.channels_of("G", "a")], data.x_b[:, VENN.channels_of("G", "b")])


def test_labels_follow_hyperplane_and_ignore_nondecisive_latents():
    layout, w, data = _draw()
    slices = VENN.latent_slices()
    for region in ("Gn", "An", "Bn"):
        assert (w[slices[region]] == 0).all()
    np.testing.assert_array_equal(data.labels, (data.latents @ w > 0).astype(np.int32))
    # Non-decisive latents and noise channels are independent of the label: the difference of
    # class means is N(0, 1/n1 + 1/n0) per coordinate; 4.5 sigma bounds all of them at once.
    y = data.labels.astype(bool)
    scale = np.sqrt(1 / y.sum() + 1 / (~y).sum())
    nondecisive = np.concatenate([np.arange(slices[r].start, slices[r].stop) for r in ("Gn", "An", "Bn")])
    gap = data.latents[y][:, nondecisive].mean(0) - data.latents[~y][:, nondecisive].mean(0)
    assert np.abs(gap).max() < 4.5 * scale
    noise_b = np.flatnonzero(VENN.channel_latents_b() < 0)
    gap = data.x_b[y][:, noise_b].mean(0) - data.x_b[~y][:, noise_b].mean(0)
    assert np.abs(gap).max() < 4.5 * scale
    # Decisive latents with large weight do separate the classes (E gap = 2 sqrt(2/pi) w_j/||w||).
    strongest = np.argmax(np.abs(w))
    gap = data.latents[y, strongest].mean() - data.latents[~y, strongest].mean()
    assert np.sign(gap) == np.sign(w[strongest])
    assert abs(gap - 2 * np.sqrt(2 / np.pi) * w[strongest] / np.linalg.norm(w)) < 4.5 * scale


def test_ones_hyperplane_and_balance():
    layout, w, data = _draw(kind="ones")
    np.testing.assert_array_equal(w, VENN.decisive_mask())
    # Labels are balanced: P(y=1) = 1/2, so the count is within 4.5 sigma of n/2.
    n = len(data.labels)
    assert abs(data.labels.sum() - n / 2) < 4.5 * np.sqrt(n / 4)


def test_sample_is_deterministic_and_split_is_consecutive():
    _, _, first = _draw(seed=3, n=50)
    _, _, again = _draw(seed=3, n=50)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    parts = split(first, (20, 30))
    np.testing.assert_array_equal(parts[1].x_b, first.x_b[20:])
    assert parts[0].labels.shape == (20,)


def test_bad_hyperplane_kind():
    with pytest.raises(ValueError, match="hyperplane='uniform'"):
        make_layout(VENN, "uniform")
