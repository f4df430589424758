"""NMI / AMI's k-means: its default (``clustering="auto"``) time against the search it comes with, and
its NMI / AMI against pytorch-metric-learning's full k-means (``clustering="full"``).

Data: the two sets of benchmarks/eval_speed.py (d = 512, L2-normalised): "real-ish" (noisy copies
of trained digits-MLP embeddings) and Gaussian classes, at n = 30k with 3,000 classes and n = 100k
with 12,500 classes (--quick: 2k / 250), self-retrieval.

Per set, in one process on the same data:

* ``search_s``: ``retrieval_metrics(clustering="off")``, the exact evaluation without k-means;
* ``kmeans_s``: the k-means of each candidate and its final assignment (``cluster_scores``), and
  ``ratio_to_search`` = ``kmeans_s / search_s``. Target for the default: <= 1;
* ``nmi_diff`` / ``ami_diff``: the candidate's NMI / AMI minus the full k-means'.

Candidates (at the smaller n; at 100k the first three, the full one costing minutes): ``full``
(20 iterations), ``auto`` (the default, ``clustering.kmeans_plan``: iterations cut to the
search's time, skipped below 12 references per class, then its time is 0), ``flops`` (iterations
cut to the search's multiply-adds, ``(iterations + 1) * k <= n``), ``sample`` (20 iterations on a
sample of as many multiply-adds: faiss's ``max_points_per_centroid``), ``pca64`` (20 iterations
after a PCA to 64 dimensions).
``seed_spread_*`` is the full k-means' own spread over three seeds (max - min), the scale on which
the differences are noise.
"""

from __future__ import annotations

import time

import faiss
import numpy as np
from _common import machine_info, parse_args, write_result
from eval_speed import D, realish, synthetic
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from dmlviz.evaluate import cluster_scores, kmeans_plan, retrieval_metrics
from dmlviz.evaluate.clustering import PML_ITERATIONS

SETS = {"real-ish": realish, "gaussian": synthetic}


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def kmeans_scores(x: np.ndarray, labels: np.ndarray, **options) -> tuple[float, float]:
    """NMI / AMI of a faiss k-means with ``options`` (ClusteringParameters fields)."""
    kmeans = faiss.Kmeans(x.shape[1], len(np.unique(labels)), min_points_per_centroid=1, **options)
    kmeans.train(x)
    clusters = kmeans.index.search(x, 1)[1][:, 0]
    return (
        normalized_mutual_info_score(labels, clusters),
        adjusted_mutual_info_score(labels, clusters),
    )


def pca64_scores(x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    pca = faiss.PCAMatrix(x.shape[1], 64)
    pca.train(x)
    y = pca.apply(x)
    return kmeans_scores(y / np.linalg.norm(y, axis=1, keepdims=True), labels, niter=PML_ITERATIONS)


def records(name: str, n: int, classes: int, candidates: bool) -> list[dict]:
    x, labels = SETS[name](n, per_class=n // classes)
    _, search_s = timed(lambda: retrieval_metrics(x, labels, clustering="off"))
    plan = kmeans_plan("auto", n, n, classes, D)
    flops = min(PML_ITERATIONS, n // classes - 1)  # as many multiply-adds as the search
    runs = {"full": lambda: cluster_scores(x, labels)}
    if plan.iterations not in (None, PML_ITERATIONS):
        runs["auto"] = lambda: cluster_scores(x, labels, plan.iterations)
    if flops != plan.iterations:
        runs[f"flops ({flops} iterations)"] = lambda: cluster_scores(x, labels, flops)
    if candidates:
        # the flop-parity multiply-adds spent on 20 iterations over a sample
        per_centroid = max(1, round(n * flops / PML_ITERATIONS / classes))
        runs["sample"] = lambda: kmeans_scores(
            x, labels, niter=PML_ITERATIONS, max_points_per_centroid=per_centroid
        )
        runs["pca64"] = lambda: pca64_scores(x, labels)
    results = {method: timed(fn) for method, fn in runs.items()}
    if plan.iterations is None:
        results["auto"] = ((None, None), 0.0)
    (full_nmi, full_ami), _ = results["full"]
    spread = {}
    if candidates:
        seeds = [results["full"][0]] + [kmeans_scores(x, labels, niter=20, seed=s) for s in (1, 2)]
        spread = {
            "seed_spread_nmi": round(float(np.ptp([s[0] for s in seeds])), 4),
            "seed_spread_ami": round(float(np.ptp([s[1] for s in seeds])), 4),
        }

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    rows = []
    for method, ((nmi, ami), seconds) in results.items():
        rows.append(
            {
                "data": name,
                "n": n,
                "classes": classes,
                "method": method,
                "default": method == "auto" or (method == "full" and plan.iterations == 20),
                "nmi_method": plan.method if method == "auto" else "",
                "search_s": round(search_s, 2),
                "kmeans_s": round(seconds, 2),
                "ratio_to_search": round(seconds / search_s, 3),
                "nmi": rounded(nmi),
                "ami": rounded(ami),
                "nmi_diff": None if nmi is None else round(nmi - full_nmi, 4),
                "ami_diff": None if ami is None else round(ami - full_ami, 4),
                **(spread if method == "full" else {}),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes = [(2_000, 250)] if args.quick else [(30_000, 3_000), (100_000, 12_500)]
    rows = []
    for i, (n, classes) in enumerate(sizes):
        for name in SETS if i == 0 else ("real-ish",):
            rows += records(name, n, classes, candidates=i == 0)
    payload = {
        "description": __doc__.split("\n\n")[0].replace("\n", " "),
        "machine": machine_info(),
        "quick": args.quick,
        "threads": faiss.omp_get_max_threads(),
        "kmeans": rows,
    }
    print(write_result("cluster_speed", payload))


if __name__ == "__main__":
    main()
