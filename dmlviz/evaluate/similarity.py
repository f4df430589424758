"""The similarity every exact ranking uses: cosine similarity computed without rounding error and
rounded to a fixed grid, so that a ranking is a function of the embeddings alone.

Why not float32 dot products: their last bits depend on the order of the sums, which depends on
the CPU's BLAS kernel (AVX2 or AVX-512), the thread count and the code path (a tile of the
symmetric matrix or a block of rows). Near-ties then flip between machines and paths, and with
them a query's AP@R. Here instead:

1. each row is scaled to unit length in float64, its sum of squares taken in one fixed order, and
   its coordinates are rounded to multiples of ``2**-COORD_BITS`` (``fixed_point``);
2. the dot product of two such rows is a sum of integers times ``2**(-2 * COORD_BITS)`` whose
   partial sums stay below ``2**53`` in magnitude (Cauchy-Schwarz: at most the product of the
   two norms, about ``2**(2 * COORD_BITS)``), so float64 BLAS computes it exactly, in any order;
3. that exact value is rounded to a multiple of ``2**-KEY_BITS`` (about 1e-9; float32 holds a
   similarity near 1 only to 6e-8): the *key* that orders references. Equal keys are ties.

The keys differ from the float32 cosine by about 1e-8 (the rounding of step 1), far below what
separates two images. Float64 products cost about 1.7x float32 ones, so the symmetric scan
computes most of its tiles in float32 and the exact key only where the float32 value, within
``float32_error`` of it, could decide otherwise (``symmetric.py``).
"""

from __future__ import annotations

import numpy as np

COORD_BITS = 26  # coordinates of unit rows as multiples of 2**-26 (about 1.5e-8)
KEY_BITS = 30  # similarities as multiples of 2**-30 (about 9.3e-10)
# Below every key (|key| <= 2**30 up to rounding): the "nothing here" value of running top-k
# lists and bounds; its negation still fits the 32 bits ``packed`` gives a key.
FLOOR = -(2.0**31 - 1)
_TO_KEY = 2.0 ** (KEY_BITS - 2 * COORD_BITS)


def fixed_point(x: np.ndarray) -> np.ndarray:
    """The rows of ``x`` scaled to unit length and rounded to multiples of ``2**-COORD_BITS``,
    as float64 integers (the coordinates times ``2**COORD_BITS``); all-zero rows stay zero.

    The same bits on every CPU: the squares are summed column by column (one order everywhere)
    and every other step is a single correctly rounded operation per element.
    """
    q = np.array(x, dtype=np.float64, order="C", copy=True)
    if q.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, d), got shape {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("embeddings contain NaN or infinite values; re-embed the run")
    total = np.zeros(len(q))
    for column in q.T:
        total += column * column
    norm = np.sqrt(total)
    norm[norm == 0] = 1.0
    q *= (2.0**COORD_BITS / norm)[:, None]
    return np.rint(q, out=q)


def keys(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Similarity keys of every row of ``a`` with every row of ``b`` (both from ``fixed_point``),
    a float64 array of integers (similarity times ``2**KEY_BITS``), written to ``out`` if given."""
    out = np.matmul(a, b.T, out=out)
    out *= _TO_KEY
    return np.rint(out, out=out)


def pair_keys(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Similarity keys of the pairs ``(a[rows[i]], b[cols[i]])``, gathered a slice at a time into
    two reused buffers (fresh gathered arrays cost page faults)."""
    out = np.empty(len(rows))
    step = max(1, min(len(rows), 2**19 // max(1, a.shape[1])))
    left, right = np.empty((step, a.shape[1])), np.empty((step, b.shape[1]))
    for start in range(0, len(rows), step):
        size = min(step, len(rows) - start)
        np.take(a, rows[start : start + size], axis=0, out=left[:size])
        np.take(b, cols[start : start + size], axis=0, out=right[:size])
        out[start : start + size] = np.einsum("ij,ij->i", left[:size], right[:size])
    out *= _TO_KEY
    return np.rint(out, out=out)


def cosine(key: np.ndarray) -> np.ndarray:
    """The cosine similarities (float32) that keys stand for."""
    return (np.asarray(key, dtype=np.float64) * 2.0**-KEY_BITS).astype(np.float32)


def packed(owner: np.ndarray, key: np.ndarray) -> np.ndarray:
    """int64 values ordered by ``owner``, then by ``key`` (integers within ``[FLOOR, -FLOOR]``),
    for one ``searchsorted`` over many rows at once."""
    return (np.asarray(owner, dtype=np.int64) << 32) | (np.asarray(key).astype(np.int64) + 2**31)


def unpacked(value: np.ndarray) -> np.ndarray:
    """The keys of ``packed`` values (float64 integers)."""
    return ((value & 0xFFFFFFFF) - 2**31).astype(np.float64)


def tau_lower_bound(key: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``key`` a value with at least ``k`` entries of the row at or above it, or
    ``FLOOR`` when the row is too short. Cut the row into ``m >= k`` groups of at least 2 (so
    each group's maximum is finite beside one ``-inf``); the ``k``-th largest group maximum is one."""
    n = key.shape[1]
    m = min(4 * k, n // 2)
    if m < k:
        return np.full(len(key), FLOOR)
    group_max = np.maximum.reduceat(key, (np.arange(m) * n) // m, axis=1)
    return np.partition(group_max, m - k, axis=1)[:, m - k]


def top_of(
    rows: int, k: int, row: np.ndarray, col: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of candidates ``(row, col, key)``, given by row, then column ascending (at
    least ``k`` per row; rows ``range(rows)``): per row the columns by key descending, then
    smaller index, ``(indices (rows, k), cosine similarities (rows, k) float32)``."""
    order = np.argsort(packed(row, -key), kind="stable")  # stable: smaller index first on ties
    row = row[order]
    place = np.arange(len(order)) - np.searchsorted(row, np.arange(rows))[row]
    keep = place < k
    indices = np.empty((rows, k), dtype=np.int64)
    sims = np.empty((rows, k), dtype=np.float32)
    indices[row[keep], place[keep]] = col[order[keep]]
    sims[row[keep], place[keep]] = cosine(key[order[keep]])
    return indices, sims


def float32_error(d: int) -> float:
    """A bound on how far a float32 inner product of two unit rows of dimension ``d`` (BLAS, any
    order of the sums, the rows rounded to float32 from ``fixed_point``'s) lies from their key's
    cosine: ``d`` float32 roundings of the sum, a few of the inputs, and the key's own rounding."""
    return (d + 4) * 2.0**-24 + 2.0**-KEY_BITS
