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
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from dmlviz.evaluate.knn import l2_normalise
from dmlviz.validate import InvalidValue

CLUSTERING = ("auto", "full", "off")
PML_ITERATIONS = 20  # AccuracyCalculator's faiss.Kmeans(niter=20), faiss's default seed 1234
# Cut to 5 iterations, the k-means' AMI fell 0.03 under the full one's on the real-ish set of
# benchmarks/eval_speed.py (10k images, 1,000 classes), cut to 3 0.07: fewer is not worth reporting.
MIN_ITERATIONS = 5
# A full k-means below this many multiply-adds takes well under a second: run it as PML does.
CHEAP_MULTIPLY_ADDS = 2e10
# faiss's k-means does its multiply-adds at about half the rate of the exact search: 7 iterations
# and the assignment of 100k x 512 to 12,500 centroids took 115 s where the search of the same
# 100k took 62 s, 1.4x at 30k / 3,000 (benchmarks/cluster_speed.py, one process).
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
        float(adjusted_mutual_info_score(labels, clusters)),
    )
