"""A run's training replay: the probe set, its embeddings after each epoch, their metrics and
the aligned layout (``dmlviz.train.replay``, ``dmlviz.evaluate.replay``, ``dmlviz.project.replay``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dmlviz.runs.atomic import atomic_write_json
from dmlviz.runs.files import (
    REPLAY,
    REPLAY_METRICS,
    REPLAY_PROBE,
    REPLAY_SUMMARY,
    replay_layout_stem,
    replay_snapshot_file,
)
from dmlviz.runs.store import RunError, RunFiles


class ReplayRecord(RunFiles):
    """The part of ``Run`` that stores and reads the probe set's embeddings during training."""

    def save_replay_probe(self, **arrays: np.ndarray) -> None:
        """Record which samples the replay follows: ``train_index``, ``observed``, ``clean``,
        ``flipped`` (train probe), ``test_index``, ``test_labels`` (test probe)."""
        self._save_npz(REPLAY_PROBE, **arrays)

    def replay_probe(self) -> dict[str, np.ndarray] | None:
        """The probe set's indices and labels (see ``save_replay_probe``), or None without replay."""
        return self._load_npz(REPLAY_PROBE, required=False, fix="retrain the run to record replay")

    def save_replay_snapshot(self, epoch: int, train: np.ndarray, test: np.ndarray) -> None:
        """Store the probe's embeddings after ``epoch`` (0: before training) as float16."""
        self._save_npz(
            replay_snapshot_file(epoch),
            train=np.asarray(train, dtype=np.float16),
            test=np.asarray(test, dtype=np.float16),
        )

    def replay_epochs(self) -> list[int]:
        """The epochs with a stored replay snapshot, ascending (empty without replay)."""
        folder = self.path / REPLAY
        if not folder.is_dir():
            return []
        epochs = []
        for file in folder.glob("epoch_*.npz"):
            suffix = file.stem.removeprefix("epoch_")
            if suffix.isdigit():
                epochs.append(int(suffix))
        return sorted(epochs)

    def replay_snapshot(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(train probe (n, d), test probe (m, d))`` embeddings after ``epoch``, as float32."""
        fix = "delete it (the replay then skips that epoch) or retrain the run"
        arrays = self._load_npz(replay_snapshot_file(epoch), fix=fix)
        if "train" not in arrays or "test" not in arrays:
            raise RunError(f"{self.path / replay_snapshot_file(epoch)} lacks train or test; {fix}")
        return arrays["train"].astype(np.float32), arrays["test"].astype(np.float32)

    def truncate_replay(self, max_epoch: int) -> None:
        """Delete snapshots of epochs after ``max_epoch`` (resuming from that epoch retrains them)."""
        for epoch in self.replay_epochs():
            if epoch > max_epoch:
                (self.path / replay_snapshot_file(epoch)).unlink(missing_ok=True)

    def save_replay_metrics(self, frame: pd.DataFrame, summary: dict[str, Any]) -> None:
        """Store the per-snapshot metrics table and its summary (``dmlviz.evaluate.replay``)."""
        self._save_parquet(REPLAY_METRICS, frame)
        atomic_write_json(self.path / REPLAY_SUMMARY, summary)

    def replay_metrics(self) -> pd.DataFrame | None:
        """The per-snapshot metrics table, or None before it was computed."""
        return self._read_parquet(REPLAY_METRICS)

    def save_replay_layout(
        self, method: str, epochs: np.ndarray, coords: np.ndarray, meta: dict[str, Any]
    ) -> None:
        """Store the aligned 2-D layout of the train probe: ``coords`` (frames, n, 2) float32, one
        frame per entry of ``epochs``, and its parameters/trustworthiness sidecar."""
        coords = np.asarray(coords, dtype=np.float32)
        if coords.ndim != 3 or coords.shape[2] != 2 or len(coords) != len(epochs):
            raise ValueError(f"a replay layout must be ({len(epochs)}, n, 2), got {coords.shape}")
        stem = replay_layout_stem(method)
        self._save_npz(f"{stem}.npz", epochs=np.asarray(epochs, dtype=np.int64), coords=coords)
        atomic_write_json(self.path / f"{stem}.json", meta)

    def replay_layout(self, method: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
        """``(epochs (frames,), coords (frames, n, 2), meta)`` of a stored layout, or None."""
        stem = replay_layout_stem(method)
        meta = self._read_json(f"{stem}.json", required=False)
        fix = f"recompute it with `dmlviz project --force {self.path}`"
        arrays = self._load_npz(f"{stem}.npz", required=False, fix=fix)
        if meta is None or arrays is None:
            return None
        return arrays["epochs"], arrays["coords"], meta
