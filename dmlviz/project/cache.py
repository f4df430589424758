"""Compute a run's maps once: ``projection_file(split, method)`` plus a JSON sidecar with the
parameters (and a fingerprint of the embeddings) it was made from and its trustworthiness. A map
is recomputed only when those parameters change, or on request."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dmlviz.project.maps import pca_projection, trustworthiness_score, umap_projection
from dmlviz.project.replay import project_replay
from dmlviz.runs import Run, RunError
from dmlviz.runs.files import MAP_METHODS

FORMAT_VERSION = 1


def project_run(
    run: Run,
    splits: Sequence[str] = ("train", "test"),
    methods: Sequence[str] = MAP_METHODS,
    force: bool = False,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, str]:
    """Make (or reuse) the ``methods`` maps of each embedded split in ``splits`` of ``run``.

    The UMAP parameters are ``n_neighbors``, ``min_dist``, ``seed``. A stored map is reused when
    its sidecar's ``params`` match (same method, parameters and embeddings); ``force``
    recomputes. ``progress(stage, done, total)`` follows each UMAP's stages (``umap_projection``).
    With "umap", a run with training replay also gets its aligned replay layout
    (``project_replay``, key ``replay_umap``). Returns ``{"<split>_<method>": "computed" |
    "cached" | "skipped: <why>"}``.
    Raises ``RunError`` when none of ``splits`` has embeddings.
    """
    methods = tuple(methods)
    unknown = [m for m in methods if m not in MAP_METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown map method(s) {unknown or methods}; choose from {MAP_METHODS}")
    splits = tuple(splits)
    if not any(run.has_embeddings(split) for split in splits):
        raise RunError(
            f"{run.path} has no embeddings for {', '.join(splits)}: run `dmlviz embed {run.path}`"
        )
    outcome: dict[str, str] = {}
    for split in splits:
        if not run.has_embeddings(split):
            for method in methods:
                outcome[f"{split}_{method}"] = "skipped: no embeddings"
            continue
        embeddings, _ = run.embeddings(split)
        # the array's own buffer: the same digest as its bytes, without a copy of them
        fingerprint = hashlib.sha256(
            memoryview(np.ascontiguousarray(embeddings)).cast("B")
        ).hexdigest()
        for method in methods:
            params: dict[str, Any] = {
                "method": method,
                "format": FORMAT_VERSION,
                "n": int(len(embeddings)),
                "embeddings_sha256": fingerprint,
            }
            if method == "umap":
                params.update(
                    n_neighbors=int(n_neighbors), min_dist=float(min_dist), seed=int(seed)
                )
            key = f"{split}_{method}"
            stored = None if force else run.projection(split, method)  # force: even a corrupt one
            if stored is not None and stored[1].get("params") == params:
                outcome[key] = "cached"
                continue
            if method == "umap" and len(embeddings) < 4:
                outcome[key] = f"skipped: {len(embeddings)} points are too few for UMAP"
                continue
            start = time.perf_counter()
            if method == "umap":
                coords = umap_projection(embeddings, n_neighbors, min_dist, seed, progress=progress)
            else:
                coords = pca_projection(embeddings)
            seconds = time.perf_counter() - start
            trust = trustworthiness_score(embeddings, coords, seed=seed)
            meta = {
                "split": split,
                "method": method,
                "params": params,
                "trustworthiness": trust["trustworthiness"],
                "trustworthiness_points": trust["points"],
                "trustworthiness_neighbors": trust["n_neighbors"],
                "seconds": round(seconds, 3),
                "created": time.time(),
            }
            run.save_projection(split, method, coords, meta)
            outcome[key] = "computed"
    if "umap" in methods and run.replay_epochs():
        outcome["replay_umap"] = project_replay(
            run, force=force, n_neighbors=n_neighbors, min_dist=min_dist, seed=seed
        )
    return outcome
