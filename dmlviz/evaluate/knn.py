"""Nearest neighbours by cosine similarity with faiss: exact (flat inner product) or approximate (HNSW).

Embeddings are L2-normalised to float32 first, so the inner product is the cosine similarity and
the ranking equals the Euclidean one that pytorch-metric-learning's ``FaissKNN`` uses.
"""

from __future__ import annotations

import faiss
import numpy as np

# Approximate search (``exact=False``): faiss HNSW graph over the references, inner-product metric,
# M = 16 links per node, efConstruction = 40 while building, efSearch = max(HNSW_EF_SEARCH, 2 k)
# while searching. On 1,000 queries against 100k x 512 embeddings from a trained digits MLP (the
# real-ish set of benchmarks/eval_speed.py) this kept MAP@R, R-Precision and P@1 within 0.004 of
# exact, where efSearch = 64 missed by 0.006-0.007, IVF-Flat (nlist 256-1024, nprobe <= 16) by 0.04
# or more and PCA-64 + HNSW by 0.25.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """``x`` as C-contiguous float32 with unit-length rows (all-zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values; re-embed the run")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


def build_index(ref: np.ndarray, exact: bool = True) -> faiss.Index:
    """A faiss inner-product index over the (already normalised) rows of ``ref``.

    ``exact=True``: ``IndexFlatIP`` (brute force). ``exact=False``: ``IndexHNSWFlat`` with the
    module's ``HNSW_*`` parameters.
    """
    d = ref.shape[1]
    if exact:
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(ref)
    return index


def search(
    index: faiss.Index, query: np.ndarray, k: int, exclude_self: bool, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Search ``index`` for the ``k`` best references of each (normalised) query row.

    With ``exclude_self`` the query set is the reference set and row ``i`` never lists ``i``.
    Returns ``(indices (n, k) int64, similarities (n, k) float32)``, best first.
    """
    extra = int(exclude_self)
    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * (k + extra))
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
    return search(build_index(ref, exact), query, int(k), exclude_self, int(chunk))


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
