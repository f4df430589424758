"""Retrieval metrics: a hand-worked example, a slow reference, AccuracyCalculator, chunking, errors."""

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch

from dmlviz.evaluate import l2_normalise, per_class_means, retrieval_metrics
from dmlviz.evaluate.knn import _projection
from dmlviz.evaluate.retrieval import PER_QUERY_COLUMNS


def on_circle(degrees):
    """Unit 2-D vectors at the given angles: cosine similarity falls with the angle between them."""
    radians = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def clustered(n=600, d=16, classes=40, spread=0.7, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, d)).astype(np.float32)
    x = centres[labels] + spread * rng.standard_normal((n, d)).astype(np.float32)
    return x, labels


def slow_reference(query, query_labels, ref, ref_labels, exclude_self):
    """Per-query metrics by sorting every reference for every query (the obviously correct way)."""
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    rows = []
    for i in range(len(q)):
        sims = (r.astype(np.float64) @ q[i].astype(np.float64)).astype(np.float32)
        order = np.argsort(-sims, kind="stable")
        if exclude_self:
            order = order[order != i]
        relevant = ref_labels[order] == query_labels[i]
        R = int(relevant.sum())
        if R == 0:
            rows.append(dict(r=0, ap=np.nan, apr=np.nan, rp=np.nan, first=np.nan, order=order))
            continue
        ranks = np.flatnonzero(relevant) + 1
        hits = np.arange(1, R + 1)
        rows.append(
            dict(
                r=R,
                ap=np.mean(hits / ranks),
                apr=np.sum((hits / ranks)[ranks <= R]) / R,
                rp=np.sum(ranks <= R) / R,
                first=ranks[0],
                order=order,
            )
        )
    return rows


def test_hand_worked_gallery_example():
    # gallery at 0, 20, 40, 90, 180 degrees with labels A B A A C
    gallery = on_circle([0, 20, 40, 90, 180])
    gallery_labels = np.array([0, 1, 0, 0, 2])
    # queries at 5 (A), 25 (B), 170 (A) and 100 degrees; label 3 is nowhere in the gallery
    queries = on_circle([5, 25, 170, 100])
    query_labels = np.array([0, 1, 0, 3])
    result = retrieval_metrics(
        queries, query_labels, gallery, gallery_labels, ks=(1, 2), top_k=3, clustering=False
    )
    # query 0 ranks g0(A) g1(B) g2(A) g3(A) g4: relevant at 1, 3, 4
    # query 1 ranks g1(B) first: its one relevant at 1
    # query 2 ranks g4(C) g3(A) g2(A) g1(B) g0(A): relevant at 2, 3, 5
    ap = [
        Fraction(1, 3) * (1 + Fraction(2, 3) + Fraction(3, 4)),
        1,
        Fraction(1, 3) * (Fraction(1, 2) + Fraction(2, 3) + Fraction(3, 5)),
    ]
    ap_r = [
        Fraction(1, 3) * (1 + Fraction(2, 3)),
        1,
        Fraction(1, 3) * (Fraction(1, 2) + Fraction(2, 3)),
    ]
    r_precision = [Fraction(2, 3), 1, Fraction(2, 3)]
    table = result.per_query
    assert list(table.columns) == list(PER_QUERY_COLUMNS)
    assert table["r"].tolist() == [3, 1, 3, 0]
    np.testing.assert_allclose(table["ap"][:3], [float(v) for v in ap])
    np.testing.assert_allclose(table["ap@r"][:3], [float(v) for v in ap_r])
    np.testing.assert_allclose(table["r_precision"][:3], [float(v) for v in r_precision])
    assert table["first_correct_rank"][:3].tolist() == [1, 1, 2]
    assert table.iloc[3][["ap", "ap@r", "r_precision", "first_correct_rank"]].isna().all()

    m = result.metrics
    assert m["num_queries"] == 3 and m["num_lone_queries"] == 1
    assert m["precision@1"] == pytest.approx(2 / 3)
    assert m["recall@1"] == pytest.approx(2 / 3)
    assert m["recall@2"] == pytest.approx(1.0)
    assert m["r_precision"] == pytest.approx(float(sum(r_precision) / 3))
    assert m["map@r"] == pytest.approx(float(sum(ap_r) / 3))
    assert m["map"] == pytest.approx(float(sum(ap) / 3))
    assert m["nmi"] is None and m["ami"] is None
    assert result.neighbours.tolist()[0] == [0, 1, 2]
    assert result.neighbours.tolist()[2] == [4, 3, 2]
    np.testing.assert_allclose(result.similarities[0], np.cos(np.deg2rad([5, 15, 35])), atol=1e-6)


