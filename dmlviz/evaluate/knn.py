"""Nearest neighbours by cosine similarity: exact (every pair's similarity key, ``similarity.py``,
ties by smaller index: the same lists on every CPU) or approximate (a faiss HNSW graph, in a
projection where the data allow one, its candidates re-ranked exactly).

Cosine similarity ranks as the Euclidean distance between L2-normalised rows, which
pytorch-metric-learning's ``FaissKNN`` uses.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from dmlviz.evaluate import similarity
from dmlviz.evaluate.threads import one_blas_thread, parallel

# Approximate search (``exact=False``): a faiss HNSW graph (inner product, M = 16 links per node,
# efConstruction = 40), searched with efSearch = max(HNSW_EF_SEARCH, 2 k') for k' = CANDIDATES * k
# candidates, which are re-ranked by their exact inner products (IndexRefineFlat). The graph holds
# the references projected onto their main directions (eigenvectors of R^T R from up to
# PROJECTION_SAMPLE rows; no centring, which would change each query's ranking): the fewest, in
# steps of PROJECTION_STEP, that keep APPROXIMATE_ENERGY of the squared norms; none when that
# takes more than half the dimensions (isotropic data), then the graph holds the vectors as they
# are. Learned embeddings tend to be far from isotropic: on 100k x 512 embeddings of a digits MLP
# (the real-ish set of benchmarks/eval_speed.py, whose approximate table has the timings) 64
# dimensions keep 98.5 %, the exact top-40 there holds 99.99 % of the true top-7 and 99.8 % of the
# true top-20 (32 dimensions, 96 %: 95 % and 92 %), and the whole search kept every ranking metric
# within 0.005 of exact at 2.4-2.6x the speed of the graph of the 512-d vectors. Tried on that set
# and left: efConstruction 20 (error 0.0046-0.0056), efSearch 64 (0.008), IVF-Flat with nlist 1024
# and nprobe <= 64 (0.012 or more, and slower), IVF cells searched as blocks by matrix products
# (0.08 at 12 % of the pairs), NN-descent (faiss, K 24, 8 iterations: 0.003, slower than HNSW),
# re-ranking neighbours of neighbours (gains 0.001), 8-bit scalar quantisation (no faster).
APPROXIMATE_ENERGY = 0.98
PROJECTION_STEP = 32
PROJECTION_SAMPLE = 20_000
CANDIDATES = 2
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128
# Bytes of similarity keys (float64) per worker thread of the exact search.
BLOCK_BYTES = 128 * 2**20


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """``x`` as C-contiguous float32 with unit-length rows (all-zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values; re-embed the run")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


def build_index(ref: np.ndarray) -> faiss.Index:
    """A faiss index for approximate inner-product search over the (normalised) rows of ``ref``:
    an ``IndexRefineFlat`` over an HNSW graph of the rows, projected where that keeps
    ``APPROXIMATE_ENERGY`` (see the comment above it); its similarities are exact inner products.
    """
    d = ref.shape[1]
    projection = _projection(ref)
    graph = faiss.IndexHNSWFlat(
        d if projection is None else projection.d_out, HNSW_M, faiss.METRIC_INNER_PRODUCT
    )
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    base = graph if projection is None else faiss.IndexPreTransform(projection, graph)
    index = faiss.IndexRefineFlat(base)
    index.k_factor = CANDIDATES
    index.add(ref)
    return index


def _projection(ref: np.ndarray) -> faiss.LinearTransform | None:
    """The linear map (no bias) onto the fewest main directions of ``ref``'s rows, in steps of
    ``PROJECTION_STEP``, that keep ``APPROXIMATE_ENERGY`` of their squared norms; None when that
    needs more than half the dimensions."""
    rows = ref
    if len(ref) > PROJECTION_SAMPLE:
        rows = ref[np.random.default_rng(0).choice(len(ref), PROJECTION_SAMPLE, replace=False)]
    # one BLAS thread: a d x d eigendecomposition is too small to share, and on a busy machine two
    # threads took 1-3 s where one takes 0.2 s (d = 512)
    with one_blas_thread():
        energy, vectors = np.linalg.eigh((rows.T @ rows).astype(np.float64))
    energy, vectors = energy[::-1], vectors[:, ::-1]  # largest first
    kept = np.cumsum(energy) / max(energy.sum(), 1e-30)
    needed = int(np.searchsorted(kept, APPROXIMATE_ENERGY)) + 1
    dims = math.ceil(needed / PROJECTION_STEP) * PROJECTION_STEP
    if dims > ref.shape[1] // 2:
        return None
    directions = np.ascontiguousarray(vectors[:, :dims].T, dtype=np.float32)
    transform = faiss.LinearTransform(ref.shape[1], dims, False)
    faiss.copy_array_to_vector(directions.ravel(), transform.A)
    transform.is_trained = True
    return transform


def search(
    index: faiss.Index, query: np.ndarray, k: int, exclude_self: bool, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Search ``index`` for the ``k`` best references of each (normalised) query row.

    With ``exclude_self`` the query set is the reference set and row ``i`` never lists ``i``.
    Returns ``(indices (n, k) int64, similarities (n, k) float32)``, best first.
    """
    extra = int(exclude_self)
    if isinstance(index, faiss.IndexRefineFlat):
        graph = faiss.downcast_index(index.base_index)
        if isinstance(graph, faiss.IndexPreTransform):
            graph = faiss.downcast_index(graph.index)
        graph.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * CANDIDATES * (k + extra))
    n = query.shape[0]
    indices = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        found_sims, found = index.search(query[start:stop], k + extra)
        if exclude_self:
            found_sims, found = _drop_self(found_sims, found, np.arange(start, stop))
        indices[start:stop], sims[start:stop] = found, found_sims
    return indices, sims


def knn(
    query: np.ndarray,
    ref: np.ndarray | None = None,
    k: int = 10,
    exclude_self: bool | None = None,
    chunk: int = 4096,
    exact: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest references of each query row by cosine similarity.

    ``ref=None`` searches the query set itself and then excludes each row from its own list
    (``exclude_self`` defaults to ``ref is None``; pass True when ``ref`` is the query set).
    Queries are searched ``chunk`` rows at a time. Returns ``(indices (n, k) int64,
    similarities (n, k) float32)``, most similar first.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    raw_query, raw_ref = query, query if ref is None else ref  # exact keys start from these
    query = l2_normalise(query)
    ref = query if ref is None else l2_normalise(ref)
    exclude_self = ref is query if exclude_self is None else bool(exclude_self)
    if query.shape[1] != ref.shape[1]:
        raise ValueError(
            f"query dimension {query.shape[1]} differs from reference dimension {ref.shape[1]}"
        )
    if exclude_self and ref.shape[0] != query.shape[0]:
        raise ValueError("exclude_self needs the reference set to be the query set (same rows)")
    available = ref.shape[0] - int(exclude_self)
    if k > available:
        raise ValueError(f"k={k} exceeds the {available} references available to each query")
    if exact:
        return exact_search(raw_query, raw_ref, int(k), exclude_self, int(chunk))
    return search(build_index(ref), query, int(k), exclude_self, int(chunk))


def exact_search(
    query: np.ndarray, ref: np.ndarray, k: int, exclude_self: bool, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best references of each query row by similarity key (ties: smaller index), in
    blocks of at most ``chunk`` queries on parallel threads. Returns ``(indices (n, k) int64,
    similarities (n, k) float32)``, best first.

    Each block's similarities are float32 products; every entry within ``float32_error`` of the
    block's ``k``-th bound gets its exact key, and those keys decide the lists.
    """
    fixed_query = similarity.fixed_point(query)
    fixed_ref = fixed_query if exclude_self else similarity.fixed_point(ref)
    unit_query = (fixed_query * 2.0**-similarity.COORD_BITS).astype(np.float32)
    unit_ref = (
        unit_query if exclude_self else (fixed_ref * 2.0**-similarity.COORD_BITS).astype(np.float32)
    )
    error = similarity.float32_error(query.shape[1])
    n = len(query)
    block = max(1, min(chunk, 1024, BLOCK_BYTES // (4 * len(ref))))
    starts = list(range(0, n, block))
    indices = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)

    def work(worker: int, workers: int) -> None:
        buffer = np.empty((min(block, n), len(ref)), dtype=np.float32)
        for start in starts[worker::workers]:
            stop = min(n, start + block)
            S = np.matmul(unit_query[start:stop], unit_ref.T, out=buffer[: stop - start])
            if exclude_self:
                S[np.arange(stop - start), np.arange(start, stop)] = -np.inf
            # k entries are at least tau, so the k-th key is at least tau - error
            tau = similarity.tau_lower_bound(S, k).astype(np.float64) - 2 * error
            flat = np.flatnonzero(np.nextafter(tau.astype(np.float32), -2)[:, None] <= S)
            row = flat // len(ref)
            col = flat - row * len(ref)
            key = similarity.pair_keys(fixed_query, fixed_ref, row + start, col)
            indices[start:stop], sims[start:stop] = similarity.top_of(
                stop - start, k, row, col, key
            )

    parallel(work, len(starts))
    return indices, sims


def _drop_self(
    found_sims: np.ndarray, found: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from its ``k + 1`` results (the last one when it is absent,
    which happens only when duplicates tie with it)."""
    is_self = found == rows[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    k = found.shape[1] - 1
    return found_sims[keep].reshape(-1, k), found[keep].reshape(-1, k)
