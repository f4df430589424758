"""Retrieval evaluation speed: dmlviz's exact evaluation against a bare faiss search and against
pytorch-metric-learning's AccuracyCalculator, plus the approximate (HNSW) mode's speed and error.

Data (d = 512, 8 samples per class, L2-normalised):

* synthetic: class centres ~ N(0, I), samples = centre + 2 N(0, I) (MAP@R about 0.7-0.8);
* real-ish, "noisy copies of trained digits embeddings": an MLP 64-512-10 trained on sklearn's
  digits; its 512-d ReLU hidden layer embeds n / 8 classes, each a random digits image plus
  N(0, 0.4^2) pixel noise, whose 8 samples add N(0, 0.25^2) pixel noise (MAP@R about 0.65).

Per n (10k, 50k, 100k; --quick: 2k), in one process on the same data:

* ``faiss_s``: build IndexFlatIP and search every sample's top_k + 1 neighbours (the bare search);
* ``ours_s``: ``retrieval_metrics(..., clustering=False)``: global and per-query metrics
  (Recall@K, P@1, R-Precision, MAP@R, full-ranking mAP) and the top-20 table. Target:
  ``ours_s / faiss_s <= 1.1``. ``peak_mb`` is the largest traced allocation total during it
  (tracemalloc), next to the ``n x n`` float32 matrix it never builds;
* ``pml_s``: AccuracyCalculator(P@1, R-Precision, MAP@R, k="max_bin_count"), and the largest
  difference between its values and ours;
* ``nmi_ami_s``: pytorch-metric-learning's full k-means (one cluster per class, 20 iterations)
  behind NMI / AMI, timed apart; measured at the smallest n only. The default, cut k-means
  against the search: benchmarks/cluster_speed.py.

Approximate mode on the real-ish set (100k; --quick: 2k): ``retrieval_metrics(exact=False)``
(an HNSW graph in a projection, here 64-d, candidates re-ranked exactly: evaluate/knn.py) time
and the error of every ranking metric against exact (``error_*`` signed, ``max_error``), next to
the HNSW graph of the 512-d vectors it replaces, timed interleaved with it. Target: under 15 s,
errors <= 0.005. Its NMI / AMI: as ``nmi_method`` says (skipped by default at 12,500 classes);
its mAP is None (it needs the full ranking).
"""

from __future__ import annotations

import time
import tracemalloc

import faiss
import numpy as np
import torch
from _common import machine_info, parse_args, time_fn, time_fns, write_result

from dmlviz.evaluate import cluster_scores, kmeans_plan, retrieval_metrics
from dmlviz.evaluate.knn import (
    APPROXIMATE_ENERGY,
    CANDIDATES,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    _drop_self,
    _projection,
)
from dmlviz.evaluate.retrieval import BLOCK_BYTES, _global, _per_query

D = 512
PER_CLASS = 8
TOP_K = 20
PML_KEYS = (
    ("precision@1", "precision_at_1"),
    ("r_precision", "r_precision"),
    ("map@r", "mean_average_precision_at_r"),
)