@pytest.mark.parametrize("gallery", [False, True])
def test_matches_slow_reference(gallery):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((150, 8)).astype(np.float32)
    labels = rng.integers(0, 12, 150)
    if gallery:
        ref, ref_labels = rng.standard_normal((90, 8)).astype(np.float32), rng.integers(0, 12, 90)
        result = retrieval_metrics(x, labels, ref, ref_labels, top_k=7, clustering=False)
    else:
        ref, ref_labels = x, labels
        result = retrieval_metrics(x, labels, top_k=7, clustering=False)
    expected = slow_reference(x, labels, ref, ref_labels, exclude_self=not gallery)
    table = result.per_query
    np.testing.assert_array_equal(table["r"], [e["r"] for e in expected])
    for ours, theirs in (
        ("ap", "ap"),
        ("ap@r", "apr"),
        ("r_precision", "rp"),
        ("first_correct_rank", "first"),
    ):
        np.testing.assert_allclose(table[ours], [e[theirs] for e in expected], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result.neighbours, [e["order"][:7] for e in expected])
    scored = [e for e in expected if e["r"] > 0]
    for k in (1, 2, 4, 8):
        assert result.metrics[f"recall@{k}"] == pytest.approx(
            np.mean([e["first"] <= k for e in scored])
        )
    assert result.metrics["map"] == pytest.approx(np.mean([e["ap"] for e in scored]))


def accuracy_calculator(query, query_labels, ref=None, ref_labels=None, include=None):
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    include = include or (
        "precision_at_1",
        "r_precision",
        "mean_average_precision_at_r",
        "NMI",
        "AMI",
    )
    calculator = AccuracyCalculator(include=include, k="max_bin_count", device=torch.device("cpu"))
    normalise = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    if ref is None:
        return calculator.get_accuracy(normalise(query), query_labels)
    return calculator.get_accuracy(normalise(query), query_labels, normalise(ref), ref_labels)


PAIRS = (
    ("precision@1", "precision_at_1"),
    ("r_precision", "r_precision"),
    ("map@r", "mean_average_precision_at_r"),
    ("nmi", "NMI"),
    ("ami", "AMI"),
)


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_equals_accuracy_calculator(kind):
    if kind == "random":
        rng = np.random.default_rng(2)
        x, labels = rng.standard_normal((500, 16)).astype(np.float32), rng.integers(0, 30, 500)
    else:
        x, labels = clustered(seed=3)
    labels[:3] = [
        1000,
        1001,
        1002,
    ]  # lone queries: AccuracyCalculator leaves them out of kNN metrics
    ours = retrieval_metrics(x, labels).metrics
    theirs = accuracy_calculator(x, labels)
    for key, name in PAIRS:
        assert abs(ours[key] - theirs[name]) < 1e-6, (key, ours[key], theirs[name])
    assert ours["num_lone_queries"] == 3


def test_equals_accuracy_calculator_with_gallery():
    x, labels = clustered(n=700, seed=4)
    query, query_labels, ref, ref_labels = x[:200], labels[:200], x[200:], labels[200:]
    ours = retrieval_metrics(query, query_labels, ref, ref_labels).metrics
    theirs = accuracy_calculator(query, query_labels, ref, ref_labels)
    for key, name in PAIRS:
        assert abs(ours[key] - theirs[name]) < 1e-6, (key, ours[key], theirs[name])


def test_map_equals_accuracy_calculator_full_ranking():
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    x, labels = clustered(n=300, spread=1.2, seed=5)
    calculator = AccuracyCalculator(
        include=("mean_average_precision",), k=None, device=torch.device("cpu")
    )
    normalised = x / np.linalg.norm(x, axis=1, keepdims=True)
    theirs = calculator.get_accuracy(normalised, labels)["mean_average_precision"]
    assert retrieval_metrics(x, labels, clustering=False).metrics["map"] == pytest.approx(
        theirs, abs=1e-6
    )


