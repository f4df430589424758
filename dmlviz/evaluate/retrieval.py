"""Retrieval metrics, global and per query: Recall@K, Precision@1, R-Precision, MAP@R, mAP, NMI, AMI.

Definitions (the same as pytorch-metric-learning's ``AccuracyCalculator``):

* each query ranks every reference by cosine similarity; when the references are the queries
  themselves (no separate gallery) a query is removed from its own ranking;
* references are ranked by similarity keys (``similarity.py``): exact, the same on every CPU,
  thread count and code path; references with equal keys are tied, and every metric is its mean
  over the orders of tied groups (``ties.py``; pytorch-metric-learning orders them by index, so
  the two agree on data without ties);
* the *relevant* references of a query are those with its label; ``R`` is their number. Queries
  with ``R = 0`` ("lone" queries) are left out of every ranking metric;
* with ``rank_1 < rank_2 < ... < rank_R`` the 1-based positions of the relevant references:
  ``AP = mean_i i / rank_i`` (mAP averages it), ``AP@R`` sums ``i / rank_i`` over ``rank_i <= R``
  and divides by ``R`` (MAP@R), ``R-Precision = #{rank_i <= R} / R``, ``Precision@1 = [rank_1 = 1]``,
  ``Recall@K = [rank_1 <= K]``;
* NMI and AMI compare the labels with a faiss k-means of the queries into as many clusters as
  there are labels; with ``clustering="full"`` run exactly as ``AccuracyCalculator`` runs it
  (``niter=20``, faiss's default seed 1234), so the values agree with it to rounding; by default
  with fewer iterations where those would cost more than the search (``clustering.kmeans_plan``).

The exact path never builds an ``n x n`` matrix. Against a gallery, queries are taken in blocks;
one matrix product gives a block's similarities to all references, and from that block alone come
the top-K list and the exact full-ranking position of every relevant reference (so mAP is exact
too). Its cost is that of a brute-force faiss search plus a few passes over each block (see
``_scan_block``). When the queries are the references, the similarity matrix is symmetric and each
of its tiles is computed once for the queries of its rows and of its columns: half the products
(see ``symmetric.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from dmlviz.evaluate import similarity, symmetric, ties
from dmlviz.evaluate.clustering import KmeansPlan, cluster_scores, kmeans_plan
from dmlviz.evaluate.knn import build_index, l2_normalise, search
from dmlviz.evaluate.threads import parallel

# Bytes of similarity keys (float64) plus candidate mask (bool) per worker thread; the candidate
# arrays add up to about 10x more when embeddings are poor (most references outrank some relevant
# one), a few percent when they are good.
BLOCK_BYTES = 128 * 2**20
# Self-retrieval scans the symmetric matrix S = X X^T, each tile once (``symmetric.py``); False
# scans it in row blocks as a gallery is scanned, computing S twice over (the alternative the
# tests and benchmarks/eval_speed.py check and time it against).
SYMMETRIC = True
PER_QUERY_COLUMNS = (
    "query", "label", "r", "ap@r", "r_precision", "ap", "precision@1", "first_correct_rank",
)  # fmt: skip


@dataclass
class RetrievalResult:
    """What ``retrieval_metrics`` returns.

    ``metrics``: global numbers (``recall@K``, ``precision@1``, ``r_precision``, ``map@r``,
    ``map``, ``nmi``, ``ami``, ``num_queries``, ...; None where undefined).
    ``per_query``: one row per query with the columns of ``PER_QUERY_COLUMNS``.
    ``neighbours`` / ``similarities``: ``(n_queries, top_k)`` reference indices and cosine
    similarities, most similar first.
    """

    metrics: dict[str, Any]
    per_query: pd.DataFrame
    neighbours: np.ndarray
    similarities: np.ndarray

    def per_class(self) -> pd.DataFrame:
        """Per-label means of the per-query metrics: see ``per_class_means``."""
        return per_class_means(self.per_query)


def per_class_means(per_query: pd.DataFrame) -> pd.DataFrame:
    """Per-label means of a per-query table (``RetrievalResult.per_query`` or ``Run.per_query``),
    lone queries left out, worst MAP@R first.

    Columns: ``label``, ``queries``, ``ap@r``, ``r_precision``, ``ap``, ``precision@1``.
    """
    table = per_query[per_query["r"] > 0]
    if "precision@1" not in table:  # a table written before ties were counted as expected
        table = table.assign(**{"precision@1": (table["first_correct_rank"] == 1).astype(float)})
    grouped = table.groupby("label", sort=True)
    frame = grouped[["ap@r", "r_precision", "ap", "precision@1"]].mean()
    frame.insert(0, "queries", grouped.size())
    return frame.reset_index().sort_values("ap@r", kind="stable").reset_index(drop=True)


def retrieval_metrics(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    ref_emb: np.ndarray | None = None,
    ref_labels: np.ndarray | None = None,
    ks: tuple[int, ...] = (1, 2, 4, 8),
    top_k: int = 20,
    exact: bool = True,
    clustering: str | bool = "auto",
    chunk: int | None = None,
) -> RetrievalResult:
    """Evaluate retrieval of ``query_emb`` against ``ref_emb`` (default: the queries themselves,
    each excluded from its own ranking); labels may be any comparable values.

    ``ks``: the K of ``recall@K``. ``top_k``: length of the neighbour table kept per query
    (capped at the number of references). ``exact=False`` searches an HNSW graph instead, in a
    projection where the embeddings allow one, its candidates re-ranked exactly
    (``knn.build_index``): faster on large sets, Recall@K / MAP@R / R-Precision / P@1 within about
    0.005 of exact, but ``map`` and the per-query ``ap`` are None/NaN (they need the full ranking),
    ``first_correct_rank`` is NaN beyond the searched list and a neighbour the graph search
    could not fill is -1. ``clustering``: the k-means behind NMI and AMI, ``"auto"``, ``"full"``
    (``AccuracyCalculator``'s) or ``"off"`` (NMI and AMI None; True / False mean ``"full"`` /
    ``"off"``), see ``clustering.kmeans_plan``; ``metrics["nmi_method"]`` says which ran.
    ``chunk``: queries per block (default: as many as fit ``BLOCK_BYTES``; without a gallery, the
    side of the similarity matrix's tiles, default ``symmetric.tile_side``). Blocks run on
    ``faiss.omp_get_max_threads()`` threads (``OMP_NUM_THREADS``), the same number faiss searches
    with.

    Returns a ``RetrievalResult`` (metrics, per-query table, top-``top_k`` neighbours).
    """
    ks = _check_ks(ks)
    if not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if chunk is not None and (not isinstance(chunk, (int, np.integer)) or chunk < 1):
        raise ValueError(f"chunk must be a positive integer or None, got {chunk!r}")
    query, query_labels, ref, ref_labels = _unit_embeddings(
        query_emb, query_labels, ref_emb, ref_labels
    )
    exclude_self = ref_emb is None
    available = len(ref) - int(exclude_self)
    if len(query) == 0 or available < 1:
        raise ValueError(
            f"need at least one query and one other reference (got {len(query)} queries, "
            f"{len(ref)} references)"
        )
    top_k = int(min(top_k, available))
    if isinstance(clustering, bool):
        clustering = "full" if clustering else "off"

    classes, codes = np.unique(np.concatenate([query_labels, ref_labels]), return_inverse=True)
    q_codes, r_codes = codes[: len(query)], codes[len(query) :]
    members = _Members(r_codes, len(classes))
    relevant = members.counts[q_codes] - int(exclude_self)
    n_clusters = int(np.count_nonzero(np.bincount(q_codes)))
    plan = kmeans_plan(clustering, len(query), len(ref), n_clusters, query.shape[1], exact)

    # exact rankings order references by the keys of similarity.py (the same on every CPU)
    fixed_query = similarity.fixed_point(query_emb)
    fixed_ref = fixed_query if exclude_self else similarity.fixed_point(ref_emb)
    if exact and exclude_self and SYMMETRIC:
        neighbours, sims, found = symmetric.symmetric_ranking(fixed_query, q_codes, top_k, chunk)
    elif exact:
        block = chunk or max(1, min(1024, BLOCK_BYTES // (9 * len(ref))))
        neighbours, sims, found = _exact_ranking(
            fixed_query, fixed_ref, q_codes, r_codes, members, exclude_self, top_k, block
        )
    else:
        depth = int(min(available, max(top_k, max(ks), relevant.max())))
        index = build_index(ref)
        candidates, _ = search(index, query, depth, exclude_self, chunk or 4096)
        neighbours, sims, found = _rerank(fixed_query, fixed_ref, candidates, q_codes, r_codes)
        neighbours, sims = neighbours[:, :top_k], sims[:, :top_k]
    scores = ties.expected_scores(relevant, found, ks, complete=exact)
    per_query = _per_query(query_labels, relevant, scores)
    metrics = _global(per_query, scores, ks, complete=exact) | _clustering(
        plan, query, query_labels
    )
    return RetrievalResult(metrics, per_query, neighbours, sims)


def _clustering(plan: KmeansPlan, query: np.ndarray, query_labels: np.ndarray) -> dict[str, Any]:
    """``nmi`` and ``ami`` of the queries' k-means as ``plan`` says to run it (None when it says
    not to), and ``nmi_method``: which ran."""
    nmi = ami = None
    if plan.iterations is not None:
        nmi, ami = cluster_scores(query, query_labels, plan.iterations)
    return {"nmi": nmi, "ami": ami, "nmi_method": plan.method}


def _unit_embeddings(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    ref_emb: np.ndarray | None,
    ref_labels: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(query, query_labels, ref, ref_labels)``: the embeddings L2-normalised, the labels
    checked against them; the references are the queries when ``ref_emb`` is None. Raises
    ``ValueError`` for labels of the wrong length, references without labels (or labels without
    references) and dimensions that differ."""
    query = l2_normalise(query_emb)
    query_labels = _check_labels(query_labels, len(query), "query_labels")
    if (ref_emb is None) != (ref_labels is None):
        raise ValueError("pass ref_emb and ref_labels together, or neither")
    if ref_emb is None:
        return query, query_labels, query, query_labels
    ref = l2_normalise(ref_emb)
    ref_labels = _check_labels(ref_labels, len(ref), "ref_labels")
    if ref.shape[1] != query.shape[1]:
        raise ValueError(
            f"query embeddings have {query.shape[1]} dimensions, references {ref.shape[1]}"
        )
    return query, query_labels, ref, ref_labels


