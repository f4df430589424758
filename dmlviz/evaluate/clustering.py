"""NMI and AMI: the labels against a faiss k-means of the embeddings into one cluster per label, and
the rule that keeps that k-means from costing more than the retrieval search it comes with.

pytorch-metric-learning's ``AccuracyCalculator`` runs faiss's k-means for 20 iterations. Each
iteration assigns every query to the nearest of ``k`` centroids: ``n_q * k * d`` multiply-adds,
where the search costs ``n_q * n_ref * d``. With few samples per class (``n_ref / k`` = 8 in
the benchmarks) its 20 iterations and the final assignment cost 21 / 8 ~ 2.6 searches' worth of
arithmetic (issue 19 measured 44 s of k-means against 3 s of evaluation at 30k images of 3,000
classes).
``clustering`` says what to do:

* ``"full"``: exactly ``AccuracyCalculator``'s k-means (its values to rounding);
* ``"auto"`` (default): the same k-means, with its iterations cut so that it takes no longer
  than the exact search, ``PASS_COST * (iterations + 1) * k <= n_ref``; the full 20 when that
  allows them or when the full k-means is cheap anyway (``CHEAP_MULTIPLY_ADDS``); skipped when
  it allows fewer than ``MIN_ITERATIONS`` (fewer than 12 references per class), and in
  approximate mode (whose search is far cheaper than one k-means pass), unless cheap;
* ``"off"``: no k-means, NMI and AMI None.

What was done is stated in the metrics as ``nmi_method``, and benchmarks/cluster_speed.py measures
the cut k-means' NMI / AMI against the full one's.
"""

from __future__ import annotations

from typing import NamedTuple

import faiss
import numpy as np
from scipy.special import gammaln
from sklearn.metrics import mutual_info_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from dmlviz.evaluate.knn import l2_normalise
from dmlviz.validate import InvalidValue

CLUSTERING = ("auto", "full", "off")
PML_ITERATIONS = 20  # AccuracyCalculator's faiss.Kmeans(niter=20), faiss's default seed 1234
# Cut to 5 iterations, the k-means' AMI fell 0.03 under the full one's on the real-ish set of
# benchmarks/eval_speed.py (10k images, 1,000 classes), cut to 3 0.07: fewer is not worth reporting.
MIN_ITERATIONS = 5
# A full k-means below this many multiply-adds takes well under a second: run it as PML does.
CHEAP_MULTIPLY_ADDS = 2e10
# One k-means pass (assigning n queries to k centroids) takes PASS_COST times the exact search's
# time per multiply-add: measured 1.4 at 30k with 1,000 and 3,000 classes and 1.7 at 100k with
# 12,500, against the symmetric search, on a quiet 2-core machine (2026-12-02, the AMI's expected
# mutual information summed by size, so these are the k-means' passes alone). 2 keeps the cut
# k-means under the search's time.
PASS_COST = 2


class KmeansPlan(NamedTuple):
    """How NMI / AMI are computed: ``iterations`` of k-means (None: not computed) and ``method``,
    the sentence the metrics carry as ``nmi_method``."""

    iterations: int | None
    method: str


