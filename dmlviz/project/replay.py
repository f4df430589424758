"""One 2-D layout of the training replay's train probe, aligned across snapshots, cached in the
run directory (``projections/replay_<method>.npz``) like the other maps.

Two ways (measured in docs/run-format.md, replay/):

* ``procrustes``: a UMAP per snapshot, fitted from the last epoch backwards, each one started
  from the layout of the snapshot after it (``WARM_EPOCHS`` epochs at ``WARM_LEARNING_RATE``)
  and then moved onto it by Procrustes (rotation, reflection, scale, translation), so a point
  moves only as far as its neighbourhood changed. UMAP stretches each axis of a starting layout
  to [0, 10], which Procrustes cannot undo; the start is first turned so that both axes span the
  same range (``square_ranges``), which makes that stretch a uniform scale;
* ``aligned``: umap-learn's ``AlignedUMAP`` over all snapshots at once (each point tied to
  itself in the neighbouring frames).

Each frame's trustworthiness (against that snapshot's embeddings) says how faithful it is.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from typing import Any

import numpy as np

from dmlviz.evaluate.knn import l2_normalise
from dmlviz.project.align import align_maps
from dmlviz.project.maps import trustworthiness_score, umap_projection
from dmlviz.runs import Run, RunError
from dmlviz.runs.run import replay_snapshot_file

ALIGNMENTS = ("procrustes", "aligned")
FORMAT_VERSION = 2  # 2: squared starts and the warm learning rate (older layouts are redone)
METHOD = "umap"  # the file name: projections/replay_umap.npz
WARM_EPOCHS = 100  # UMAP epochs of a frame started from the next frame's layout
# Its initial step size (UMAP's default 1 re-lays out an unchanged neighbourhood: an identical
# snapshot's frame moved by 5-27 % of the map's extent, against 4-15 % at 0.25; see
# tests/project/test_replay_layout.py)
WARM_LEARNING_RATE = 0.25


def aligned_layouts(
    frames: list[np.ndarray],
    alignment: str = "procrustes",
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """``(len(frames), n, 2)`` float32: one 2-D layout per embedding array of ``frames`` (row i is
    the same sample in each), in one frame of reference (``alignment``: see the module)."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    if alignment == "aligned":
        return _aligned_umap(frames, n_neighbors, min_dist, seed)
    layouts: list[np.ndarray] = [np.empty(0)] * len(frames)
    later = None
    for i in reversed(range(len(frames))):
        if later is None:
            coords = umap_projection(frames[i], n_neighbors, min_dist, seed)
        else:  # started near its answer: fewer, smaller steps
            coords = umap_projection(frames[i], n_neighbors, min_dist, seed, n_epochs=WARM_EPOCHS,
                                     init=square_ranges(later),
                                     learning_rate=WARM_LEARNING_RATE)  # fmt: skip
        layouts[i] = coords if later is None else align_maps(later, coords)
        later = layouts[i]
    return np.stack(layouts).astype(np.float32)


def square_ranges(coords: np.ndarray) -> np.ndarray:
    """``(n, 2)`` ``coords`` turned about the origin so that both axes span the same range (max -
    min): UMAP's per-axis stretch of a starting layout to [0, 10] is then a uniform scale. Such a
    turn exists in [0, 90 degrees): turning by 90 degrees swaps the two ranges; found by
    bisection."""
    coords = np.asarray(coords, dtype=np.float64)

    def turned(angle: float) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        return coords @ np.array([[c, -s], [s, c]])

    def wider(angle: float) -> float:  # x range minus y range; its sign flips over 90 degrees
        width, height = np.ptp(turned(angle), axis=0)
        return width - height

    low, high = 0.0, np.pi / 2
    if wider(low) > 0:
        low, high = high, low  # keep wider(low) <= 0 <= wider(high)
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if wider(middle) <= 0 else (low, middle)
    return turned((low + high) / 2)


def _aligned_umap(frames, n_neighbors, min_dist, seed) -> np.ndarray:
    import umap

    n = len(frames[0])
    relations = [{i: i for i in range(n)} for _ in frames[:-1]]
    reducer = umap.AlignedUMAP(
        n_neighbors=int(min(n_neighbors, n - 1)),
        min_dist=float(min_dist),
        metric="cosine",
        random_state=int(seed),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*n_jobs value.*")
        reducer.fit([l2_normalise(frame) for frame in frames], relations=relations)
    return np.stack([np.asarray(e, dtype=np.float32) for e in reducer.embeddings_])


def project_replay(
    run: Run,
    alignment: str = "procrustes",
    force: bool = False,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
) -> str:
    """Make (or reuse) the aligned layout of ``run``'s replay snapshots; returns "computed",
    "cached" or "skipped: <why>". Reused when the sidecar's ``params`` match (same alignment,
    parameters and snapshot files); ``force`` recomputes."""
    epochs = run.replay_epochs()
    if not epochs:
        return "skipped: no replay snapshots"
    digest = hashlib.sha256()
    for epoch in epochs:
        digest.update((run.path / replay_snapshot_file(epoch)).read_bytes())
    params: dict[str, Any] = {
        "alignment": alignment,
        "format": FORMAT_VERSION,
        "epochs": [int(e) for e in epochs],
        "snapshots_sha256": digest.hexdigest(),
        "n_neighbors": int(n_neighbors),
        "min_dist": float(min_dist),
        "seed": int(seed),
    }
    stored = None if force else run.replay_layout(METHOD)
    if stored is not None and stored[2].get("params") == params:
        return "cached"
    frames = [run.replay_snapshot(epoch)[0] for epoch in epochs]
    if len(frames[0]) < 4:
        raise RunError(f"{run.path}: the replay probe is too small for a map")
    start = time.perf_counter()
    coords = aligned_layouts(frames, alignment, n_neighbors, min_dist, seed)
    seconds = time.perf_counter() - start
    trust = [
        trustworthiness_score(frame, layout, seed=seed)["trustworthiness"]
        for frame, layout in zip(frames, coords, strict=True)
    ]
    meta = {
        "method": METHOD,
        "params": params,
        "trustworthiness": trust,
        "seconds": round(seconds, 3),
        "created": time.time(),
    }
    run.save_replay_layout(METHOD, np.asarray(epochs), coords, meta)
    return "computed"
