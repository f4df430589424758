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
  (Recall@K, P@1, R-Precision, MAP@R, full-ranking mAP) and the top-20 table, from the symmetric
  similarity matrix, each tile computed once (``dmlviz/evaluate/symmetric.py``). Target at 100k:
  ``ours_s / faiss_s <= 0.6``. ``peak_mb`` is the largest traced allocation total during it
  (tracemalloc), next to the ``n x n`` float32 matrix it never builds;
* ``rows_s``: the same call scanning query row blocks against all references, as before issue 19
  (``retrieval.SYMMETRIC = False``), and ``max_diff_vs_rows``, the largest difference between its
  metrics and ours. The three are timed interleaved (``time_fns``), so load hits them alike;
* FLOP rates: ``gflop_useful`` = 2 n^2 d, the products of the full matrix (what faiss and the
  row-block scan compute), ``gflop_computed`` what the symmetric scan computes (tiles on and
  above the diagonal; diagonal tiles in full); ``gflops_*`` divide them by the times. Beside them
  ``gflops_sgemm``, one large float32 product by numpy's BLAS on all cores, measured next to each
  record, and ``gflops_peak``, the CPU's theoretical float32 peak (``cpu_peak``, derivation in
  the ``settings``);
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

import os
import time
import tracemalloc
from pathlib import Path

import faiss
import numpy as np
import torch
from _common import machine_info, parse_args, time_fn, time_fns, write_result

from dmlviz.evaluate import (
    cluster_scores,
    kmeans_plan,
    retrieval,
    retrieval_metrics,
    similarity,
    ties,
)
from dmlviz.evaluate.knn import (
    APPROXIMATE_ENERGY,
    CANDIDATES,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    _drop_self,
    _projection,
)
from dmlviz.evaluate.retrieval import BLOCK_BYTES, _global, _per_query, _rerank
from dmlviz.evaluate.symmetric import TILE, Tiling, tile_side

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