def kmeans_plan(
    clustering: str,
    n_queries: int,
    n_references: int,
    n_classes: int,
    dim: int,
    exact: bool = True,
) -> KmeansPlan:
    """The k-means behind NMI / AMI for ``n_queries`` clustered into ``n_classes`` clusters, next
    to a search against ``n_references`` in ``dim`` dimensions (``exact=False``: approximate).

    ``clustering``: one of ``CLUSTERING`` (see the module docstring). Returns a ``KmeansPlan``.
    """
    if clustering not in CLUSTERING:
        raise InvalidValue("clustering", clustering, f"choose one of {', '.join(CLUSTERING)}")
    full = KmeansPlan(PML_ITERATIONS, f"kmeans {PML_ITERATIONS} iterations (PML)")
    if clustering == "off":
        return KmeansPlan(None, "off")
    full_cost = (PML_ITERATIONS + 1) * n_queries * n_classes * dim
    if clustering == "full" or full_cost <= CHEAP_MULTIPLY_ADDS:
        return full
    if not exact:
        return KmeansPlan(
            None,
            f"skipped: a k-means of {n_classes} clusters costs more than the approximate search; "
            "use clustering full",
        )
    # the search's n_q * n_ref * d multiply-adds, at PASS_COST, pay for (iterations + 1) passes
    iterations = min(PML_ITERATIONS, n_references // (PASS_COST * n_classes) - 1)
    if iterations == PML_ITERATIONS:
        return full
    if iterations < MIN_ITERATIONS:
        return KmeansPlan(
            None,
            f"skipped: {n_classes} classes for {n_references} references leave fewer than "
            f"{MIN_ITERATIONS} k-means iterations in the search's time; use clustering full",
        )
    return KmeansPlan(
        iterations,
        f"kmeans {iterations} iterations (PML: {PML_ITERATIONS}; cut to the search's time, "
        "clustering full for PML's)",
    )


def cluster_scores(
    embeddings: np.ndarray, labels: np.ndarray, iterations: int = PML_ITERATIONS
) -> tuple[float, float]:
    """``(NMI, AMI)`` between ``labels`` and a faiss k-means of the L2-normalised embeddings into
    one cluster per distinct label, ``iterations`` long, faiss's seed 1234 (the default 20:
    ``AccuracyCalculator``'s settings)."""
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise InvalidValue("iterations", iterations, "must be a positive integer")
    if iterations < 1:
        raise InvalidValue("iterations", iterations, "must be a positive integer")
    x = l2_normalise(embeddings)
    labels = np.asarray(labels)
    n_clusters = len(np.unique(labels))
    # min_points_per_centroid only silences faiss's "provide more training points" warning
    kmeans = faiss.Kmeans(x.shape[1], n_clusters, niter=int(iterations), min_points_per_centroid=1)
    kmeans.train(x)
    _, assignment = kmeans.index.search(x, 1)
    clusters = assignment[:, 0]
    return (
        float(normalized_mutual_info_score(labels, clusters)),
        adjusted_mutual_info(labels, clusters),
    )


def adjusted_mutual_info(labels: np.ndarray, clusters: np.ndarray) -> float:
    """scikit-learn's ``adjusted_mutual_info_score(labels, clusters)`` (arithmetic mean, its
    special cases and its guards against rounding), with the expected mutual information summed
    by ``expected_mutual_information``: the same value to rounding (~1e-12), in milliseconds where
    scikit-learn's pair-by-pair sum takes 5 s at 3,000 classes and a minute at 12,500."""
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    contingency = contingency_matrix(labels, clusters, sparse=True)
    class_sizes = np.ravel(contingency.sum(axis=1))
    cluster_sizes = np.ravel(contingency.sum(axis=0))
    if len(class_sizes) == len(cluster_sizes) <= 1:
        return 1.0  # neither labelling splits the data: a perfect match
    if len(class_sizes) == 1 or len(cluster_sizes) == 1:
        return 0.0
    mi = mutual_info_score(labels, clusters, contingency=contingency)
    emi = expected_mutual_information(class_sizes, cluster_sizes, len(labels))
    eps = np.finfo(np.float64).eps
    denominator = np.mean([_entropy(class_sizes), _entropy(cluster_sizes)]) - emi
    numerator = mi - emi
    # keep the sign, never divide 0 by 0 (a perfect match, where the expectation is the maximum)
    denominator = min(denominator, -eps) if denominator < 0 else max(denominator, eps)
    numerator = min(numerator, -eps) if numerator < 0 else max(numerator, eps)
    return float(numerator / denominator)


def expected_mutual_information(
    class_sizes: np.ndarray, cluster_sizes: np.ndarray, n: int, chunk: int = 2**20
) -> float:
    """The mutual information two random labellings with these class and cluster sizes share on
    average (Vinh, Epps and Bailey 2010), summed as scikit-learn's
    ``expected_mutual_information`` sums it over every (class, cluster) pair and every possible
    overlap ``n_ij``. A pair's terms depend on its two sizes only, so each distinct pair of sizes
    is summed once and weighted by how many pairs have it: with 8 images per class, 1 distinct
    class size against a few dozen cluster sizes instead of ``k^2`` pairs. ``chunk``: overlap
    terms per pass (bounds the memory)."""
    if len(class_sizes) <= 1 or len(cluster_sizes) <= 1:
        return 0.0  # a labelling with zero entropy shares nothing
    a, a_count = np.unique(np.asarray(class_sizes, dtype=np.int64), return_counts=True)
    b, b_count = np.unique(np.asarray(cluster_sizes, dtype=np.int64), return_counts=True)
    a, b = (v.ravel() for v in np.meshgrid(a, b, indexing="ij"))
    weight = np.outer(a_count, b_count).ravel().astype(np.float64)
    start = np.maximum(1, a + b - n)
    length = np.maximum(0, np.minimum(a, b) - start + 1)
    # the log-factorials of the hypergeometric probability that do not depend on n_ij
    constant = gammaln(a + 1) + gammaln(b + 1) + gammaln(n - a + 1) + gammaln(n - b + 1)
    constant -= gammaln(n + 1)
    emi = 0.0
    ends = np.cumsum(length)
    first = 0
    while first < len(a):
        last = int(np.searchsorted(ends, ends[first] - length[first] + chunk, side="right"))
        last = max(last, first + 1)
        pairs = np.arange(first, last)
        pair = np.repeat(pairs, length[pairs])
        offset = np.arange(len(pair)) - np.repeat(
            np.cumsum(length[pairs]) - length[pairs], length[pairs]
        )
        nij = (start[pair] + offset).astype(np.float64)
        ai, bj = a[pair], b[pair]
        log_ratio = np.log(n) + np.log(nij) - np.log(ai) - np.log(bj)
        log_p = constant[pair] - gammaln(nij + 1) - gammaln(ai - nij + 1) - gammaln(bj - nij + 1)
        log_p -= gammaln(n - ai - bj + nij + 1)
        emi += float(np.sum(weight[pair] * (nij / n) * log_ratio * np.exp(log_p)))
        first = last
    return emi


def _entropy(sizes: np.ndarray) -> float:
    """Shannon entropy (nats) of a labelling with these group sizes, as scikit-learn computes it."""
    counts = np.asarray(sizes, dtype=np.float64)
    if len(counts) <= 1:
        return 0.0
    total = counts.sum()
    return float(-np.sum((counts / total) * (np.log(counts) - np.log(total))))
