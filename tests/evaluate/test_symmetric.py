"""Self-retrieval on the symmetric similarity matrix: against a full-matrix argsort and the row-block
scan, with ties, duplicates, lone queries, one big class and tiles that cut classes."""

import numpy as np
import pandas as pd
import pytest

from dmlviz.evaluate import retrieval, retrieval_metrics, similarity, symmetric, ties
from dmlviz.evaluate.symmetric import Tiling, symmetric_ranking


def exact_vectors(n, seed, d=8):
    """Rows with four entries +-1 in d: normalised they hold +-0.5, so every similarity is a
    multiple of 1/4 computed without rounding, by any BLAS in any order (ties are exact ties)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, d), dtype=np.float32)
    for row in x:
        row[rng.choice(d, 4, replace=False)] = rng.choice([-1.0, 1.0], 4)
    x[1] = x[0]  # a duplicate pair
    return x / 2


def awkward_labels(n, seed):
    """One class of a third of the rows, small classes, and three lone rows."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 12, n)
    labels[rng.random(n) < 1 / 3] = 0
    labels[[2, 5, 9]] = [100, 101, 102]
    return labels


def slow_ranking(x, labels, top_k):
    """The full n x n matrix of similarity keys, argsorted row by row: neighbours by (key desc,
    index), and each relevant reference's key with the irrelevant references strictly above and
    tied with it, by query then key descending (self left out)."""
    fixed = similarity.fixed_point(x)
    K = np.rint(fixed @ fixed.T * 2.0 ** (similarity.KEY_BITS - 2 * similarity.COORD_BITS))
    n = len(x)
    neighbours, rows, keys, above, tied = [], [], [], [], []
    for i in range(n):
        others = np.flatnonzero(np.arange(n) != i)
        neighbours.append(others[np.lexsort((others, -K[i, others]))][:top_k])
        relevant = others[labels[others] == labels[i]]
        irrelevant = others[labels[others] != labels[i]]
        for key in sorted(K[i, relevant], reverse=True):
            rows.append(i)
            keys.append(key)
            above.append(int((K[i, irrelevant] > key).sum()))
            tied.append(int((K[i, irrelevant] == key).sum()))
    return np.array(neighbours), ties.Relevant(*map(np.array, (rows, keys, above, tied)))


def assert_same_relevant(found, expected):
    for name in ("row", "key", "above", "tied"):
        np.testing.assert_array_equal(getattr(found, name), getattr(expected, name), err_msg=name)


@pytest.mark.parametrize("side", [2, 3, 7, 64])
def test_matches_full_matrix_argsort(side):
    x, labels = exact_vectors(90, seed=side), awkward_labels(90, seed=side)
    codes = np.unique(labels, return_inverse=True)[1]
    neighbours, sims, found = symmetric_ranking(similarity.fixed_point(x), codes, 6, side)
    expected_neighbours, expected = slow_ranking(x, labels, top_k=6)
    np.testing.assert_array_equal(neighbours, expected_neighbours)
    np.testing.assert_array_equal(sims, np.take_along_axis(x @ x.T, neighbours, axis=1))
    assert_same_relevant(found, expected)
    assert (found.tied > 0).any()  # the data holds ties between relevant and irrelevant ones


@pytest.mark.parametrize("side", [3, 16])
def test_near_ties_within_float32_error_are_settled_exactly(side):
    # multiples of 1/4 moved by about 1e-7: most pairs of similarities differ by less than the
    # float32 error of the tiles above the diagonal, so the exact keys must decide
    x = exact_vectors(120, seed=side, d=16)
    x += 3e-7 * np.random.default_rng(side).standard_normal(x.shape).astype(np.float32)
    x[7] = x[3]
    labels = awkward_labels(120, seed=side + 1)
    codes = np.unique(labels, return_inverse=True)[1]
    neighbours, sims, found = symmetric_ranking(similarity.fixed_point(x), codes, 5, side)
    expected_neighbours, expected = slow_ranking(x, labels, top_k=5)
    np.testing.assert_array_equal(neighbours, expected_neighbours)
    assert_same_relevant(found, expected)


@pytest.mark.parametrize("chunk", [5, 16, None])
def test_equals_row_block_scan(monkeypatch, chunk):
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((30, 16)).astype(np.float32)
    labels = awkward_labels(400, seed=4) % 30
    x = centres[labels] + rng.standard_normal((400, 16)).astype(np.float32)
    x[10] = x[11]
    calls = []
    monkeypatch.setattr(
        symmetric, "symmetric_ranking", lambda *a: calls.append(a) or symmetric_ranking(*a)
    )
    ours = retrieval_metrics(x, labels, top_k=9, clustering=False, chunk=chunk)
    assert len(calls) == 1  # self-retrieval took the symmetric path
    monkeypatch.setattr(retrieval, "SYMMETRIC", False)
    rows = retrieval_metrics(x, labels, top_k=9, clustering=False)
    # the same keys on both paths: identical tables, not merely close ones
    pd.testing.assert_frame_equal(ours.per_query, rows.per_query, check_exact=True)
    np.testing.assert_array_equal(ours.neighbours, rows.neighbours)
    np.testing.assert_array_equal(ours.similarities, rows.similarities)
    assert ours.metrics == rows.metrics


def test_tiling_cuts_only_big_classes_and_bands_them():
    # classes of 3 (never cut by tiles of side 8) and one of 20 (cut)
    codes = np.repeat(np.arange(9), [3, 3, 3, 20, 3, 3, 3, 3, 3])
    tiling = Tiling.of(codes, side=8)
    inner = tiling.bounds[1:-1]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    big = (inner > 9) & (inner < 29)
    assert set(inner[~big]) <= set(starts)  # small classes whole
    assert big.any()
    blocks = np.searchsorted(tiling.bounds, [9, 28], side="right") - 1  # the big class's blocks
    spanned = {(i, j) for i in range(blocks[0], blocks[1] + 1) for j in range(i, blocks[1] + 1)}
    assert spanned <= set(tiling.band)
    assert not tiling.closed[blocks[0] : blocks[1] + 1].any()
    assert tiling.closed.sum() == len(tiling.closed) - (blocks[1] - blocks[0] + 1)


def test_matmul_flops_of_a_closed_tiling():
    codes = np.repeat(np.arange(100), 4)
    tiling = Tiling.of(codes, side=64)
    size = np.diff(tiling.bounds)
    assert tiling.band == [] and tiling.closed.all()
    assert tiling.matmul_flops(d=10) == 10 * (400**2 + int((size**2).sum()))


def test_packed_values_order_by_owner_then_key():
    keys = np.array([similarity.FLOOR, -(2.0**30), -1.0, 0.0, 1.0, 2.0**30, -similarity.FLOOR])
    values = similarity.packed(np.zeros(len(keys), np.int64), keys)
    assert (np.diff(values) > 0).all()
    assert similarity.packed(np.array([1]), np.array([similarity.FLOOR])) > values.max()
    np.testing.assert_array_equal(similarity.unpacked(values), keys)
