"""A run's row in a table of runs (``Run.summary()``), and the files that row is read from.

``SUMMARY_FILES`` is derived from what the row reads: the config, the status (and the weights,
which stand for "finished" in a run without status.json) and the file of each summary metric's
source (``dmlviz.registry.metrics``, ``dmlviz.runs.files.METRIC_SOURCES``). A cache of the table
watches exactly these files, so a new metric or source cannot leave it stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmlviz.registry.metrics import summary_metrics
from dmlviz.runs.files import CONFIG, METRIC_SOURCES, MODEL, STATUS

if TYPE_CHECKING:
    from dmlviz.runs.run import Run

# The config keys a row shows, and the value a run without the key has.
SETTINGS = {"dataset": None, "model": None, "loss": None, "noise_kind": None, "noise_rate": 0.0,
            "train_fraction": 1.0, "seed": None, "epochs": None, "preset_source": None,
            "split_layout": None, "test_classes_in_train": None}  # fmt: skip
SUMMARY_FILES = (CONFIG, STATUS, MODEL,
                 *dict.fromkeys(METRIC_SOURCES[m.source] for m in summary_metrics()))  # fmt: skip


def run_summary(run: Run) -> dict[str, Any]:
    """A flat row describing ``run`` for tables: identity, settings, state and the summary
    metrics (None where not measured). ``state`` is status.json's, or "died" when that says
    running but its writer is gone (``Run.writer_gone``)."""
    from dmlviz.runs.imported import is_imported  # imported.py imports run.py, which imports us

    c = run.config
    row: dict[str, Any] = {"name": run.name, "path": str(run.path)}
    row.update({key: c.get(key, default) for key, default in SETTINGS.items()})
    row["imported"] = is_imported(c)
    status = run.status()
    row["state"] = "died" if run.writer_gone() else status.get("state")
    row["epoch"] = status.get("epoch")
    records: dict[str, dict[str, Any]] = {}
    for metric in summary_metrics():
        if metric.best_of is not None:
            row[metric.key] = run.best_training_metric(metric.best_of)
            continue
        file = METRIC_SOURCES[metric.source]
        if file not in records:
            records[file] = run._read_json(file, required=False) or {}
        row[metric.key] = records[file].get(metric.stored_as or metric.key)
    return row
