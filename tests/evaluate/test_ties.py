"""Ties at their expected value: every order of a tied group equally likely (McSherry and Najork).

A slow reference averages each metric over every order of the tied groups, enumerated one by one;
collapsed embeddings score chance; the similarity keys are the same on every CPU kernel, thread
count and path.
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmlviz.evaluate import retrieval, retrieval_metrics, similarity, ties

KS = (1, 2, 3, 5)


def ternary(n, d, seed):
    """Rows of -1/0/1 entries: few distinct similarities, so many ties of every kind."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, (n, d)).astype(np.float32)
    x[np.abs(x).sum(axis=1) == 0, 0] = 1
    return x


def enumerated(sims, relevant):
    """Every metric averaged over every order of the tied groups of one query's references
    (``sims`` exact, ``relevant`` a boolean mask)."""
    groups = [np.flatnonzero(sims == value) for value in sorted(set(sims), reverse=True)]
    R = int(relevant.sum())
    totals = dict(apr=0.0, rp=0.0, ap=0.0, p1=0.0, first=0.0, **{f"r{k}": 0.0 for k in KS})
    orders = list(itertools.product(*(itertools.permutations(group) for group in groups)))
    for order in orders:
        ranking = relevant[np.concatenate(order)]
        ranks = np.flatnonzero(ranking) + 1
        precision = np.arange(1, R + 1) / ranks
        totals["apr"] += precision[ranks <= R].sum() / R
        totals["rp"] += (ranks <= R).sum() / R
        totals["ap"] += precision.mean()
        totals["p1"] += ranks[0] == 1
        totals["first"] += ranks[0]
        for k in KS:
            totals[f"r{k}"] += ranks[0] <= k
    return {name: value / len(orders) for name, value in totals.items()}


@pytest.mark.parametrize("seed", range(6))
def test_every_metric_is_its_mean_over_the_orders_of_tied_groups(seed):
    x = ternary(8, 3, seed)
    labels = np.random.default_rng(seed + 100).integers(0, 3, 8)
    result = retrieval_metrics(x, labels, ks=KS, top_k=7, clustering="off")
    fixed = similarity.fixed_point(x)
    exact = fixed @ fixed.T  # integers: exact, so equal values are the ties
    table = result.per_query
    checked = 0
    for i in range(len(x)):
        others = np.flatnonzero(np.arange(len(x)) != i)
        relevant = labels[others] == labels[i]
        if not relevant.any():
            assert np.isnan(table["ap@r"][i])
            continue
        expected = enumerated(exact[i, others], relevant)
        row = table.iloc[i]
        for ours, theirs in (("ap@r", "apr"), ("r_precision", "rp"), ("ap", "ap"),
                             ("precision@1", "p1"), ("first_correct_rank", "first")):  # fmt: skip
            assert row[ours] == pytest.approx(expected[theirs], abs=1e-12), (i, ours)
        checked += 1
    assert checked >= 5
    scored = table["r"] > 0
    for k in KS:
        chances = [
            enumerated(exact[i, np.arange(len(x)) != i], (labels == labels[i])[np.arange(8) != i])[
                f"r{k}"
            ]
            for i in np.flatnonzero(scored)
        ]
        assert result.metrics[f"recall@{k}"] == pytest.approx(np.mean(chances), abs=1e-12)


def test_a_gallery_ranking_counts_ties_the_same_way():
    query, ref = ternary(5, 3, 7), ternary(7, 3, 8)
    q_labels, r_labels = np.array([0, 1, 2, 0, 1]), np.array([0, 0, 1, 1, 2, 2, 0])
    table = retrieval_metrics(query, q_labels, ref, r_labels, top_k=7, clustering="off").per_query
    fixed_q, fixed_r = similarity.fixed_point(query), similarity.fixed_point(ref)
    for i in range(len(query)):
        expected = enumerated(fixed_r @ fixed_q[i], r_labels == q_labels[i])
        assert table["ap@r"][i] == pytest.approx(expected["apr"], abs=1e-12)
        assert table["ap"][i] == pytest.approx(expected["ap"], abs=1e-12)


@pytest.mark.parametrize("symmetric", [True, False])
def test_identical_embeddings_score_chance_not_perfection(monkeypatch, symmetric):
    monkeypatch.setattr(retrieval, "SYMMETRIC", symmetric)
    labels = np.repeat(np.arange(5), [10, 20, 30, 40, 50])
    x = np.ones((len(labels), 8), dtype=np.float32)  # a collapsed model
    m = retrieval_metrics(x, labels, clustering="off").metrics
    N = len(labels) - 1  # each query ranks the N others at random
    R = np.bincount(labels)[labels] - 1
    share = R / N
    assert m["precision@1"] == pytest.approx(share.mean(), abs=1e-12)
    assert m["r_precision"] == pytest.approx(share.mean(), abs=1e-12)
    # a random ranking's expected AP over its first L places: (1/N) [H_L (1 - q) + L q] with
    # q = (R - 1) / (N - 1), from P(relevant at t) = R / N and the relevant ones before it
    q = (R - 1) / (N - 1)
    harmonic = lambda L: np.array([np.sum(1 / np.arange(1, v + 1)) for v in L])  # noqa: E731
    expected_ap = (harmonic(np.full_like(R, N)) * (1 - q) + N * q) / N
    assert m["map"] == pytest.approx(expected_ap.mean(), abs=1e-9)
    assert m["map@r"] == pytest.approx(np.mean((harmonic(R) * (1 - q) + R * q) / N), abs=1e-9)
    assert m["map@r"] < 0.25  # with index tie-breaking (pytorch-metric-learning) it is 1.0