def synthetic(n: int, seed: int = 0, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes of ``per_class`` (8) in 512-d, shuffled and L2-normalised."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(n // per_class), per_class))
    centres = rng.standard_normal((n // per_class, D), dtype=np.float32)
    x = centres[labels] + 2.0 * rng.standard_normal((len(labels), D), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def digits_mlp() -> torch.nn.Module:
    """The 512-d ReLU hidden layer of an MLP trained on sklearn digits (60 full-batch Adam steps,
    written out: ``torch.optim`` would import torch._dynamo, seconds of a quick run). One torch
    thread: this net is too small to gain from more, and loses a lot on a busy machine."""
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    net = torch.nn.Sequential(torch.nn.Linear(64, D), torch.nn.ReLU(), torch.nn.Linear(D, 10))
    params = list(net.parameters())
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    for step in range(1, 61):
        torch.nn.functional.cross_entropy(net(x), y).backward()
        with torch.no_grad():
            for p, m, v in zip(params, first, second, strict=True):
                m.mul_(0.9).add_(p.grad, alpha=0.1)
                v.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                p -= 1e-2 * (m / (1 - 0.9**step)) / ((v / (1 - 0.999**step)).sqrt() + 1e-8)
                p.grad = None
    return net[:2].eval()


def realish(n: int, seed: int = 0, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """n / ``per_class`` (8) classes of noisy copies of digits images, embedded by the MLP."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    images = load_digits().data.astype(np.float32) / 16.0
    classes = n // per_class
    centres = images[rng.integers(0, len(images), classes)]
    centres += 0.4 * rng.standard_normal(centres.shape, dtype=np.float32)
    labels = np.repeat(np.arange(classes), per_class)
    inputs = centres[labels] + 0.25 * rng.standard_normal((len(labels), 64), dtype=np.float32)
    embed = digits_mlp()
    with torch.no_grad():
        x = embed(torch.from_numpy(inputs)).numpy()
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def bare_faiss(x: np.ndarray) -> None:
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    index.search(x, TOP_K + 1)


def accuracy_calculator(x: np.ndarray, labels: np.ndarray) -> dict:
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    calculator = AccuracyCalculator(
        include=tuple(name for _, name in PML_KEYS), k="max_bin_count", device=torch.device("cpu")
    )
    return calculator.get_accuracy(x, labels)


def exact_record(n: int, reps: int, with_clustering: bool) -> dict:
    x, labels = synthetic(n)
    warmup = int(n <= 10_000)
    faiss_time = time_fn(lambda: bare_faiss(x), warmup=warmup, reps=reps)
    last = {}  # the timed calls' result, kept rather than computed once more

    def ours_fn() -> None:
        last["metrics"] = retrieval_metrics(x, labels, clustering=False).metrics

    tracemalloc.start()
    ours_time = time_fn(ours_fn, warmup=warmup, reps=reps)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ours = last["metrics"]
    start = time.perf_counter()
    theirs = accuracy_calculator(x, labels)
    pml_seconds = time.perf_counter() - start
    ratio = ours_time["median_s"] / faiss_time["median_s"]
    record = {
        "n": n,
        "d": D,
        "classes": n // PER_CLASS,
        "faiss_s": round(faiss_time["median_s"], 3),
        "ours_s": round(ours_time["median_s"], 3),
        "ours_iqr_s": round(ours_time["iqr_s"], 3),
        "ratio_to_faiss": round(ratio, 3),
        "within_1.1x": ratio <= 1.1,
        "pml_s": round(pml_seconds, 3),
        "pml_over_ours": round(pml_seconds / ours_time["median_s"], 2),
        "max_diff_vs_pml": max(abs(ours[a] - theirs[b]) for a, b in PML_KEYS),
        "map@r": round(ours["map@r"], 4),
        "map": round(ours["map"], 4),
        "precision@1": round(ours["precision@1"], 4),
        "peak_mb": round(peak / 2**20, 1),
        "n_by_n_mb": round(n * n * 4 / 2**20, 1),
        "reps": reps,
    }
    if with_clustering:
        start = time.perf_counter()
        cluster_scores(x, labels)
        record["nmi_ami_s"] = round(time.perf_counter() - start, 3)
    return record


RANKING_KEYS = (
    "recall@1",
    "recall@2",
    "recall@4",
    "recall@8",
    "precision@1",
    "r_precision",
    "map@r",
)


def hnsw_512d(x: np.ndarray, labels: np.ndarray) -> dict:
    """The approximate mode before the 64-d projection: an HNSW graph of the 512-d vectors (M 16,
    efConstruction 40, efSearch max(128, 2k)) searched for the top-20; its ranking metrics."""
    index = faiss.IndexHNSWFlat(D, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(x)
    index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * (TOP_K + 1))
    sims, found = index.search(x, TOP_K + 1)
    _, found = _drop_self(sims, found, np.arange(len(x)))
    relevant = np.bincount(labels)[labels] - 1
    row, position = np.nonzero(labels[found] == labels[:, None])
    per_query = _per_query(labels, relevant, row, position + 1, complete=False)
    return _global(per_query, (1, 2, 4, 8), complete=False)


def approximate_record(n: int, reps: int) -> dict:
    x, labels = realish(n)
    start = time.perf_counter()
    exact = retrieval_metrics(x, labels, clustering="off").metrics
    exact_seconds = time.perf_counter() - start
    last = {}

    def approximate_fn() -> None:
        last["ours"] = retrieval_metrics(x, labels, exact=False, clustering="off").metrics

    def hnsw_fn() -> None:
        last["hnsw"] = hnsw_512d(x, labels)

    timing = time_fns({"ours": approximate_fn, "hnsw": hnsw_fn}, warmup=0, reps=reps)
    ours = max(abs(last["ours"][key] - exact[key]) for key in RANKING_KEYS)
    hnsw = max(abs(last["hnsw"][key] - exact[key]) for key in RANKING_KEYS)
    seconds = timing["ours"]["median_s"]
    projection = _projection(x)
    return {
        "n": n,
        "d": D,
        "data": "real-ish (noisy copies of trained digits-MLP embeddings)",
        "projection_dims": None if projection is None else projection.d_out,
        "exact_s": round(exact_seconds, 3),
        "approximate_s": round(seconds, 3),
        "hnsw_512d_s": round(timing["hnsw"]["median_s"], 3),
        "speedup_vs_hnsw_512d": round(timing["hnsw"]["median_s"] / seconds, 2),
        "under_15s": seconds < 15,
        "exact_map@r": round(exact["map@r"], 4),
        "exact_precision@1": round(exact["precision@1"], 4),
        **{f"error_{key}": round(last["ours"][key] - exact[key], 4) for key in RANKING_KEYS},
        "max_error": round(ours, 4),
        "hnsw_512d_max_error": round(hnsw, 4),
        "errors_within_0.005": ours <= 0.005,
        "nmi_method": kmeans_plan("auto", n, n, len(np.unique(labels)), D, exact=False).method,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes = (2_000,) if args.quick else (10_000, 50_000, 100_000)
    exact = []
    for i, n in enumerate(sizes):
        reps = 3 if n <= 10_000 else 2
        exact.append(exact_record(n, reps, with_clustering=i == 0))
        print(exact[-1], flush=True)
    approximate = [approximate_record(2_000 if args.quick else 100_000, 1 if args.quick else 2)]
    print(approximate[-1], flush=True)
    payload = {
        "machine": machine_info(),
        "quick": args.quick,
        "threads": faiss.omp_get_max_threads(),
        "settings": {
            "top_k": TOP_K,
            "block_bytes_per_thread": BLOCK_BYTES,
            "approximate": f"HNSW (M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION}, "
            f"efSearch=max({HNSW_EF_SEARCH}, 2k')) in a projection keeping "
            f"{APPROXIMATE_ENERGY:.0%} of the squared norms, k' = {CANDIDATES}k candidates "
            "re-ranked exactly",
        },
        "exact": exact,
        "approximate": approximate,
    }
    print(write_result("eval_speed", payload))


if __name__ == "__main__":
    main()