def cpu_peak() -> tuple[float, str]:
    """The CPUs' theoretical float32 peak in GFLOP/s, and how it was derived: cores x clock x
    FLOPs per cycle, from /proc/cpuinfo. Per core and cycle: 2 FMA pipes x float32 lanes x 2 (an
    FMA is a multiply and an add); lanes from the widest SIMD flag (avx512f 16, avx 8, else 4),
    at most 8 on AMD before Zen 5 (family < 26), whose pipes are 256 bits wide and take a 512-bit
    instruction in two halves. The clock is "cpu MHz": in a VM the nominal clock, which boost can
    exceed (then a measured rate can pass this "peak")."""
    info: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    flags = set(info.get("flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if "avx" in flags else 4
    amd_halves = info.get("vendor_id") == "AuthenticAMD" and int(info.get("cpu family", 0)) < 26
    if amd_halves:
        lanes = min(lanes, 8)
    per_cycle = 2 * lanes * (2 if "fma" in flags else 1)
    cores = len(os.sched_getaffinity(0))
    ghz = float(info.get("cpu MHz", "nan")) / 1000
    how = (
        f"{cores} cores x {ghz:.3f} GHz ('cpu MHz') x {per_cycle} float32 FLOPs/cycle "
        f"(2 FMA pipes x {lanes} lanes x {2 if 'fma' in flags else 1}; "
        f"{'avx512f' if 'avx512f' in flags else 'avx' if 'avx' in flags else 'sse'}"
        f"{', fma' if 'fma' in flags else ''}"
        f"{', AMD family < 26: 256-bit pipes' if amd_halves else ''})"
    )
    return cores * ghz * per_cycle, how


def sgemm_gflops(x: np.ndarray) -> float:
    """GFLOP/s of numpy's BLAS, on all its threads, for one (m x d) @ (d x m / 2) float32 product
    of rows of ``x`` (m = 8192, or fewer rows when ``x`` is smaller); median of 3 after one."""
    m = min(len(x), 8192)
    a, b = x[:m], x[len(x) - m // 2 :].T
    out = np.empty((m, m // 2), dtype=np.float32)
    seconds = time_fn(lambda: np.matmul(a, b, out=out), warmup=1, reps=3)["median_s"]
    return 2 * m * (m // 2) * x.shape[1] / seconds / 1e9


def exact_record(n: int, reps: int, with_clustering: bool) -> dict:
    x, labels = synthetic(n)
    load = os.getloadavg()[0]
    warmup = int(n <= 10_000)
    last = {"peak": 0}  # the timed calls' results, kept rather than computed once more

    def ours_fn() -> None:
        tracemalloc.reset_peak()
        last["ours"] = retrieval_metrics(x, labels, clustering=False).metrics
        last["peak"] = max(last["peak"], tracemalloc.get_traced_memory()[1])

    def rows_fn() -> None:
        retrieval.SYMMETRIC = False
        try:
            last["rows"] = retrieval_metrics(x, labels, clustering=False).metrics
        finally:
            retrieval.SYMMETRIC = True

    tracemalloc.start()
    times = time_fns(
        {"faiss": lambda: bare_faiss(x), "ours": ours_fn, "rows": rows_fn}, warmup=warmup, reps=reps
    )
    tracemalloc.stop()
    faiss_s, ours_s, rows_s = (times[name]["median_s"] for name in ("faiss", "ours", "rows"))
    ours, rows = last["ours"], last["rows"]
    start = time.perf_counter()
    theirs = accuracy_calculator(x, labels)
    pml_seconds = time.perf_counter() - start
    useful = 2 * n * n * D
    computed = Tiling.of(np.sort(labels), tile_side(n)).matmul_flops(D)
    ratio = ours_s / faiss_s
    compared = [key for key, value in rows.items() if isinstance(value, float)]
    record = {
        "n": n,
        "d": D,
        "classes": n // PER_CLASS,
        "faiss_s": round(faiss_s, 3),
        "ours_s": round(ours_s, 3),
        "ours_iqr_s": round(times["ours"]["iqr_s"], 3),
        "rows_s": round(rows_s, 3),
        "ratio_to_faiss": round(ratio, 3),
        "ratio_to_rows": round(ours_s / rows_s, 3),
        "within_0.6x": ratio <= 0.6,
        "pml_s": round(pml_seconds, 3),
        "pml_over_ours": round(pml_seconds / ours_s, 2),
        "max_diff_vs_pml": max(abs(ours[a] - theirs[b]) for a, b in PML_KEYS),
        "max_diff_vs_rows": max(abs(ours[key] - rows[key]) for key in compared),
        "map@r": round(ours["map@r"], 4),
        "map": round(ours["map"], 4),
        "precision@1": round(ours["precision@1"], 4),
        "peak_mb": round(last["peak"] / 2**20, 1),
        "n_by_n_mb": round(n * n * 4 / 2**20, 1),
        "gflop_useful": round(useful / 1e9, 1),
        "gflop_computed": round(computed / 1e9, 1),
        "gflops_useful": round(useful / ours_s / 1e9, 1),
        "gflops_computed": round(computed / ours_s / 1e9, 1),
        "gflops_faiss": round(useful / faiss_s / 1e9, 1),
        "gflops_sgemm": round(sgemm_gflops(x), 1),
        "gflops_peak": round(cpu_peak()[0], 1),
        "load_avg": round(load, 2),
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
    fixed = similarity.fixed_point(x)
    _, _, found_relevant = _rerank(fixed, fixed, found, labels, labels)  # the lists, as ours
    scores = ties.expected_scores(relevant, found_relevant, (1, 2, 4, 8), complete=False)
    return _global(_per_query(labels, relevant, scores), scores, (1, 2, 4, 8), complete=False)


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
        reps = 3 if n <= 10_000 else 2 if n <= 50_000 else 1  # 100k: ~4 min a repetition
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
            "symmetric_tile": f"min({TILE}, n / 4)",
            "cpu_peak": cpu_peak()[1],
            "approximate": f"HNSW (M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION}, "
            f"efSearch=max({HNSW_EF_SEARCH}, 2k')) in a projection keeping "
            f"{APPROXIMATE_ENERGY:.0%} of the squared norms, k' = {CANDIDATES}k candidates "
            "re-ranked exactly",
        },
        "exact": exact,
        "approximate": approximate,
        "notes": (
            "exact: the symmetric scan computes gflop_computed of the gflop_useful that faiss and "
            "the row-block scan (rows_s) compute; gflops_useful = gflop_useful / ours_s can "
            "therefore pass gflops_sgemm. gflops_peak = " + cpu_peak()[1] + ". load_avg: the "
            "1-minute load average as each record began (other jobs share the machine). 100k is "
            "timed once (reps 1)."
        ),
    }
    print(write_result("eval_speed", payload))


if __name__ == "__main__":
    main()
