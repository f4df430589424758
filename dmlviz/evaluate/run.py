"""Evaluate a run directory: retrieval metrics of each embedded split, neighbour consistency of train."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dmlviz.evaluate.clustering import CLUSTERING
from dmlviz.evaluate.consistency import neighbour_consistency
from dmlviz.evaluate.replay import evaluate_replay, replay_summary
from dmlviz.evaluate.retrieval import retrieval_metrics
from dmlviz.runs import Run, RunError
from dmlviz.runs.files import LABELS, embeddings_file, eval_metrics_file
from dmlviz.runs.imported import imported_info, is_imported
from dmlviz.validate import check_choice, check_flag

# Splits evaluated as self-retrieval (each query against the rest of its split), in this order.
SELF_RETRIEVAL_SPLITS = ("test", "val", "train")


def evaluate_run(
    run: Run, k: int = 10, top_k: int = 20, clustering: str = "auto", exact: bool = True
) -> dict[str, Any]:
    """Evaluate every embedded split of ``run`` and write ``eval/`` (``Run.save_eval``,
    ``Run.save_consistency``).

    * ``test``, ``val``, ``train``: each split's queries against the rest of the same split;
      for In-Shop-style runs with ``query`` and ``gallery`` embeddings, the query split against
      the gallery is stored as ``test`` (its metrics say so in ``query_split`` /
      ``reference_split``, and its neighbour indices point into the gallery).
    * ``train`` also gets neighbour consistency with ``k`` neighbours, using the labels the run
      was trained on (``labels.npz``; without it, the clean labels and no flips).

    * a run with training replay also gets its per-snapshot metrics (``evaluate_replay``).

    ``top_k``: neighbours kept per query for the dashboard. ``clustering`` (one of
    ``CLUSTERING``) and ``exact``: as in ``retrieval_metrics``. Returns ``{split: metrics, ...,
    "consistency": summary or None}``, plus ``"replay": replay_summary(...)`` with replay. Raises ``RunError`` when the run has no embeddings.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    check_choice("clustering", clustering, CLUSTERING)
    check_flag("exact", exact)
    options = {"top_k": top_k, "clustering": clustering, "exact": exact}
    missing = missing_splits(run)
    if missing:
        split, why = missing[0]
        raise RunError(
            f"{run.path} has no embeddings of its {split} split ({embeddings_file(split)}), which "
            f"{why}; nothing was evaluated (no result of the other splits alone): "
            f"{run.embed_hint(split)}"
        )
    results: dict[str, Any] = {}
    if run.has_embeddings("query") and run.has_embeddings("gallery"):
        query, query_labels = run.embeddings("query")
        gallery, gallery_labels = run.embeddings("gallery")
        results["test"] = _evaluate_split(
            run,
            "test",
            (query, query_labels),
            (gallery, gallery_labels),
            options,
            "query",
            "gallery",
        )
    for split in SELF_RETRIEVAL_SPLITS:
        if split in results or not run.has_embeddings(split):
            continue
        results[split] = _evaluate_split(
            run, split, run.embeddings(split), None, options, split, split
        )
    if not results:
        raise RunError(f"{run.path} has no embeddings to evaluate: {run.embed_hint()}")
    results["consistency"] = _consistency(run, k) if run.has_embeddings("train") else None
    if run.replay_epochs():
        results["replay"] = replay_summary(evaluate_replay(run, k))
    return results


def missing_splits(run: Run) -> list[tuple[str, str]]:
    """The splits ``run`` should have embeddings of but lacks, each with why it should: the
    splits it was evaluated on before (their ``eval/`` results would be left stale) and the
    splits an imported run was imported with. Returns ``[(split, why), ...]``."""
    expected: dict[str, str] = {}
    for split in SELF_RETRIEVAL_SPLITS:
        if not (run.path / eval_metrics_file(split)).is_file():
            continue
        try:
            metrics = run.eval_metrics(split) or {}
        except RunError:
            metrics = {}
        used = {metrics.get("query_split", split), metrics.get("reference_split", split)}
        for name in sorted(used):
            expected.setdefault(name, f"{eval_metrics_file(split)} was computed from")
    if is_imported(run.config):
        for name in (imported_info(run) or {}).get("counts", {}):
            expected.setdefault(name, "the run was imported with")
    return [(split, why) for split, why in expected.items() if not run.has_embeddings(split)]


def _evaluate_split(
    run: Run,
    split: str,
    queries: tuple[np.ndarray, np.ndarray],
    references: tuple[np.ndarray, np.ndarray] | None,
    options: dict[str, Any],
    query_split: str,
    reference_split: str,
) -> dict[str, Any]:
    """Evaluate one split with ``retrieval_metrics(**options)``, store it under
    ``eval/<split>_*``; returns its metrics."""
    start = time.perf_counter()
    ref_emb, ref_labels = references if references is not None else (None, None)
    result = retrieval_metrics(queries[0], queries[1], ref_emb, ref_labels, **options)
    metrics = {
        **result.metrics,
        "query_split": query_split,
        "reference_split": reference_split,
        "top_k": int(result.neighbours.shape[1]),
        "seconds": round(time.perf_counter() - start, 3),
    }
    run.save_eval(split, metrics, result.per_query, result.neighbours, result.similarities)
    return metrics


def _consistency(run: Run, k: int) -> dict[str, Any]:
    """Neighbour consistency of the train split against the labels it was trained with."""
    embeddings, clean = run.embeddings("train")
    noisy = run.labels()
    if noisy is None:
        observed, flipped, rate, kind = clean, np.zeros(len(clean), dtype=bool), 0.0, "none"
    else:
        if len(noisy.clean) != len(clean) or not np.array_equal(noisy.clean, clean):
            raise RunError(
                f"{run.path}: {LABELS} and {embeddings_file('train')} list different samples; "
                f"re-embed the run with `dmlviz embed {run.path}`"
            )
        observed, flipped, rate, kind = noisy.observed, noisy.flipped, noisy.rate, noisy.kind
    if len(clean) < 2:
        raise RunError(f"{run.path}: the train split has {len(clean)} sample(s); need at least 2")
    result = neighbour_consistency(embeddings, observed, clean, flipped, k=min(k, len(clean) - 1))
    summary = {**result.summary, "configured_noise_rate": float(rate), "noise_kind": kind}
    run.save_consistency(summary, result.per_sample)
    return summary
