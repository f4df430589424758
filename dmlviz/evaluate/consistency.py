"""Neighbour consistency under label noise: do a sample's nearest neighbours share its label?

For a run trained on noisy labels, each training sample has an *observed* label (what the loss
saw), a *clean* label and a *flipped* flag (observed != clean). With ``idx`` its ``k`` nearest
neighbours (cosine, itself excluded):

* ``consistency_observed`` = share of ``idx`` whose observed label equals its observed label;
* ``consistency_clean``    = share of ``idx`` whose clean label equals its clean label;
* ``noise_score`` = 1 - ``consistency_observed``: high when the neighbourhood disagrees with the
  label the sample was given, so it ranks samples by how suspect their label is. Scored against
  the recorded flips: ROC AUC, average precision, and the precision of the ``n_flipped`` most
  suspect samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from dmlviz.evaluate.knn import knn


@dataclass
class ConsistencyResult:
    """What ``neighbour_consistency`` returns.

    ``summary``: ``k, n, n_flipped, noise_rate, consistency_clean, consistency_flipped,
    clean_label_consistency, detector_auroc, detector_ap, top_precision`` (None where undefined).
    ``per_sample``: one row per sample: ``index, observed, clean, flipped,
    consistency_observed, consistency_clean, noise_score``.
    """

    summary: dict[str, Any]
    per_sample: pd.DataFrame


def neighbour_consistency(
    embeddings: np.ndarray,
    observed: np.ndarray,
    clean: np.ndarray,
    flipped: np.ndarray,
    k: int = 10,
) -> ConsistencyResult:
    """Label agreement of each sample's ``k`` nearest neighbours, and how well the disagreement
    detects the flipped labels.

    ``summary["consistency_clean"]`` / ``["consistency_flipped"]``: mean observed-label agreement
    of the samples whose label was kept / flipped. ``clean_label_consistency``: mean clean-label
    agreement of all samples. ``detector_auroc`` / ``detector_ap``: ROC AUC and average precision
    of ``noise_score`` as a detector of ``flipped``. ``top_precision``: the share of flipped
    labels among the ``n_flipped`` highest scores (samples tied at the cut count by their share).
    Detector numbers are None when no label, or every label, was flipped.
    """
    observed, clean, flipped = (np.asarray(a) for a in (observed, clean, flipped))
    n = len(embeddings)
    for name, values in (("observed", observed), ("clean", clean), ("flipped", flipped)):
        if values.ndim != 1 or len(values) != n:
            raise ValueError(f"{name} must be a 1-D array of {n} values, got shape {values.shape}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise ValueError(f"k must be an integer in [1, {n - 1}] for {n} samples, got {k!r}")
    flipped = flipped.astype(bool)

    neighbours, _ = knn(embeddings, k=int(k))
    consistency_observed = (observed[neighbours] == observed[:, None]).mean(axis=1)
    consistency_clean = (clean[neighbours] == clean[:, None]).mean(axis=1)
    noise_score = 1.0 - consistency_observed

    n_flipped = int(flipped.sum())
    detectable = 0 < n_flipped < n
    summary: dict[str, Any] = {
        "k": int(k),
        "n": int(n),
        "n_flipped": n_flipped,
        "noise_rate": n_flipped / n,
        "consistency_clean": _mean(consistency_observed[~flipped]),
        "consistency_flipped": _mean(consistency_observed[flipped]),
        "clean_label_consistency": _mean(consistency_clean),
        "detector_auroc": float(roc_auc_score(flipped, noise_score)) if detectable else None,
        "detector_ap": float(average_precision_score(flipped, noise_score)) if detectable else None,
        "top_precision": top_precision(noise_score, flipped) if detectable else None,
    }
    per_sample = pd.DataFrame(
        {
            "index": np.arange(n, dtype=np.int64),
            "observed": observed,
            "clean": clean,
            "flipped": flipped,
            "consistency_observed": consistency_observed,
            "consistency_clean": consistency_clean,
            "noise_score": noise_score,
        }
    )
    return ConsistencyResult(summary, per_sample)


def top_precision(score: np.ndarray, positive: np.ndarray, count: int | None = None) -> float:
    """Share of ``positive`` among the ``count`` highest scores (default: the number of
    positives). Samples tied with the last one kept count by the share of positives among them,
    the expected value under a random order of ties."""
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    count = int(positive.sum()) if count is None else int(count)
    if not 1 <= count <= len(score):
        raise ValueError(f"count must be in [1, {len(score)}], got {count}")
    cut = np.sort(score)[::-1][count - 1]
    above = score > cut
    tied = score == cut
    taken_from_tie = count - int(above.sum())
    hits = positive[above].sum() + taken_from_tie * positive[tied].mean()
    return float(hits / count)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None