def test_self_is_excluded_even_with_duplicates():
    x = on_circle([0, 0, 30, 60, 90, 120])  # rows 0 and 1 are identical
    labels = np.array([0, 0, 1, 1, 0, 1])
    result = retrieval_metrics(x, labels, top_k=5, clustering=False)
    for i, row in enumerate(result.neighbours):
        assert i not in row
        assert sorted(row) == sorted(set(range(6)) - {i})
    assert result.neighbours[0, 0] == 1 and result.neighbours[1, 0] == 0
    assert result.similarities[0, 0] == pytest.approx(1.0)
    assert result.per_query["first_correct_rank"][:2].tolist() == [1, 1]


def test_chunking_does_not_change_anything():
    x, labels = clustered(n=250, spread=1.0, seed=6)
    whole = retrieval_metrics(x, labels, clustering=False)
    for chunk in (1, 7, 64):
        part = retrieval_metrics(x, labels, clustering=False, chunk=chunk)
        pd.testing.assert_frame_equal(part.per_query, whole.per_query)
        np.testing.assert_array_equal(part.neighbours, whole.neighbours)
        # exact keys: a one-row block (a matrix-vector product) gives the very same similarities
        np.testing.assert_array_equal(part.similarities, whole.similarities)
        assert part.metrics == whole.metrics


def test_approximate_search_agrees_on_small_data():
    x, labels = clustered(n=400, seed=7)
    exact = retrieval_metrics(x, labels, clustering=False).metrics
    approximate = retrieval_metrics(x, labels, clustering=False, exact=False)
    for key in ("precision@1", "r_precision", "map@r", "recall@4"):
        assert approximate.metrics[key] == pytest.approx(exact[key], abs=0.005)
    assert approximate.metrics["map"] is None and approximate.metrics["exact"] is False
    assert approximate.per_query["ap"].isna().all()


@pytest.mark.parametrize("rank", [16, None])
def test_approximate_search_reranks_exactly(rank):
    # rank 16 of 128 dimensions: the graph holds a 32-d projection; full rank: the vectors
    x, labels = clustered(n=600, d=16 if rank else 128, classes=30, spread=1.5, seed=8)
    if rank:
        x = x @ np.random.default_rng(9).standard_normal((16, 128)).astype(np.float32)
    assert (_projection(l2_normalise(x)) is None) == (rank is None)
    exact = retrieval_metrics(x, labels, clustering=False).metrics
    approximate = retrieval_metrics(x, labels, clustering=False, exact=False, top_k=10)
    for key in ("precision@1", "r_precision", "map@r", "recall@1", "recall@8"):
        assert approximate.metrics[key] == pytest.approx(exact[key], abs=0.005), key
    unit = l2_normalise(x)
    rows = np.arange(len(x))[:, None]
    found = unit[approximate.neighbours]
    np.testing.assert_allclose(
        approximate.similarities, np.sum(unit[rows] * found, axis=2), atol=1e-5
    )
    assert (approximate.neighbours != rows).all()


def test_per_class_means():
    gallery = on_circle([0, 20, 40, 90, 180])
    result = retrieval_metrics(
        on_circle([5, 25, 170, 100]),
        np.array([0, 1, 0, 3]),
        gallery,
        np.array([0, 1, 0, 0, 2]),
        clustering=False,
    )
    table = result.per_class()
    pd.testing.assert_frame_equal(table, per_class_means(result.per_query))
    assert table["label"].tolist() == [0, 1]  # worst MAP@R first; lone label 3 left out
    assert table["queries"].tolist() == [2, 1]
    assert table["precision@1"].tolist() == [0.5, 1.0]


def test_top_k_is_capped_and_string_labels_work():
    x = on_circle([0, 10, 50])
    result = retrieval_metrics(x, np.array(["a", "a", "b"]), top_k=20, clustering=False)
    assert result.neighbours.shape == (3, 2)
    assert result.metrics["num_queries"] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(ks=(0, 1)), "ks"),
        (dict(top_k=0), "top_k"),
        (dict(chunk=0), "chunk"),
        (dict(ref_emb=np.ones((3, 2), np.float32)), "together"),
        (dict(ref_emb=np.ones((3, 5), np.float32), ref_labels=np.zeros(3)), "dimensions"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    x = on_circle([0, 10, 50, 80])
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(x, np.array([0, 0, 1, 1]), **kwargs)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="query_labels"):
        retrieval_metrics(on_circle([0, 10]), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 1.0], [0.0, 1.0]]), np.array([0, 0]))
    with pytest.raises(ValueError, match="at least one"):
        retrieval_metrics(on_circle([0]), np.array([0]))