def test_duplicate_rows_tie_exactly_and_keep_index_order_in_the_lists():
    x = ternary(12, 4, 3)
    x[5] = x[2]
    x[9] = x[2] * 3  # the same direction, another length
    result = retrieval_metrics(x, np.arange(12) % 3, top_k=11, clustering="off")
    row = list(result.neighbours[2])
    assert row[:2] == [5, 9] and result.similarities[2, 0] == result.similarities[2, 1] == 1.0


def test_fixed_point_keys_are_exact_and_close_to_the_cosine():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 512)).astype(np.float32)
    fixed = similarity.fixed_point(x)
    assert np.array_equal(fixed, np.rint(fixed)) and np.abs(fixed).max() <= 2**26
    # any summation order gives the same integers: a product in another order agrees bit for bit
    reversed_order = similarity.keys(fixed[:, ::-1].copy(), fixed[:, ::-1].copy())
    np.testing.assert_array_equal(similarity.keys(fixed, fixed), reversed_order)
    unit = x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    cosine = similarity.cosine(similarity.keys(fixed, fixed))
    np.testing.assert_allclose(cosine, unit @ unit.T, rtol=0, atol=1e-6)


PATHS_SCRIPT = """
import json, sys
import numpy as np
from threadpoolctl import threadpool_info
from dmlviz.evaluate import retrieval, retrieval_metrics
tables = {}
for n, d, classes in ((400, 16, 30), (1500, 64, 40)):
    rng, draw = np.random.default_rng(3), np.random.default_rng(4)
    centres = rng.standard_normal((classes, d)).astype(np.float32)
    labels = draw.integers(1, 12, n)  # one class of a third of the rows, and lone rows
    labels[draw.random(n) < 1 / 3] = 0
    labels[[2, 5, 9]] = [100, 101, 102]
    labels %= classes
    # at n = 400 the set on which the float32 paths disagreed under AVX2 kernels
    x = centres[labels] + rng.standard_normal((n, d)).astype(np.float32)
    x[10] = x[11]
    if n > 400:
        x[100:140] = np.round(x[100:140], 1)  # coarse values: near-ties and exact ties
    for name, symmetric, chunk in (("symmetric", True, None), ("tiles", True, 16),
                                   ("rows", False, None), ("rows", False, 37)):
        retrieval.SYMMETRIC = symmetric
        result = retrieval_metrics(x, labels, top_k=9, clustering="off", chunk=chunk)
        tables[f"{n} {name} {chunk}"] = [result.per_query.to_json(double_precision=15),
                                         result.neighbours.tolist(), result.similarities.tolist()]
    gallery = retrieval_metrics(x[:100], labels[:100], x[100:], labels[100:], clustering="off")
    tables[f"{n} gallery"] = [gallery.per_query.to_json(double_precision=15),
                              gallery.neighbours.tolist(), gallery.similarities.tolist()]
kernels = sorted({i.get("architecture") or "" for i in threadpool_info() if i["internal_api"] == "openblas"})
json.dump({"kernels": kernels, "tables": tables}, sys.stdout)
"""


def run_paths(env_changes):
    env = {**os.environ, **env_changes}
    root = Path(retrieval.__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", PATHS_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_every_path_kernel_and_thread_count_gives_the_same_tables():
    default = run_paths({"OMP_NUM_THREADS": "2"})
    haswell = run_paths({"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "2"})
    one_thread = run_paths({"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1"})
    assert "Haswell" in haswell["kernels"]
    for runs in (default, haswell, one_thread):
        for name, table in runs["tables"].items():
            if "gallery" not in name:
                assert table == runs["tables"][name.split()[0] + " symmetric None"], name
    assert haswell["tables"] == default["tables"] == one_thread["tables"]


def test_relevant_counts_from_lists():
    # one query: relevant keys 5, 5, 3; irrelevant 7, 5, 3, 3, 1
    found = ties.count_irrelevant(
        2, np.array([0, 0, 0]), np.array([5.0, 3.0, 5.0]), np.zeros(5, np.int64),
        np.array([7.0, 5.0, 3.0, 3.0, 1.0]),
    )  # fmt: skip
    assert found.row.tolist() == [0, 0, 0] and found.key.tolist() == [5, 5, 3]
    assert found.above.tolist() == [1, 1, 2] and found.tied.tolist() == [1, 1, 2]


def test_a_gallery_without_any_relevant_reference_scores_nothing():
    x = ternary(6, 3, 1)
    result = retrieval_metrics(x[:3], [0, 1, 2], x[3:], [5, 6, 7], top_k=2, clustering="off")
    assert result.metrics["map@r"] is None and result.metrics["num_lone_queries"] == 3
    assert result.per_query["first_correct_rank"].isna().all()
