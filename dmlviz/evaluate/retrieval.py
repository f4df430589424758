"""Retrieval metrics, global and per query: Recall@K, Precision@1, R-Precision, MAP@R, mAP, NMI, AMI.

Definitions (the same as pytorch-metric-learning's ``AccuracyCalculator``):

* each query ranks every reference by cosine similarity; when the references are the queries
  themselves (no separate gallery) a query is removed from its own ranking;
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

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dmlviz.evaluate import symmetric
from dmlviz.evaluate.clustering import cluster_scores, kmeans_plan
from dmlviz.evaluate.knn import build_index, l2_normalise, search
from dmlviz.evaluate.threads import parallel

# Bytes of similarity block (float32) plus candidate mask (bool) per worker thread; the candidate
# arrays add up to about 10x more when embeddings are poor (most references outrank some relevant
# one), a few percent when they are good.
BLOCK_BYTES = 128 * 2**20
# Self-retrieval scans the symmetric matrix S = X X^T, each tile once (``symmetric.py``); False
# scans it in row blocks as a gallery is scanned, computing S twice over (the alternative the
# tests and benchmarks/eval_speed.py check and time it against).
SYMMETRIC = True
PER_QUERY_COLUMNS = ("query", "label", "r", "ap@r", "r_precision", "ap", "first_correct_rank")


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
    table = per_query[per_query["r"] > 0].assign(
        **{"precision@1": lambda f: (f["first_correct_rank"] == 1).astype(float)}
    )
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
    query = l2_normalise(query_emb)
    query_labels = _check_labels(query_labels, len(query), "query_labels")
    if (ref_emb is None) != (ref_labels is None):
        raise ValueError("pass ref_emb and ref_labels together, or neither")
    if ref_emb is None:
        ref, ref_labels, exclude_self = query, query_labels, True
    else:
        ref = l2_normalise(ref_emb)
        ref_labels = _check_labels(ref_labels, len(ref), "ref_labels")
        exclude_self = False
        if ref.shape[1] != query.shape[1]:
            raise ValueError(
                f"query embeddings have {query.shape[1]} dimensions, references {ref.shape[1]}"
            )
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

    if exact and exclude_self and SYMMETRIC:
        neighbours, sims, rank_row, rank = symmetric.symmetric_ranking(query, q_codes, top_k, chunk)
    elif exact:
        block = chunk or max(1, min(1024, BLOCK_BYTES // (5 * len(ref))))
        neighbours, sims, rank_row, rank = _exact_ranking(
            query, ref, q_codes, members, exclude_self, top_k, block
        )
    else:
        depth = int(min(available, max(top_k, max(ks), relevant.max())))
        index = build_index(ref, exact=False)
        found, found_sims = search(index, query, depth, exclude_self, chunk or 4096)
        neighbours, sims = found[:, :top_k], found_sims[:, :top_k]
        is_relevant = (found >= 0) & (r_codes[np.maximum(found, 0)] == q_codes[:, None])
        rank_row, position = np.nonzero(is_relevant)
        rank = position + 1
    per_query = _per_query(query_labels, relevant, rank_row, rank, complete=exact)
    metrics = _global(per_query, ks, complete=exact)
    metrics["nmi"] = metrics["ami"] = None
    if plan.iterations is not None:
        metrics["nmi"], metrics["ami"] = cluster_scores(query, query_labels, plan.iterations)
    metrics["nmi_method"] = plan.method
    return RetrievalResult(metrics, per_query, neighbours, sims)


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
    members: _Members,
    exclude_self: bool,
    top_k: int,
    block: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scan the queries ``block`` rows at a time on parallel threads (one BLAS thread each, each
    with its own preallocated similarity buffer: fresh 100 MB arrays cost page faults).

    Returns ``(neighbours (n, top_k), similarities (n, top_k), rank_row, rank)``: the last two list
    the full-ranking position of every relevant reference, sorted by query then rank.
    """
    n = len(query)
    ref_t = np.ascontiguousarray(ref.T)  # (d, n_ref): the faster layout for the matrix product
    neighbours = np.empty((n, top_k), dtype=np.int64)
    sims = np.empty((n, top_k), dtype=np.float32)
    starts = list(range(0, n, block))
    ranks: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0))] * len(starts)

    def work(worker: int, workers: int) -> None:
        buffer = np.empty((min(block, n), len(ref)), dtype=np.float32)
        for b in range(worker, len(starts), workers):
            start = starts[b]
            stop = min(n, start + block)
            sim = buffer[: stop - start]
            np.matmul(query[start:stop], ref_t, out=sim)
            self_index = np.arange(start, stop) if exclude_self else None
            found, found_sims, row, rank = _scan_block(
                sim, q_codes[start:stop], members, self_index, top_k
            )
            neighbours[start:stop], sims[start:stop] = found, found_sims
            ranks[b] = (row + start, rank)

    parallel(work, len(starts))
    rank_row = np.concatenate([row for row, _ in ranks])
    rank = np.concatenate([rank for _, rank in ranks])
    return neighbours, sims, rank_row, rank


