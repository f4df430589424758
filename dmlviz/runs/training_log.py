"""A run's training log, ``metrics.jsonl``: one JSON record per epoch, appended atomically."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pandas as pd

from dmlviz.runs.atomic import _json_safe, atomic_write_bytes
from dmlviz.runs.files import METRICS
from dmlviz.runs.store import RunError, RunFiles


class TrainingLog(RunFiles):
    """The part of ``Run`` that appends, reads and truncates ``metrics.jsonl``."""

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON record (an epoch's numbers) to ``metrics.jsonl``.

        The file is rewritten atomically so a crash never leaves a torn last line.
        """
        path = self.path / METRICS
        old = path.read_bytes() if path.exists() else b""
        atomic_write_bytes(path, old + _json_line(record).encode("utf-8"))

    def metrics(self) -> pd.DataFrame:
        """Training records, one row per appended record (empty frame when none).

        Lines that are not JSON objects (torn by a crash or an edit) are skipped with a warning
        that names them; resuming the run rewrites the file without them.
        """
        return pd.DataFrame(self._metric_records())

    def _metric_records(self) -> list[dict[str, Any]]:
        path = self.path / METRICS
        if not path.exists():
            return []
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            raise RunError(f"{path} cannot be read ({error})") from None
        records, bad = [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                bad.append(str(number))
        if bad:
            warnings.warn(
                f"{path}: line {', '.join(bad)} is not a JSON record (torn or edited); skipped. "
                f"`dmlviz train --resume --out {self.path}` rewrites the file without it",
                stacklevel=3,
            )
        return records

    def best_training_metric(self, key: str = "map@r") -> float | None:
        """The best (highest) value of ``key`` over the epochs logged in ``metrics.jsonl``, or None."""
        frame = self.metrics()
        if frame.empty or key not in frame or frame[key].isna().all():
            return None
        return float(frame[key].max())

    def truncate_metrics(self, max_epoch: int) -> None:
        """Keep one record per epoch up to ``max_epoch`` (the last written of each; used when
        resuming from a checkpoint); drops later epochs and lines that are not JSON records."""
        if not (self.path / METRICS).exists():
            return
        kept: dict[Any, dict[str, Any]] = {}
        for record in self._metric_records():
            if record.get("epoch", 0) <= max_epoch:
                kept[record.get("epoch")] = record
        text = "".join(_json_line(record) for record in kept.values())
        atomic_write_bytes(self.path / METRICS, text.encode("utf-8"))


def _json_line(record: dict[str, Any]) -> str:
    """One metrics.jsonl line: plain JSON, non-finite numbers written as null."""
    return json.dumps(_json_safe(_plain(record)), sort_keys=True, allow_nan=False) + "\n"


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Numpy and torch scalars to Python numbers so json can write them."""
    out = {}
    for key, value in record.items():
        if hasattr(value, "item") and callable(value.item):
            value = value.item()
        out[key] = value
    return out
