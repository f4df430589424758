"""What each training-replay snapshot says: retrieval on the test probe, and how the train probe's
neighbourhoods treat the flipped labels (``replay/``, see docs/run-format.md).

``memorised``: the share of flipped images whose ``k`` nearest probe neighbours mostly (more than
half) carry the image's wrong, observed label: the network has pulled the image into the class
it was told. Early in training it is low (a flipped image still sits among its true class); a
loss that memorises noise drives it up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dmlviz.evaluate.consistency import neighbour_consistency
from dmlviz.evaluate.retrieval import retrieval_metrics
from dmlviz.runs import Run, RunError

REPLAY_COLUMNS = ("epoch", "map@r", "recall@1", "detector_auroc", "memorised",
                  "consistency_clean", "consistency_flipped")  # fmt: skip


def snapshot_metrics(
    train: np.ndarray, test: np.ndarray, probe: dict[str, np.ndarray], k: int = 10
) -> dict[str, float | None]:
    """The ``REPLAY_COLUMNS`` (without ``epoch``) of one snapshot: test ``map@r`` and
    ``recall@1`` (None without a test probe), the detector's ROC AUC on the train probe, the
    ``memorised`` share of flipped images and the mean observed-label consistency of clean and
    flipped images (None where no image is flipped)."""
    row: dict[str, float | None] = {"map@r": None, "recall@1": None}
    if len(test) > 1:
        metrics = retrieval_metrics(test, probe["test_labels"], clustering=False).metrics
        row["map@r"], row["recall@1"] = float(metrics["map@r"]), float(metrics["recall@1"])
    flipped = probe["flipped"].astype(bool)
    result = neighbour_consistency(
        train, probe["observed"], probe["clean"], flipped, k=min(k, len(train) - 1)
    )
    summary = result.summary
    agreement = result.per_sample["consistency_observed"].to_numpy()[flipped]
    row["detector_auroc"] = summary["detector_auroc"]
    row["memorised"] = float((agreement > 0.5).mean()) if flipped.any() else None
    row["consistency_clean"] = summary["consistency_clean"]
    row["consistency_flipped"] = summary["consistency_flipped"]
    return row


def evaluate_replay(run: Run, k: int = 10) -> pd.DataFrame | None:
    """Compute ``snapshot_metrics`` for every stored snapshot of ``run`` and store the table
    (``eval/replay.parquet``, one row per epoch, ``REPLAY_COLUMNS``) and its ``replay_summary``
    (``eval/replay.json``); returns the table, or None when the run recorded no replay."""
    probe = run.replay_probe()
    epochs = run.replay_epochs()
    if probe is None or not epochs:
        return None
    if len(probe["train_index"]) < 2:
        raise RunError(f"{run.path}: the replay probe holds fewer than 2 train images")
    rows = []
    for epoch in epochs:
        train, test = run.replay_snapshot(epoch)
        rows.append({"epoch": epoch, **snapshot_metrics(train, test, probe, k)})
    frame = pd.DataFrame(rows, columns=list(REPLAY_COLUMNS))
    run.save_replay_metrics(frame, replay_summary(frame))
    return frame


def replay_summary(frame: pd.DataFrame | None) -> dict[str, Any]:
    """``auroc_peak_epoch`` (the first epoch at which the detector's AUROC is highest) and
    ``memorised_end`` (the memorised share at the last snapshot), None without replay."""
    empty = {"auroc_peak_epoch": None, "memorised_end": None}
    if frame is None or frame.empty:
        return empty
    auroc = frame["detector_auroc"].astype(float)
    peak = None if auroc.isna().all() else int(frame["epoch"].iloc[int(auroc.fillna(-1).argmax())])
    end = frame["memorised"].iloc[-1]
    return {"auroc_peak_epoch": peak, "memorised_end": None if pd.isna(end) else float(end)}
