"""Exact self-retrieval from the symmetric similarity matrix ``S = X X^T``, each tile computed once.

When the references are the queries themselves, ``S[I, J] = S[J, I]^T``: a tile with ``I < J``
serves the queries of block ``I`` through its rows and those of block ``J`` through its columns,
which halves the matrix products of the row-block scan in ``retrieval._exact_ranking``.

The samples are put in class order and cut into blocks of about ``side`` rows, at class boundaries
where a class is no bigger than ``side / 2``. Per query the scan keeps

* a running top-``k`` list, and ``tau``, its ``k``-th similarity so far (a lower bound on the
  final one: a tile's entries below it cannot enter the list);
* for each relevant reference (same label, itself left out) the numbers of irrelevant references
  strictly more similar and equally similar, so that its place in the full ranking, ties
  included, is known at the end (``ties.py`` takes it from there).

Similarities are the exact keys of ``similarity.py`` (float64 integers), the same on any CPU. The
band and diagonal tiles are computed as keys (float64 products); the tiles above the diagonal,
nearly all of the work, as float32 products at twice the speed, whose entries are within
``float32_error`` of the keys they stand for: an entry whose exact key could change an outcome (it
may enter a top-k list, or lie that close to one of the query's relevant keys) gets its exact key
computed alone (``similarity.pair_keys``); for every other entry the float32 value decides as the
key would.

The counts need every query's relevant similarities before its first tile is scanned. In class
order they lie in the tiles near the diagonal: first the "band" tiles of blocks whose classes reach
into other blocks are computed for them alone (and again when scanned); then every diagonal tile
(where a block holding whole classes takes its relevant similarities in the same pass); then the
tiles above the diagonal.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from dmlviz.evaluate import ties
from dmlviz.evaluate.similarity import (
    FLOOR,
    KEY_BITS,
    cosine,
    float32_error,
    keys,
    packed,
    pair_keys,
    tau_lower_bound,
)
from dmlviz.evaluate.threads import parallel

# Largest default tile side (rows and columns of one tile of S; a tile is up to 1.5 side squared
# float64 per worker thread).
TILE = 2048
NO_BOUND = FLOOR  # tau before a query has k neighbours: every entry is above


@dataclass(frozen=True)
class Tiling:
    """Blocks of the class-ordered samples and the tiles of ``S`` computed over them.

    ``bounds``: block ``b`` holds sorted positions ``bounds[b]:bounds[b + 1]``. ``band``: the pairs
    ``(I, J)``, ``I <= J``, computed first for relevant similarities (blocks sharing a class with
    another block). ``diagonal`` and ``upper``: the pairs ``(I, I)`` and ``(I, J)``, ``I < J``.
    """

    bounds: np.ndarray
    band: list[tuple[int, int]]
    closed: np.ndarray  # per block: every class of the block lies inside it

    @classmethod
    def of(cls, sorted_codes: np.ndarray, side: int) -> Tiling:
        """The tiling of samples whose class codes, in class order, are ``sorted_codes``."""
        n = len(sorted_codes)
        first, last = class_range(sorted_codes)
        class_starts = np.unique(first)
        targets = np.arange(side, n, side)
        snapped = class_starts[np.searchsorted(class_starts, targets, side="right") - 1]
        cuts = np.where(targets - snapped <= side // 2, snapped, targets)
        bounds = np.unique(np.r_[0, cuts, n])
        block_of = np.searchsorted(bounds, np.arange(n), side="right") - 1
        low = block_of[first[bounds[:-1]]]  # block where the class of each block's first row starts
        high = block_of[last[bounds[1:] - 1] - 1]  # block where the class of its last row ends
        blocks = np.arange(len(bounds) - 1)
        closed = (low == blocks) & (high == blocks)
        band = [(i, j) for i in blocks[~closed] for j in range(i, high[i] + 1)]
        return cls(bounds, [(int(i), int(j)) for i, j in band], closed)

    @property
    def diagonal(self) -> list[tuple[int, int]]:
        return [(i, i) for i in range(len(self.bounds) - 1)]

    @property
    def upper(self) -> list[tuple[int, int]]:
        blocks = len(self.bounds) - 1
        return [(i, j) for i in range(blocks) for j in range(i + 1, blocks)]

    def matmul_flops(self, d: int) -> int:
        """Floating-point operations of the matrix products, for embeddings of dimension ``d``
        (``2 * rows * columns * d`` per tile, band tiles counted twice)."""
        size = np.diff(self.bounds)
        pairs = self.band + self.diagonal + self.upper
        return int(sum(2 * int(size[i]) * int(size[j]) * d for i, j in pairs))


def tile_side(n: int) -> int:
    """The default tile side for ``n`` samples: ``TILE``, or a quarter of ``n`` when smaller (so
    that every worker thread has tiles)."""
    return max(1, min(TILE, -(-n // 4)))


def class_range(sorted_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sorted position, the first and one-past-last position of its class."""
    n = len(sorted_codes)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    ends = np.r_[starts[1:], n]
    which = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    return starts[which], ends[which]


