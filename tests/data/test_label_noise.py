"""inject_label_noise: exact counts, seeds, the kinds, no self-flips, bad arguments."""

import numpy as np
import pytest

from dmlviz.data import NOISE_KINDS, NoisyLabels, inject_label_noise

LABELS = np.repeat(np.arange(6), 17)  # 102 samples, 6 classes
# the kinds that flip single labels (small_cluster moves whole classes: its own tests below)
FLIP_KINDS = [kind for kind in NOISE_KINDS if kind != "small_cluster"]


def _features(labels, seed=0):
    """Class c's samples sit around (c, c**2): class c's nearest class is c-1 (c+1 for c=0)."""
    rng = np.random.default_rng(seed)
    centres = np.stack([np.arange(6), np.arange(6) ** 2], axis=1).astype(float)
    return centres[labels] + rng.normal(scale=0.05, size=(len(labels), 2))


def _nearest_reference(labels, features):
    """The slow, obvious computation of every class's nearest class mean."""
    means = {c: features[labels == c].mean(0) for c in np.unique(labels)}
    return {
        c: min((d for d in means if d != c), key=lambda d: (np.linalg.norm(means[c] - means[d]), d))
        for c in means
    }


@pytest.mark.parametrize("kind", FLIP_KINDS)
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 0.99])
def test_exactly_round_rate_n_labels_flip_and_never_to_themselves(kind, rate):
    noisy = inject_label_noise(LABELS, rate, kind=kind, seed=1, features=_features(LABELS))
    assert isinstance(noisy, NoisyLabels)
    assert noisy.flipped.dtype == bool and noisy.observed.dtype == noisy.clean.dtype == np.int64
    assert noisy.flipped.sum() == round(rate * len(LABELS))
    assert np.array_equal(noisy.observed != noisy.clean, noisy.flipped)
    assert np.array_equal(noisy.clean, LABELS)
    assert noisy.observed.min() >= 0 and noisy.observed.max() < 6
    assert (noisy.rate, noisy.kind, noisy.seed) == (rate, kind, 1)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_same_seed_same_flips_other_seed_other_flips(kind):
    features = _features(LABELS)
    a = inject_label_noise(LABELS, 0.3, kind=kind, seed=5, features=features)
    b = inject_label_noise(LABELS, 0.3, kind=kind, seed=5, features=features)
    c = inject_label_noise(LABELS, 0.3, kind=kind, seed=6, features=features)
    assert np.array_equal(a.observed, b.observed) and np.array_equal(a.flipped, b.flipped)
    assert not np.array_equal(a.flipped, c.flipped)


def test_symmetric_reaches_every_other_class_about_equally():
    labels = np.zeros(3000, dtype=np.int64)
    noisy = inject_label_noise(labels, 0.9, num_classes=4, seed=0)
    counts = np.bincount(noisy.observed[noisy.flipped], minlength=4)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] - 900) < 90)  # 2700 flips over 3 classes


def test_pair_goes_to_the_next_class_cyclically():
    noisy = inject_label_noise(LABELS, 0.4, kind="pair", seed=2, num_classes=6)
    flipped = noisy.flipped
    assert np.array_equal(noisy.observed[flipped], (LABELS[flipped] + 1) % 6)
    with_space = inject_label_noise(LABELS, 0.4, kind="pair", seed=2, num_classes=8)
    assert with_space.observed[with_space.flipped & (LABELS == 5)].tolist() == [6] * int(
        (with_space.flipped & (LABELS == 5)).sum()
    )


def test_nearest_class_goes_to_the_class_with_the_closest_mean():
    features = _features(LABELS)
    noisy = inject_label_noise(LABELS, 0.5, kind="nearest_class", seed=3, features=features)
    nearest = _nearest_reference(LABELS, features)
    assert nearest == {0: 1, 1: 0, 2: 1, 3: 2, 4: 3, 5: 4}
    for i in np.flatnonzero(noisy.flipped):
        assert noisy.observed[i] == nearest[LABELS[i]]


def test_nearest_class_matches_the_reference_on_random_features():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 9, 300)
    features = rng.normal(size=(300, 5))
    noisy = inject_label_noise(labels, 0.6, kind="nearest_class", seed=0, features=features)
    nearest = _nearest_reference(labels, features)
    assert all(noisy.observed[i] == nearest[labels[i]] for i in np.flatnonzero(noisy.flipped))


def test_nearest_class_needs_features_of_the_right_shape():
    with pytest.raises(ValueError, match="needs features"):
        inject_label_noise(LABELS, 0.2, kind="nearest_class")
    with pytest.raises(ValueError, match=r"shape \(102, f\)"):
        inject_label_noise(LABELS, 0.2, kind="nearest_class", features=np.zeros((5, 2)))
    clean = inject_label_noise(LABELS, 0.0, kind="nearest_class")  # nothing to flip: no features
    assert not clean.flipped.any()


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "0.1", None])
def test_rates_outside_zero_to_one_are_refused(rate):
    with pytest.raises(ValueError, match="rate=.* is invalid: use a number in \\[0, 1\\)"):
        inject_label_noise(LABELS, rate)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        inject_label_noise(np.zeros(10, dtype=int), 0.1)
    assert not inject_label_noise(np.zeros(10, dtype=int), 0.0).flipped.any()
    with pytest.raises(ValueError, match="kind='random' is invalid"):
        inject_label_noise(LABELS, 0.1, kind="random")
    with pytest.raises(ValueError, match="num_classes=3 is invalid: the labels go up to 5"):
        inject_label_noise(LABELS, 0.1, num_classes=3)
    with pytest.raises(ValueError, match="1-d integer array"):
        inject_label_noise(LABELS.astype(float), 0.1)


CLUSTER_LABELS = np.repeat(np.arange(40), np.arange(40) % 7 + 8)  # 40 classes of 8-14 images


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 0.9])
def test_small_cluster_dissolves_whole_classes_close_to_the_rate(rate):
    noisy = inject_label_noise(CLUSTER_LABELS, rate, kind="small_cluster", seed=3)
    assert np.array_equal(noisy.observed != noisy.clean, noisy.flipped)
    dissolved = np.unique(CLUSTER_LABELS[noisy.flipped])
    assert np.array_equal(noisy.flipped, np.isin(CLUSTER_LABELS, dissolved))  # whole classes
    assert abs(noisy.flipped.mean() - rate) <= 14 / len(CLUSTER_LABELS)  # within one class
    assert not np.isin(noisy.observed, dissolved).any()  # moved into the remaining classes only
    assert (noisy.rate, noisy.kind, noisy.seed) == (rate, "small_cluster", 3)


def test_small_cluster_scatters_each_class_in_groups_of_one_to_five():
    noisy = inject_label_noise(CLUSTER_LABELS, 0.5, kind="small_cluster", seed=0)
    clean = noisy.clean
    for label in np.unique(clean[noisy.flipped]):
        targets, sizes = np.unique(noisy.observed[clean == label], return_counts=True)
        assert sizes.max() <= 5  # each group goes to a different class (20 remain)
        assert len(targets) >= np.ceil((clean == label).sum() / 5)
    again = inject_label_noise(CLUSTER_LABELS, 0.5, kind="small_cluster", seed=0)
    assert np.array_equal(noisy.observed, again.observed)
