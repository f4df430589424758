"""faiss kNN: cosine ranking, self exclusion, chunking, a separate reference set, errors."""

import numpy as np
import pytest

from dmlviz.evaluate import knn, l2_normalise


def test_cosine_ranking_with_self_excluded():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)).astype(np.float32) * rng.uniform(0.1, 10, (60, 1))
    indices, sims = knn(x, k=4)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = unit @ unit.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(sims, np.take_along_axis(full, expected, axis=1), atol=1e-6)
    assert indices.dtype == np.int64 and sims.dtype == np.float32


def test_chunks_and_separate_reference():
    rng = np.random.default_rng(1)
    query, ref = rng.standard_normal((30, 4)), rng.standard_normal((50, 4))
    whole = knn(query, ref, k=6)
    chunked = knn(query, ref, k=6, chunk=7)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    # a separate reference set keeps index 0..49 even where a query equals a reference
    same = knn(ref[:5], ref, k=1)
    assert same[0][:, 0].tolist() == [0, 1, 2, 3, 4]


def test_duplicates_keep_the_other_copy():
    x = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    indices, _ = knn(x, k=1)
    assert indices[:, 0].tolist()[:2] == [1, 0]


def test_errors():
    x = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="k=3 exceeds"):
        knn(x, k=3)
    with pytest.raises(ValueError, match="positive"):
        knn(x, k=0)
    with pytest.raises(ValueError, match="dimension"):
        knn(x, np.ones((4, 2)), k=1)
    with pytest.raises(ValueError, match="2-D"):
        l2_normalise(np.ones(3))


def test_exact_knn_orders_by_exact_keys_even_among_near_ties():
    from dmlviz.evaluate import similarity

    rng = np.random.default_rng(5)
    x = np.round(rng.standard_normal((300, 12)), 1).astype(np.float32)  # many exact ties
    x[::3] += 2e-7 * rng.standard_normal((100, 12)).astype(np.float32)  # and near-ties
    indices, sims = knn(x, k=9)
    fixed = similarity.fixed_point(x)
    K = np.rint(fixed @ fixed.T * 2.0 ** (similarity.KEY_BITS - 2 * similarity.COORD_BITS))
    np.fill_diagonal(K, -np.inf)
    for i in range(len(x)):
        expected = np.lexsort((np.arange(len(x)), -K[i]))[:9]  # key descending, then index
        np.testing.assert_array_equal(indices[i], expected)
    np.testing.assert_array_equal(sims, similarity.cosine(np.take_along_axis(K, indices, 1)))
