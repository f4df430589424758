"""UMAP maps: with the kNN graph from faiss (``dmlviz.project.umap_projection``) against UMAP's own
neighbour search (pynndescent, or exact pairwise distances below 4,096 points), and PCA.

Data: synthetic 128-d embeddings, classes of 8 (centre ~ N(0, I) plus 1.5 N(0, I)),
L2-normalised; n = 10k and 50k. Both UMAP runs use the same parameters
(n_neighbors 15, min_dist 0.1, cosine, seed 0: one thread, as a seed forces) and are timed once
after a 5,000-point warm-up fit that pays numba's compilation. Reported: seconds of each map, the faiss search
alone, and each map's trustworthiness (10 neighbours, 2,000-point subsample). ``--quick`` maps 100
points for 20 epochs with numba's JIT off (compiling alone takes half a minute): it only checks
that the script runs.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
from _common import machine_info, parse_args, write_result

from dmlviz.evaluate import knn
from dmlviz.project import pca_projection, trustworthiness_score, umap_projection

D = 128


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(n // 8), 8))
    centres = rng.standard_normal((n // 8, D), dtype=np.float32)
    x = centres[labels] + 1.5 * rng.standard_normal((len(labels), D), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def umap_own_knn(x: np.ndarray, n_epochs: int | None = None) -> np.ndarray:
    import umap

    reducer = umap.UMAP(
        n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0, n_jobs=1, n_epochs=n_epochs
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*n_jobs value.*")
        return reducer.fit_transform(x)


def seconds(fn) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if args.quick:
        os.environ["NUMBA_DISABLE_JIT"] = "1"  # read when umap (numba) is first imported, below
    else:
        # numba compiles UMAP's kernels on the first fit, and pynndescent's only above 4096 points
        warm = synthetic(5000, seed=1)
        umap_projection(warm, n_epochs=5)
        umap_own_knn(warm, n_epochs=5)
    records = []
    epochs = 20 if args.quick else None
    for n in (100,) if args.quick else (10_000, 50_000):
        x = synthetic(n)
        knn_s, _ = seconds(lambda x=x: knn(x, k=14))
        ours_s, ours = seconds(lambda x=x: umap_projection(x, n_epochs=epochs))
        own_s, own = seconds(lambda x=x: umap_own_knn(x, n_epochs=epochs))
        pca_s, pca = seconds(lambda x=x: pca_projection(x))
        record = {
            "n": n,
            "d": D,
            "epochs": epochs or "umap default",
            "faiss_knn_s": round(knn_s, 3),
            "umap_faiss_knn_s": round(ours_s, 3),
            "umap_own_knn_s": round(own_s, 3),
            "speedup": round(own_s / ours_s, 2),
            "pca_s": round(pca_s, 3),
            "trust_umap_faiss": round(trustworthiness_score(x, ours)["trustworthiness"], 4),
            "trust_umap_own": round(trustworthiness_score(x, own)["trustworthiness"], 4),
            "trust_pca": round(trustworthiness_score(x, pca)["trustworthiness"], 4),
        }
        records.append(record)
        print(record, flush=True)
    print(
        write_result(
            "umap_speed", {"machine": machine_info(), "quick": args.quick, "maps": records}
        )
    )


if __name__ == "__main__":
    main()
