"""2-D maps of embeddings: UMAP on a faiss kNN graph, PCA as the instant fallback, and how far to
trust them (trustworthiness: do a point's neighbours on the map come from its true neighbours?)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import partial

import numpy as np

from dmlviz.evaluate.knn import l2_normalise
from dmlviz.project.neighbours import map_neighbours

MIN_UMAP_POINTS = 4
PCA_FIT_ROWS = 20_000  # PCA axes from at most this many samples (top directions barely move)
# Layout epochs above LARGE_SET points, where UMAP's own default is 200 (500 below). On 20k x 64
# in 2,000 classes of 10 (one process, busy machine) 100 epochs kept trustworthiness within 0.003
# of 200 (0.5658 against 0.5682) in 0.6x the time; 50 epochs lost 0.016, and 200 epochs at a
# negative sample rate of 2 instead of 5 lost 0.013.
LARGE_SET = 10_000
LARGE_SET_EPOCHS = 100


def umap_projection(
    embeddings: np.ndarray,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    n_epochs: int | None = None,
    init: np.ndarray | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    learning_rate: float = 1.0,
) -> np.ndarray:
    """UMAP map ``(n, 2)`` float32 of the L2-normalised embeddings (cosine geometry).

    The kNN graph comes from faiss (``map_neighbours``: exact, or an inverted file on large sets)
    and is handed to UMAP as ``precomputed_knn`` (UMAP's own search is the slow part on large
    sets). ``seed`` makes the map repeatable (UMAP then runs on one thread). ``n_neighbors`` is
    capped at ``n - 1``; ``n_epochs=None``: ``LARGE_SET_EPOCHS`` above ``LARGE_SET`` points,
    else UMAP's choice (500). ``init``: starting coordinates ``(n, 2)`` (default: the PCA map,
    instant, where UMAP's spectral start solves an eigenproblem of the kNN graph; UMAP rescales
    each axis to [0, 10] first). ``progress(stage, done, total)`` is called as the stages advance
    (at most about once a second): "nearest-neighbour graph" (rows searched, large sets only),
    then "layout" (epochs). ``learning_rate``: UMAP's initial step size (its default 1).
    """
    import umap

    if not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 2:
        raise ValueError(f"n_neighbors must be an integer >= 2, got {n_neighbors!r}")
    if not 0.0 <= float(min_dist) <= 1.0:
        raise ValueError(f"min_dist must be in [0, 1], got {min_dist!r}")
    x = l2_normalise(embeddings)
    n = len(x)
    if n < MIN_UMAP_POINTS:
        raise ValueError(f"UMAP needs at least {MIN_UMAP_POINTS} points, got {n}")
    n_neighbors = int(min(n_neighbors, n - 1))
    if n_epochs is None and n > LARGE_SET:
        n_epochs = LARGE_SET_EPOCHS
    searched = None if progress is None else partial(progress, "nearest-neighbour graph")
    knn_indices, knn_dists = map_neighbours(x, n_neighbors, searched)
    start = pca_projection(x) if init is None else init
    reducer = umap.UMAP(
        n_neighbors=n_neighbors,
        min_dist=float(min_dist),
        metric="cosine",
        random_state=int(seed),
        n_jobs=1,
        n_epochs=n_epochs,
        learning_rate=float(learning_rate),
        init=np.asarray(start, dtype=np.float64),
        precomputed_knn=(knn_indices, knn_dists),
        tqdm_kwds=None if progress is None else _epoch_counter(partial(progress, "layout")),
    )
    with warnings.catch_warnings():
        # "transform() unavailable without an NNDescent index": we never transform new points
        warnings.filterwarnings("ignore", message=r".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=r".*n_jobs value.*")
        coords = reducer.fit_transform(x)
    return np.asarray(coords, dtype=np.float32)


class _EpochLine:
    """A file for tqdm: each ``done/total`` it writes becomes a ``progress(done, total)`` call."""

    def __init__(self, progress: Callable[[int, int], None]):
        self.progress = progress

    def write(self, text: str) -> None:
        for done, total in re.findall(r"(\d+)/(\d+)", text):
            self.progress(int(done), int(total))

    def flush(self) -> None:
        pass


def _epoch_counter(progress: Callable[[int, int], None]) -> dict:
    """UMAP's ``tqdm_kwds`` that report its epoch loop to ``progress`` instead of a terminal."""
    return {"disable": False, "file": _EpochLine(progress), "bar_format": "{n}/{total}",
            "mininterval": 1.0, "desc": ""}  # fmt: skip


def pca_projection(embeddings: np.ndarray, fit_rows: int = PCA_FIT_ROWS) -> np.ndarray:
    """The first two principal components ``(n, 2)`` float32 of the L2-normalised embeddings.

    Signs are fixed (each axis's largest loading is positive), so the map is deterministic.
    One-dimensional embeddings get a zero second axis. Above ``fit_rows`` samples the axes are
    fitted on a seeded sample of ``fit_rows`` of them, then every sample is projected: at
    200k x 512 on 2 cores 1.8 s and 1.4 GB peak instead of 15 s and 2.2 GB, the plane keeping
    97 % (1,000 blob classes: a flat spectrum) to 99.5 % (20 classes) of the variance the exact
    plane keeps.
    """
    embeddings = np.asarray(embeddings)
    n = len(embeddings)
    fit = embeddings
    if n > fit_rows:
        fit = embeddings[np.sort(np.random.default_rng(0).choice(n, size=fit_rows, replace=False))]
    fit = l2_normalise(fit)  # rows normalised one by one: a sample's rows as in the whole
    mean = fit.mean(axis=0, dtype=np.float64)
    centred = fit.astype(np.float64) - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    axes = eigenvectors[:, np.argsort(eigenvalues)[::-1][:2]]
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    coords = np.zeros((n, 2), dtype=np.float32)
    for start in range(0, n, fit_rows):  # in blocks: no normalised or float64 copy of them all
        block = l2_normalise(embeddings[start : start + fit_rows]).astype(np.float64) - mean
        coords[start : start + fit_rows, : axes.shape[1]] = block @ axes
    return coords


def trustworthiness_score(
    embeddings: np.ndarray,
    coords: np.ndarray,
    n_neighbors: int = 10,
    max_points: int = 2000,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """How faithful a map is: sklearn's trustworthiness (1 = every map neighbour is a true
    neighbour; about 0.5 = random) on a seeded subsample of at most ``max_points`` points.

    Returns ``{"trustworthiness": value or None, "points": m, "n_neighbors": k}``; None when the
    subsample is too small for ``k >= 1`` (sklearn needs ``k < m / 2``).
    """
    from sklearn.manifold import trustworthiness

    embeddings, coords = np.asarray(embeddings), np.asarray(coords, dtype=np.float64)
    if coords.shape != (len(embeddings), 2):
        raise ValueError(f"coords must be ({len(embeddings)}, 2), got {coords.shape}")
    m = min(len(embeddings), int(max_points))
    k = min(int(n_neighbors), (m - 1) // 2)
    if k < 1:
        return {"trustworthiness": None, "points": m, "n_neighbors": k}
    rows = np.sort(np.random.default_rng(seed).choice(len(embeddings), size=m, replace=False))
    x = l2_normalise(embeddings[rows])  # the subsample only: rows are normalised one by one
    value = trustworthiness(x, coords[rows], n_neighbors=k)
    return {"trustworthiness": float(value), "points": m, "n_neighbors": k}
