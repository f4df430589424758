"""Ranking metrics with ties counted at their expected value.

References with equal similarity keys (``similarity.py``) form a tied group, and every order of a
group is taken as equally likely (McSherry and Najork, "Computing information retrieval
performance measures efficiently in the presence of tied scores", ECIR 2008). Each metric is its
mean over those orders, so identical embeddings score what a random ranking scores, and on data
without ties every value is the usual one. (pytorch-metric-learning instead breaks ties by index
order, which a collapsed model can turn into a perfect score.)

A query's ranking reaches the metrics as its relevant references, each with its key and the
numbers of irrelevant references strictly above it and tied with it (``Relevant``). A group of
``g`` references holding ``c`` relevant ones, below ``N`` references of which ``a`` are relevant,
takes positions ``N + 1 .. N + g``; position ``N + t`` holds a relevant reference with probability
``c / g``, and then ``(t - 1)(c - 1) / (g - 1)`` relevant ones precede it inside the group on
average. Summing the precision ``(a + 1 + that) / (N + t)`` over ``t`` gives the closed forms
below, with harmonic numbers for the sums of ``1 / (N + t)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from dmlviz.evaluate.similarity import packed, unpacked


@dataclass(frozen=True)
class Relevant:
    """The relevant references of every query, by query, then key descending.

    ``row``: the query. ``key``: the similarity key. ``above`` / ``tied``: the irrelevant
    references whose key is strictly greater / equal.
    """

    row: np.ndarray
    key: np.ndarray
    above: np.ndarray
    tied: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[Relevant]) -> Relevant:
        """The parts (of consecutive query blocks, in order) as one."""
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, np.empty(0), empty, empty)
        return cls(*(np.concatenate(column) for column in zip(*map(_columns, parts), strict=True)))


def _columns(part: Relevant) -> tuple[np.ndarray, ...]:
    return part.row, part.key, part.above, part.tied


def count_irrelevant(
    n_rows: int,
    rel_row: np.ndarray,
    rel_key: np.ndarray,
    irr_row: np.ndarray,
    irr_key: np.ndarray,
) -> Relevant:
    """``Relevant`` from every relevant reference (``rel_row``, ``rel_key``, any order) and the
    irrelevant ones that may reach them (``irr_row``, ``irr_key``; those below every relevant
    reference of their row may be left out). Rows run over ``range(n_rows)``."""
    rel = np.sort(packed(rel_row, rel_key))
    row = (rel >> 32).astype(np.int64)
    start = np.searchsorted(row, np.arange(n_rows + 1))
    irr = packed(irr_row, irr_key)
    # bin b of row r (r + start[r] + b) counts the irrelevant references with exactly b of the
    # row's relevant keys below them (strictly: ``strict``, or at or below: ``loose``)
    width = len(rel) + n_rows
    strict = np.bincount(np.searchsorted(rel, irr, side="left") + irr_row, minlength=width)
    loose = np.bincount(np.searchsorted(rel, irr, side="right") + irr_row, minlength=width)
    return from_histograms(rel, start, strict, loose)


def from_histograms(
    rel: np.ndarray, start: np.ndarray, strict: np.ndarray, loose: np.ndarray
) -> Relevant:
    """``Relevant`` from the sorted packed relevant keys ``rel`` (row ``r`` at
    ``start[r]:start[r + 1]``) and the two histograms of ``count_irrelevant``."""
    n_rows = len(start) - 1
    r = np.diff(start)
    owner = np.repeat(np.arange(n_rows), r)
    t = np.arange(len(rel)) - start[owner]  # place among the row's relevant keys, ascending
    first_bin = start[owner] + owner
    last_bin = first_bin + r[owner]
    strict_total, loose_total = np.cumsum(strict), np.cumsum(loose)
    above = strict_total[last_bin] - strict_total[first_bin + t]
    at_or_above = loose_total[last_bin] - loose_total[first_bin + t]
    descending = start[owner] + (r[owner] - 1 - t)
    return Relevant(
        owner,
        unpacked(rel[descending]),
        above[descending].astype(np.int64),
        (at_or_above - above)[descending].astype(np.int64),
    )


@dataclass(frozen=True)
class QueryScores:
    """Expected per-query metrics (NaN for queries without a relevant reference, and for ``ap``
    when the ranking is incomplete). ``recall``: ``(n, len(ks))``, the chance that a relevant
    reference lies in the first K. ``first_correct_rank``: the expected position of the first."""

    ap_at_r: np.ndarray
    r_precision: np.ndarray
    ap: np.ndarray
    precision_at_1: np.ndarray
    first_correct_rank: np.ndarray
    recall: np.ndarray


def expected_scores(
    relevant_counts: np.ndarray, rel: Relevant, ks: tuple[int, ...], complete: bool
) -> QueryScores:
    """Every ranking metric of every query at its expected value over the orders of tied groups.

    ``relevant_counts``: ``R`` per query. ``complete``: ``rel`` holds every relevant reference
    (else only those found, so ``ap`` is NaN and a query with none found has NaN ranks).
    """
    n = len(relevant_counts)
    R = relevant_counts.astype(np.float64)

    # tied groups: consecutive relevant references of one row with one key
    new = np.r_[True, (rel.row[1:] != rel.row[:-1]) | (rel.key[1:] != rel.key[:-1])][: len(rel.row)]
    first = np.flatnonzero(new)
    c = np.diff(np.r_[first, len(rel.row)]).astype(np.float64)
    row = rel.row[first]
    row_start = np.searchsorted(rel.row, row)
    a = (first - row_start).astype(np.float64)  # relevant references above the group
    N = a + rel.above[first]  # all references above it
    g = c + rel.tied[first]
    R_row = R[row]

    def precision_sum(L: np.ndarray) -> np.ndarray:
        """Expected sum of the precisions of the group's relevant references in its first L
        positions."""
        D = digamma(N + L + 1) - digamma(N + 1)  # sum over t <= L of 1 / (N + t)
        inner = np.divide(c - 1, g - 1, out=np.zeros_like(g), where=g > 1)
        tied = (c / g) * ((a + 1) * D + inner * (L - (N + 1) * D))
        single = np.where(L >= 1, (a + 1) / (N + 1), 0.0)  # g = 1: no rounding at all
        return np.where(g == 1, single, tied)

    within_r = np.clip(R_row - N, 0, g)
    ap_at_r = np.bincount(row, weights=precision_sum(within_r), minlength=n)
    r_precision = np.bincount(row, weights=c * within_r / g, minlength=n)
    ap = np.bincount(row, weights=precision_sum(g), minlength=n)

    # the first group of each row decides P@1, R@K and the first correct rank
    lead = np.r_[True, row[1:] != row[:-1]][: len(row)]
    lead_row, N0, g0, c0 = row[lead], N[lead], g[lead], c[lead]
    first_rank = np.full(n, np.nan)
    first_rank[lead_row] = N0 + (g0 + 1) / (c0 + 1)
    precision_at_1 = np.zeros(n)
    precision_at_1[lead_row] = np.where(N0 == 0, c0 / g0, 0.0)
    recall = np.zeros((n, len(ks)))
    for j, k in enumerate(ks):
        recall[lead_row, j] = _hit_chance(k - N0, g0, c0)

    lone = R == 0
    none_found = np.ones(n, dtype=bool)  # lone queries, and in an incomplete ranking the others
    none_found[lead_row] = False
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = QueryScores(
            ap_at_r=ap_at_r / R,
            r_precision=r_precision / R,
            ap=ap / R if complete else np.full(n, np.nan),
            precision_at_1=precision_at_1,
            first_correct_rank=first_rank,
            recall=recall,
        )
    scores.ap_at_r[lone] = scores.r_precision[lone] = scores.ap[lone] = np.nan
    scores.precision_at_1[lone] = np.nan
    scores.recall[lone] = np.nan
    scores.first_correct_rank[none_found] = np.nan
    return scores


def _hit_chance(s: np.ndarray, g: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The chance that, of a group of ``g`` holding ``c`` relevant references in random order,
    one of the first ``s`` is relevant: ``1 - C(g - c, s) / C(g, s)`` (0 for ``s <= 0``)."""
    s = np.minimum(s, g)
    inside = (s > 0) & (s < g) & (g - c >= s)
    safe_s = np.where(inside, s, 0.0)
    log_miss = (
        gammaln(g - c + 1) - gammaln(g - c - safe_s + 1) - gammaln(g + 1) + gammaln(g - safe_s + 1)
    )
    miss = np.where(inside, np.exp(log_miss), np.where(s <= 0, 1.0, 0.0))
    return 1.0 - miss