def _scan_block(
    sim: np.ndarray,
    codes: np.ndarray,
    members: _Members,
    self_index: np.ndarray | None,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top-``top_k`` list and exact ranks of the relevant references for one block of queries,
    from ``sim`` (q, n_ref), its cosine similarities to every reference (overwritten).

    Returns ``(neighbours (q, top_k), similarities (q, top_k), row, rank)`` with ``row``/``rank``
    the block row and 1-based rank of every relevant reference, sorted by row then rank. A tie
    between a relevant and an irrelevant reference is resolved in favour of the relevant one.
    """
    # a query is not its own neighbour
    q, n = sim.shape
    rows = np.arange(q)
    if self_index is not None:
        sim[rows, self_index] = -np.inf

    # similarity of each query to each of its relevant references (+inf pads short rows)
    idx, valid = members.of(codes)
    if self_index is not None:
        valid &= idx != self_index[:, None]
    relevant_sims = np.where(valid, sim[rows[:, None], idx], np.inf)

    # tau: a lower bound on each row's top_k-th similarity (every reference is a candidate of a
    # tiny reference set)
    tau = symmetric.tau_lower_bound(sim, top_k)

    # candidates: every reference at least as similar as tau or as the least similar relevant
    # one. They hold the top_k list and every reference ranked above a relevant one.
    theta = np.minimum(tau, relevant_sims.min(axis=1))
    flat = np.flatnonzero(sim >= theta[:, None])
    c_row = flat // n
    c_col = flat - c_row * n
    c_sim = sim.ravel()[flat]

    # the top_k list: candidates at or above tau, sorted by row, then similarity descending
    top = np.flatnonzero(c_sim >= tau[c_row])
    order = top[np.argsort(c_row[top] * 8.0 - c_sim[top], kind="stable")]
    t_row = c_row[order]
    place = np.arange(len(order)) - np.searchsorted(t_row, rows)[t_row]
    keep = place < top_k
    neighbours = np.empty((q, top_k), dtype=np.int64)
    similarities = np.empty((q, top_k), dtype=np.float32)
    neighbours[t_row[keep], place[keep]] = c_col[order[keep]]
    similarities[t_row[keep], place[keep]] = c_sim[order[keep]]

    # rank of each relevant reference = its place among the relevant ones + the number of
    # irrelevant references strictly more similar. Count, for each candidate, the relevant
    # similarities of its row below it with one searchsorted over keys "row * 8 + 2 + sim"
    # (rows apart by 8, sims within [-1, 1] up to rounding; padding sits at row * 8 + 5).
    ascending = np.sort(relevant_sims, axis=1)
    width = ascending.shape[1]
    rel_keys = np.where(
        np.isfinite(ascending), rows[:, None] * 8.0 + 2.0 + ascending, rows[:, None] * 8.0 + 5.0
    ).ravel()
    below = np.searchsorted(rel_keys, c_row * 8.0 + 2.0 + c_sim) - c_row * width
    histogram = np.bincount(c_row * (width + 1) + below, minlength=q * (width + 1))
    histogram = histogram.reshape(q, width + 1)
    # above[:, t] = number of references more similar than the t-th smallest relevant one
    above = np.cumsum(histogram[:, ::-1], axis=1)[:, ::-1][:, 1:]
    at_or_below = np.searchsorted(rel_keys, rel_keys, side="right").reshape(q, width)
    at_or_below -= rows[:, None] * width
    r = valid.sum(axis=1)
    relevant_above = r[:, None] - at_or_below
    t = np.arange(width)
    rank = (r[:, None] - t) + (above - relevant_above)
    is_real = t < r[:, None]  # the padding (+inf) sorts after the r real similarities
    rank = np.sort(np.where(is_real, rank, np.iinfo(np.int64).max), axis=1)
    return neighbours, similarities, np.repeat(rows, r), rank[is_real]


def _per_query(
    labels: np.ndarray, relevant: np.ndarray, rank_row: np.ndarray, rank: np.ndarray, complete: bool
) -> pd.DataFrame:
    """The per-query table from the ranks of the relevant references (sorted by row, then rank).

    ``complete``: every relevant reference's rank is known (else only those in the searched list).
    """
    n = len(labels)
    first_of_row = np.searchsorted(rank_row, np.arange(n))
    hit = np.arange(len(rank)) - first_of_row[rank_row] + 1  # i in "i / rank_i"
    precision = hit / rank
    within_r = rank <= relevant[rank_row]
    r = relevant.astype(np.float64)
    r[r == 0] = np.nan  # lone queries: every ranking metric undefined
    ap_at_r = np.bincount(rank_row, weights=precision * within_r, minlength=n) / r
    r_precision = np.bincount(rank_row, weights=within_r, minlength=n) / r
    if complete:
        ap = np.bincount(rank_row, weights=precision, minlength=n) / r
    else:
        ap = np.full(n, np.nan)
    first = np.full(n, np.nan)
    first[rank_row[hit == 1]] = rank[hit == 1]
    return pd.DataFrame(
        {
            "query": np.arange(n, dtype=np.int64),
            "label": labels,
            "r": relevant.astype(np.int64),
            "ap@r": ap_at_r,
            "r_precision": r_precision,
            "ap": ap,
            "first_correct_rank": first,
        }
    )


def _global(per_query: pd.DataFrame, ks: tuple[int, ...], complete: bool) -> dict[str, Any]:
    """Means of the per-query metrics over the queries that have a relevant reference."""
    scored = per_query[per_query["r"] > 0]
    first = scored["first_correct_rank"].to_numpy()

    def mean(values: np.ndarray) -> float | None:
        return float(np.mean(values)) if len(values) else None

    metrics: dict[str, Any] = {f"recall@{k}": mean(first <= k) for k in ks}
    metrics["precision@1"] = mean(first == 1)
    metrics["r_precision"] = mean(scored["r_precision"].to_numpy())
    metrics["map@r"] = mean(scored["ap@r"].to_numpy())
    metrics["map"] = mean(scored["ap"].to_numpy()) if complete else None
    metrics["num_queries"] = len(scored)
    metrics["num_lone_queries"] = len(per_query) - len(scored)
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