def symmetric_ranking(
    x: np.ndarray, codes: np.ndarray, top_k: int, side: int | None = None
) -> tuple[np.ndarray, np.ndarray, ties.Relevant]:
    """Exact self-retrieval of the rows of ``x`` (from ``similarity.fixed_point``) with class
    codes ``codes``: each row ranks every other row by similarity key, in tiles of about ``side``
    (default ``tile_side``).

    Returns ``(neighbours (n, top_k), similarities (n, top_k), relevant)`` as
    ``retrieval._exact_ranking`` does: the top-``top_k`` list (ties by smaller index) and every
    relevant reference with the irrelevant references above and tied with it.
    """
    order = np.argsort(codes, kind="stable")
    scan = _Scan(x[order], codes[order], order, top_k, side or tile_side(len(x)))
    parallel(scan.extract_band, len(scan.tiling.band))
    parallel(scan.diagonal, len(scan.tiling.bounds) - 1)
    parallel(scan.upper, len(scan.tiling.upper))
    return scan.results()


class _Scan:
    """The state of one symmetric scan, in class order (position ``p`` is sample ``order[p]``).

    Per position: ``tau``, the running top-k (``top_sim``, ``top_ref`` as sample indices), its
    relevant keys (``rel``, ``R = class size - 1`` per row from ``rel_start[p]``), then, once its
    block is finalised, them sorted and packed (``keys``) and their smallest (``min_rel``), and
    ``strict`` and ``loose`` (``R + 1`` bins from ``rel_start[p] + p``): bin ``b`` counts the
    irrelevant references with exactly ``b`` of its relevant keys strictly below / at or below
    theirs. A block's rows are written under its lock.
    """

    def __init__(self, x: np.ndarray, codes: np.ndarray, order: np.ndarray, k: int, side: int):
        n = len(x)
        self.x, self.codes, self.order, self.k = x, codes, order, k
        self.x32 = (x * 2.0**-26).astype(np.float32)  # unit rows, for the float32 tiles
        self.error = float32_error(x.shape[1]) * 2.0**KEY_BITS  # in key units
        self.tiling = Tiling.of(codes, side)
        self.first, self.last = class_range(codes)
        r = self.last - self.first - 1
        self.rel_start = np.r_[0, np.cumsum(r)]
        self.rel = np.empty(self.rel_start[-1])
        self.keys = np.empty(self.rel_start[-1], dtype=np.int64)
        self.strict = np.zeros(self.rel_start[-1] + n, dtype=np.int64)
        self.loose = np.zeros(self.rel_start[-1] + n, dtype=np.int64)
        self.min_rel = np.full(n, np.inf)
        self.tau = np.full(n, NO_BOUND)
        self.top_sim = np.full((n, k), FLOOR)
        self.top_ref = np.full((n, k), n, dtype=np.int64)
        blocks = len(self.tiling.bounds) - 1
        self.locks = [threading.Lock() for _ in range(blocks)]
        # per block: (query, key, sample index, position, key is exact) of top-k candidates
        self.pool: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(blocks)]
        self.pooled = [0] * blocks
        size = np.diff(self.tiling.bounds)
        self.buffer_size = int(size.max()) ** 2

    # -- the three passes: each ``work(worker, workers)`` takes every workers-th tile ---------------

    def extract_band(self, worker: int, workers: int) -> None:
        buffer = np.empty(self.buffer_size)
        for i, j in self.tiling.band[worker::workers]:
            S, rows, cols = self._tile(i, j, buffer)
            self._extract(S, rows, cols)
            if i != j:
                self._extract(S.T, cols, rows)

    def diagonal(self, worker: int, workers: int) -> None:
        buffer = np.empty(self.buffer_size)
        for i in range(worker, len(self.tiling.bounds) - 1, workers):
            S, rows, _ = self._tile(i, i, buffer)
            if self.tiling.closed[i]:
                self._extract(S, rows, rows)
            self._finalise(rows)
            # a query is not its own neighbour
            S[np.arange(len(S)), np.arange(len(S))] = -np.inf
            self.tau[rows] = tau_lower_bound(S, self.k)
            self._scan(S, rows, rows, i, axis=1)

    def upper(self, worker: int, workers: int) -> None:
        buffer = np.empty(self.buffer_size, dtype=np.float32)
        for i, j in self.tiling.upper[worker::workers]:
            S, rows, cols = self._tile(i, j, buffer)  # float32: _scan settles what matters
            self._scan(S, rows, cols, i, axis=1)  # queries of block i against block j
            self._scan(S, cols, rows, j, axis=0)  # queries of block j against block i

    # -- steps ----------------------------------------------------------------------------------

    def _tile(self, i: int, j: int, buffer: np.ndarray) -> tuple[np.ndarray, slice, slice]:
        """``S[I, J]`` in ``buffer`` (keys in a float64 buffer, float32 cosines in a float32 one),
        and the position slices of blocks ``i`` and ``j``."""
        bounds = self.tiling.bounds
        rows, cols = slice(bounds[i], bounds[i + 1]), slice(bounds[j], bounds[j + 1])
        S = buffer[: (rows.stop - rows.start) * (cols.stop - cols.start)]
        S = S.reshape(rows.stop - rows.start, cols.stop - cols.start)
        if buffer.dtype == np.float32:
            np.matmul(self.x32[rows], self.x32[cols].T, out=S)
        else:
            keys(self.x[rows], self.x[cols], out=S)
        return S, rows, cols

    def _extract(self, S: np.ndarray, rows: slice, cols: slice) -> None:
        """Store the relevant keys that ``S`` (queries ``rows`` x references ``cols``) holds."""
        p = np.arange(rows.start, rows.stop)
        low = np.maximum(self.first[p], cols.start)
        high = np.minimum(self.last[p], cols.stop)
        count = np.maximum(high - low, 0)
        query = np.repeat(p, count)
        ref = (
            np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + low[query - p[0]]
        )
        keep = ref != query
        query, ref = query[keep], ref[keep]
        slot = self.rel_start[query] + (ref - self.first[query]) - (ref > query)
        self.rel[slot] = S[query - rows.start, ref - cols.start]

    def _finalise(self, rows: slice) -> None:
        """Sort the relevant keys of a block's queries into packed search values."""
        lo, hi = self.rel_start[rows.start], self.rel_start[rows.stop]
        r = np.diff(self.rel_start[rows.start : rows.stop + 1])
        owner = np.repeat(np.arange(rows.start, rows.stop), r)
        self.keys[lo:hi] = np.sort(packed(owner, self.rel[lo:hi]))
        has = r > 0
        starts = (self.rel_start[rows.start : rows.stop] - lo)[has]
        if len(starts):
            self.min_rel[rows.start : rows.stop][has] = np.minimum.reduceat(self.rel[lo:hi], starts)

    def _scan(self, S: np.ndarray, queries: slice, refs: slice, block: int, axis: int) -> None:
        """Update the queries of ``block`` with the references of one tile: ``S`` holds their
        keys, or float32 cosines, along ``axis`` (1: a query per row, 0: a query per column)."""
        theta = np.minimum(self.tau[queries], self.min_rel[queries])
        if S.dtype == np.float32:  # every entry whose key may reach theta (rounded down)
            theta = np.nextafter(((theta - self.error) * 2.0**-KEY_BITS).astype(np.float32), -2)
        theta = theta[:, None] if axis == 1 else theta[None, :]
        flat = np.flatnonzero(theta <= S)
        if len(flat) == 0:
            return
        row, col = np.divmod(flat, S.shape[1])
        sim = S.ravel()[flat]
        q, ref = (row, col) if axis == 1 else (col, row)
        q += queries.start
        ref += refs.start
        exact = np.ones(len(sim), dtype=bool)
        if S.dtype == np.float32:
            sim, exact = self._settle(q, ref, sim, queries)

        # irrelevant references at or above the least similar relevant one: their bins are the
        # numbers of the query's relevant keys strictly below theirs and at or below theirs
        counted = (sim >= self.min_rel[q]) & (self.codes[q] != self.codes[ref])
        cq = q[counted]
        lo, hi = self.rel_start[queries.start], self.rel_start[queries.stop]
        value = packed(cq, sim[counted])
        offset = lo + cq  # bins of row p start at rel_start[p] + p
        strict = np.searchsorted(self.keys[lo:hi], value, side="left") + offset
        loose = np.searchsorted(self.keys[lo:hi], value, side="right") + offset

        # the top-k candidates wait in the block's pool until it holds k per query (merging each
        # tile's few would re-sort the k already kept, tile after tile)
        top = np.flatnonzero(sim + np.where(exact, 0, self.error) >= self.tau[q])
        with self.locks[block]:
            np.add.at(self.strict, strict, 1)
            np.add.at(self.loose, loose, 1)
            if len(top):
                self.pool[block].append(
                    (q[top], sim[top], self.order[ref[top]], ref[top], exact[top])
                )
                self.pooled[block] += len(top)
                if self.pooled[block] >= self.k * (queries.stop - queries.start):
                    self._merge(block)

    def _settle(
        self, q: np.ndarray, ref: np.ndarray, cosine32: np.ndarray, queries: slice
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keys for float32 entries, and which are exact: the exact key of an irrelevant entry
        within the float32 error of one of the query's relevant keys, else the rounded float32
        value, which lands between the same relevant keys as the exact key would (``_merge``
        settles the entries that may enter a top-k list)."""
        approximate = np.rint(cosine32.astype(np.float64) * 2.0**KEY_BITS)
        near = np.zeros(len(q), dtype=bool)
        # only irrelevant entries that may reach the least similar relevant key can be near one
        check = np.flatnonzero(
            (approximate + self.error >= self.min_rel[q]) & (self.codes[q] != self.codes[ref])
        )
        lo, hi = self.rel_start[queries.start], self.rel_start[queries.stop]
        value, owner = approximate[check], q[check]
        low = np.searchsorted(self.keys[lo:hi], packed(owner, np.floor(value - self.error)))
        high = np.searchsorted(
            self.keys[lo:hi], packed(owner, np.ceil(value + self.error)), side="right"
        )
        near[check[low < high]] = True
        approximate[near] = pair_keys(self.x, self.x, q[near], ref[near])
        return approximate, near

    def _merge(self, block: int) -> None:
        """Merge a block's pool into its queries' top-k lists (key descending, then smaller index)
        and raise their ``tau``. Pooled float32 entries that may enter a list (their key could
        reach the k-th largest lower bound of the row's keys) get their exact key first."""
        q, sim, ref, position, exact = (
            np.concatenate(part) for part in zip(*self.pool[block], strict=True)
        )
        self.pool[block], self.pooled[block] = [], 0
        rows = slice(self.tiling.bounds[block], self.tiling.bounds[block + 1])
        n_rows, k = rows.stop - rows.start, self.k
        group = np.r_[np.repeat(np.arange(n_rows), k), q - rows.start]
        sims = np.r_[self.top_sim[rows].ravel(), sim]
        refs = np.r_[self.top_ref[rows].ravel(), ref]
        size = k + np.bincount(q - rows.start, minlength=n_rows)
        if not exact.all():
            margin = np.r_[np.zeros(n_rows * k), np.where(exact, 0.0, self.error)]
            lower = np.argsort(packed(group, margin - sims))  # per row, lower bounds descending
            kth = (sims - margin)[lower[np.cumsum(size) - size + k - 1]]
            settle = np.flatnonzero((margin > 0) & (sims + margin >= kth[group]))
            sims[settle] = pair_keys(
                self.x, self.x, rows.start + group[settle], position[settle - n_rows * k]
            )
            dropped = (margin > 0) & (sims + margin < kth[group])
            sims[dropped] = FLOOR  # k entries are surely above them
        key = packed(group, -sims)
        ranked = np.argsort(key)
        if (key[ranked[1:]] == key[ranked[:-1]]).any():  # equal similarities: smaller index first
            ranked = np.lexsort((refs, key))
        take = ranked[((np.cumsum(size) - size)[:, None] + np.arange(k)).ravel()]
        self.top_sim[rows] = sims[take].reshape(-1, k)
        self.top_ref[rows] = refs[take].reshape(-1, k)
        self.tau[rows] = np.maximum(self.tau[rows], self.top_sim[rows, -1])

    def results(self) -> tuple[np.ndarray, np.ndarray, ties.Relevant]:
        """The scan's outcome in sample order (see ``symmetric_ranking``)."""
        for block in range(len(self.pool)):
            if self.pool[block]:
                self._merge(block)
        n = len(self.x)
        neighbours = np.empty_like(self.top_ref)
        sims = np.empty((n, self.k), dtype=np.float32)
        neighbours[self.order], sims[self.order] = self.top_ref, cosine(self.top_sim)
        found = ties.from_histograms(self.keys, self.rel_start, self.strict, self.loose)

        # rows back in sample order
        position = np.empty(n, dtype=np.int64)
        position[self.order] = np.arange(n)
        r = np.diff(self.rel_start)
        r_sample = r[position]
        start_sample = np.cumsum(r_sample) - r_sample
        source = np.repeat(self.rel_start[position] - start_sample, r_sample)
        source += np.arange(len(found.row))
        return neighbours, sims, ties.Relevant(
            np.repeat(np.arange(n), r_sample), found.key[source], found.above[source],
            found.tied[source],
        )  # fmt: skip
