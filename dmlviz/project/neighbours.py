"""The kNN graph a UMAP map is laid out from, in UMAP's convention (each point its own first
neighbour, cosine distances): exact up to ``EXACT_POINTS`` points, a faiss inverted-file search
above, where the exact search's n^2 cost dominates the map (100k x 512: about a minute on 2 cores).

A map needs good neighbour lists, not exact ones: UMAP's own search (NN-descent) is approximate
too. The inverted file (IVF-Flat, inner product) has ``2 sqrt(n)`` cells from 10 k-means rounds on
a seeded sample of 40 rows per cell, and each query searches its ``NPROBE`` nearest cells; its
similarities are exact, the lists repeat for a given machine and data.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

from dmlviz.evaluate.knn import knn

EXACT_POINTS = 20_000
NPROBE = 16
TRAIN_ROWS_PER_CELL = 40  # faiss asks for at least 39 rows per k-means centroid
KMEANS_ROUNDS = 10
BLOCK = 8192  # queries per search call: progress is reported between blocks


def map_neighbours(
    x: np.ndarray, n_neighbors: int, progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest rows of each L2-normalised row of ``x``, itself first.

    Returns ``(indices (n, n_neighbors) int64, cosine distances (n, n_neighbors) float32)``,
    nearest first, for UMAP's ``precomputed_knn``. ``progress(done, total)`` follows the searched
    rows (above ``EXACT_POINTS`` only: the exact search takes seconds).
    """
    n = len(x)
    if n <= EXACT_POINTS:
        found, sims = knn(x, k=n_neighbors - 1)
    else:
        found, sims = _inverted_file_search(x, n_neighbors - 1, progress)
    indices = np.hstack([np.arange(n, dtype=np.int64)[:, None], found])
    dists = np.hstack([np.zeros((n, 1), np.float32), np.maximum(0.0, 1.0 - sims)])
    return indices, dists.astype(np.float32)


def _inverted_file_search(
    x: np.ndarray, k: int, progress: Callable[[int, int], None] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of each row of ``x`` by an IVF-Flat search (module docstring):
    ``(indices (n, k) int64, similarities (n, k) float32)``."""
    n, d = x.shape
    cells = int(round(2 * np.sqrt(n)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, cells, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = KMEANS_ROUNDS
    rows = np.random.default_rng(0).choice(n, min(n, TRAIN_ROWS_PER_CELL * cells), replace=False)
    index.train(x[np.sort(rows)])
    index.add(x)
    index.nprobe = NPROBE
    indices = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        block_sims, block = index.search(x[start:stop], k + 1)
        # drop each row itself (or, where a duplicate outranked it, its last candidate)
        own = block == np.arange(start, stop)[:, None]
        own[~own.any(axis=1), -1] = True
        indices[start:stop] = block[~own].reshape(-1, k)
        sims[start:stop] = block_sims[~own].reshape(-1, k)
        if progress is not None:
            progress(stop, n)
    return indices, sims