class _Members:
    """The reference indices of each class, stored contiguously (CSR layout)."""

    def __init__(self, ref_codes: np.ndarray, n_classes: int):
        self.order = np.argsort(ref_codes, kind="stable")
        self.counts = np.bincount(ref_codes, minlength=n_classes)
        self.starts = np.cumsum(self.counts) - self.counts

    def of(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(indices (q, w), valid (q, w))``: the members of each query's class, padded to the
        largest class among them."""
        counts = self.counts[codes]
        offsets = np.arange(max(1, int(counts.max())))
        valid = offsets < counts[:, None]
        position = np.minimum(self.starts[codes][:, None] + offsets, len(self.order) - 1)
        return self.order[position], valid


def _exact_ranking(
    query: np.ndarray,
    ref: np.ndarray,
    q_codes: np.ndarray,
    r_codes: np.ndarray,
    members: _Members,
    exclude_self: bool,
    top_k: int,
    block: int,
) -> tuple[np.ndarray, np.ndarray, ties.Relevant]:
    """Scan the (``similarity.fixed_point``) queries ``block`` rows at a time on parallel threads
    (one BLAS thread each, each with its own preallocated key buffer: fresh 100 MB arrays cost
    page faults).

    Returns ``(neighbours (n, top_k), similarities (n, top_k), relevant)``: the top-``top_k``
    list (ties by smaller index) and every relevant reference with the irrelevant references
    above and tied with it (``ties.Relevant``).
    """
    n = len(query)
    ref_t = np.ascontiguousarray(ref.T)  # (d, n_ref): the faster layout for the matrix product
    neighbours = np.empty((n, top_k), dtype=np.int64)
    sims = np.empty((n, top_k), dtype=np.float32)
    starts = list(range(0, n, block))
    parts: list[ties.Relevant] = [ties.Relevant.concatenate([])] * len(starts)

    def work(worker: int, workers: int) -> None:
        buffer = np.empty((min(block, n), len(ref)))
        for b in range(worker, len(starts), workers):
            start = starts[b]
            stop = min(n, start + block)
            key = buffer[: stop - start]
            similarity.keys(query[start:stop], ref_t.T, out=key)
            self_index = np.arange(start, stop) if exclude_self else None
            found, found_sims, relevant = _scan_block(
                key, q_codes[start:stop], r_codes, members, self_index, top_k
            )
            neighbours[start:stop], sims[start:stop] = found, found_sims
            parts[b] = replace(relevant, row=relevant.row + start)

    parallel(work, len(starts))
    return neighbours, sims, ties.Relevant.concatenate(parts)


def _scan_block(
    key: np.ndarray,
    codes: np.ndarray,
    r_codes: np.ndarray,
    members: _Members,
    self_index: np.ndarray | None,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray, ties.Relevant]:
    """Top-``top_k`` list and the relevant references, with the irrelevant ones above and tied
    with each, for one block of queries, from ``key`` (q, n_ref): their similarity keys to every
    reference (overwritten).

    Returns ``(neighbours (q, top_k), similarities (q, top_k), relevant)`` (block rows).
    """
    # a query is not its own neighbour
    q, n = key.shape
    rows = np.arange(q)
    if self_index is not None:
        key[rows, self_index] = -np.inf

    # key of each query to each of its relevant references (+inf pads short rows)
    idx, valid = members.of(codes)
    if self_index is not None:
        valid &= idx != self_index[:, None]
    relevant_keys = np.where(valid, key[rows[:, None], idx], np.inf)

    # candidates: every reference at least as similar as the top_k-th or as the least similar
    # relevant one (tau bounds the former from below). They hold every reference ranked above or
    # tied with a relevant one.
    tau = similarity.tau_lower_bound(key, top_k)
    theta = np.minimum(tau, relevant_keys.min(axis=1))
    flat = np.flatnonzero(key >= theta[:, None])
    c_row = flat // n
    c_col = flat - c_row * n
    c_key = key.ravel()[flat]
    top = c_key >= tau[c_row]
    neighbours, similarities = similarity.top_of(q, top_k, c_row[top], c_col[top], c_key[top])

    irrelevant = r_codes[c_col] != codes[c_row]
    return neighbours, similarities, ties.count_irrelevant(
        q, np.repeat(rows, valid.sum(axis=1)), relevant_keys[valid], c_row[irrelevant],
        c_key[irrelevant],
    )  # fmt: skip


def _rerank(
    query: np.ndarray,
    ref: np.ndarray,
    candidates: np.ndarray,
    q_codes: np.ndarray,
    r_codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, ties.Relevant]:
    """The approximate search's candidate lists (-1: none found) ordered by exact similarity key,
    then index, as the exact paths order them; returns ``(neighbours, similarities, relevant)``
    with the relevant and irrelevant references counted within the lists only."""
    n, depth = candidates.shape
    row = np.repeat(np.arange(n), depth)
    col = candidates.ravel()
    real = col >= 0
    key = np.full(len(col), similarity.FLOOR)
    key[real] = similarity.pair_keys(query, ref, row[real], col[real])
    unfilled = np.where(real, col, np.iinfo(np.int64).max)  # sorted last
    order = np.lexsort((unfilled, -key, row))
    neighbours = col[order].reshape(n, depth)
    sims = np.where(real[order], similarity.cosine(key[order]), -np.inf).astype(np.float32)
    is_relevant = real & (r_codes[np.maximum(col, 0)] == q_codes[row])
    is_irrelevant = real & ~is_relevant
    found = ties.count_irrelevant(
        n, row[is_relevant], key[is_relevant], row[is_irrelevant], key[is_irrelevant]
    )
    return neighbours, sims.reshape(n, depth), found


def _per_query(labels: np.ndarray, relevant: np.ndarray, scores: ties.QueryScores) -> pd.DataFrame:
    """The per-query table (``PER_QUERY_COLUMNS``) from the expected scores."""
    n = len(labels)
    return pd.DataFrame(
        {
            "query": np.arange(n, dtype=np.int64),
            "label": labels,
            "r": relevant.astype(np.int64),
            "ap@r": scores.ap_at_r,
            "r_precision": scores.r_precision,
            "ap": scores.ap,
            "precision@1": scores.precision_at_1,
            "first_correct_rank": scores.first_correct_rank,
        }
    )


def _global(
    per_query: pd.DataFrame, scores: ties.QueryScores, ks: tuple[int, ...], complete: bool
) -> dict[str, Any]:
    """Means of the per-query metrics over the queries that have a relevant reference."""
    scored = (per_query["r"] > 0).to_numpy()

    def mean(values: np.ndarray) -> float | None:
        return float(np.mean(values[scored])) if scored.any() else None

    metrics: dict[str, Any] = {f"recall@{k}": mean(scores.recall[:, j]) for j, k in enumerate(ks)}
    metrics["precision@1"] = mean(scores.precision_at_1)
    metrics["r_precision"] = mean(scores.r_precision)
    metrics["map@r"] = mean(scores.ap_at_r)
    metrics["map"] = mean(scores.ap) if complete else None
    metrics["num_queries"] = int(scored.sum())
    metrics["num_lone_queries"] = len(per_query) - int(scored.sum())
    metrics["exact"] = complete
    return metrics


def _check_ks(ks: Any) -> tuple[int, ...]:
    values = (ks,) if isinstance(ks, (int, np.integer)) else tuple(ks)
    if not values or not all(isinstance(k, (int, np.integer)) and k >= 1 for k in values):
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    return tuple(sorted({int(k) for k in values}))


def _check_labels(labels: Any, n: int, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{name} must be a 1-D array of {n} labels, got shape {labels.shape}")
    return labels
