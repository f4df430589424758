"""UMAP (faiss kNN graph) and PCA maps, and their trustworthiness, on tiny data."""

import numpy as np
import pytest

from dmlviz.project import pca_projection, trustworthiness_score, umap_projection


def blobs(seed=0, n_per_class=12, classes=3, d=6):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.standard_normal((classes, d)) * 4
    return (centres[labels] + rng.standard_normal((len(labels), d))).astype(np.float32), labels


def test_umap_is_seeded_and_separates_blobs():
    x, labels = blobs()
    a = umap_projection(x, n_neighbors=5, seed=3)
    b = umap_projection(x, n_neighbors=5, seed=3)
    assert a.shape == (36, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    centres = np.stack([a[labels == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(a[labels == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread


def test_umap_checks_its_arguments():
    x, _ = blobs()
    with pytest.raises(ValueError, match="n_neighbors"):
        umap_projection(x, n_neighbors=1)
    with pytest.raises(ValueError, match="min_dist"):
        umap_projection(x, min_dist=2.0)
    with pytest.raises(ValueError, match="at least 4"):
        umap_projection(x[:3])


def test_pca_is_the_top_two_components():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 5)) * [5.0, 3.0, 0.1, 0.1, 0.1] + [0.0, 0.0, 20.0, 0.0, 0.0]
    coords = pca_projection(x)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    centred = unit - unit.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    np.testing.assert_allclose(np.abs(coords), np.abs(expected), atol=1e-5)
    np.testing.assert_array_equal(coords, pca_projection(x))
    assert pca_projection(x[:, :1]).shape == (50, 2)


def test_trustworthiness_of_good_and_random_maps():
    x, _ = blobs(n_per_class=30)
    good = trustworthiness_score(x, pca_projection(x), n_neighbors=5)
    noise = np.random.default_rng(0).standard_normal((len(x), 2))
    bad = trustworthiness_score(x, noise, n_neighbors=5)
    assert good["trustworthiness"] > 0.85 > bad["trustworthiness"]
    assert good["points"] == 90 and good["n_neighbors"] == 5
    sub = trustworthiness_score(x, pca_projection(x), max_points=20)
    assert sub["points"] == 20 and sub["n_neighbors"] == 9
    assert trustworthiness_score(x[:2], np.zeros((2, 2)))["trustworthiness"] is None


def test_pca_of_many_samples_fits_its_axes_on_a_sample():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 5)) * [5.0, 3.0, 0.5, 0.2, 0.1]
    sampled = pca_projection(x, fit_rows=100)
    exact = pca_projection(x, fit_rows=1000)
    assert sampled.shape == (300, 2) and sampled.dtype == np.float32
    assert sampled.var(axis=0).sum() / exact.var(axis=0).sum() > 0.98  # nearly the same plane
    np.testing.assert_array_equal(sampled, pca_projection(x, fit_rows=100))  # seeded


def test_large_sets_take_their_neighbours_from_an_inverted_file(monkeypatch):
    from dmlviz.evaluate.knn import l2_normalise
    from dmlviz.project import neighbours

    x = l2_normalise(blobs(n_per_class=100, classes=8, d=16)[0])
    exact, _ = neighbours.map_neighbours(x, 6)
    monkeypatch.setattr(neighbours, "EXACT_POINTS", 100)
    seen = []
    found, dists = neighbours.map_neighbours(x, 6, progress=lambda *step: seen.append(step))
    assert found.shape == dists.shape == (800, 6) and dists.dtype == np.float32
    np.testing.assert_array_equal(found[:, 0], np.arange(800))  # itself first, at distance 0
    assert (dists[:, 0] == 0).all() and (np.diff(dists, axis=1) >= 0).all()
    assert np.mean(found[:, 1:] == exact[:, 1:]) > 0.9  # an approximate search, but a close one
    np.testing.assert_allclose(dists[:, 1:], 1 - (x[:, None] * x[found[:, 1:]]).sum(-1), atol=1e-5)
    assert seen[-1] == (800, 800)
    np.testing.assert_array_equal(found, neighbours.map_neighbours(x, 6)[0])  # repeatable


def test_large_sets_are_laid_out_in_fewer_epochs(monkeypatch):
    from dmlviz.project import maps

    monkeypatch.setattr(maps, "LARGE_SET", 30)
    seen = []
    umap_projection(blobs()[0], n_neighbors=5, progress=lambda *step: seen.append(step))
    assert seen[-1] == ("layout", maps.LARGE_SET_EPOCHS, maps.LARGE_SET_EPOCHS)
