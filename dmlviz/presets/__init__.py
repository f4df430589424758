"""Per-dataset hyperparameter presets: each loss's settings for a fair comparison.

``<dataset>.json`` in this folder maps each loss to its entry::

    {"contextual": {"loss_kwargs": {...}, "lr": 0.002, "source": "paper defaults",
                    "reference": "...", "notes": "..."}, ...}

``source`` is ``"tuned on validation"`` for an entry found by ``dmlviz tune`` (which adds the
search's ``date``, ``budget`` (trials), ``val_map@r``, ``epochs`` and ``val_fraction``), or
``"paper defaults"`` for the loss's published settings. ``defaults.json`` holds the paper
defaults for datasets without a file of their own; there ``lr`` is null, meaning the trainer's
default for the dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dmlviz.runs import atomic_write_json

PRESETS_DIR = Path(__file__).resolve().parent
DEFAULTS = "defaults"
SOURCES = ("tuned on validation", "paper defaults")
REQUIRED_KEYS = ("loss_kwargs", "lr", "source")


def preset_file(dataset: str, folder: str | Path | None = None) -> Path:
    """The JSON file holding ``dataset``'s presets (it may not exist)."""
    return Path(folder or PRESETS_DIR) / f"{dataset}.json"


def load_presets(dataset: str, folder: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every loss's entry for ``dataset`` (empty when the dataset has no file)."""
    path = preset_file(dataset, folder)
    if not path.exists():
        return {}
    try:
        table = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"preset file {path} is corrupt ({error}); restore it from git") from None
    if not isinstance(table, dict):
        raise ValueError(f"preset file {path} must map loss names to entries")
    for loss, entry in table.items():
        _check_entry(entry, f"{path} [{loss}]")
    return table


def preset(dataset: str, loss: str, folder: str | Path | None = None) -> dict[str, Any]:
    """The preset for ``loss`` on ``dataset``.

    Returns a new dict with at least ``dataset``, ``loss``, ``loss_kwargs`` (the loss's
    constructor arguments), ``lr`` (the head's learning rate, or None for the trainer's default)
    and ``source`` ("tuned on validation" or "paper defaults"); tuned entries add ``date``,
    ``budget``, ``val_map@r``, ``epochs`` and ``val_fraction``. A dataset without its own entry
    falls back to the paper defaults in ``defaults.json``. Unknown losses raise ``ValueError``.
    """
    from dmlviz.losses import LOSSES

    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(sorted(LOSSES))}")
    entry = load_presets(dataset, folder).get(loss)
    if entry is None:
        entry = load_presets(DEFAULTS, PRESETS_DIR).get(loss)
    if entry is None:
        raise ValueError(f"no preset for loss {loss!r} in {preset_file(DEFAULTS)}")
    return {"dataset": dataset, "loss": loss, **json.loads(json.dumps(entry))}


def apply_preset(config: dict[str, Any], folder: str | Path | None = None) -> dict[str, Any]:
    """``config`` (a training config) with ``loss_kwargs``, ``lr`` and ``preset_source`` taken
    from ``preset(config["dataset"], config["loss"])``; returns a new dict. ``lr`` is kept when
    the preset leaves it to the trainer (null)."""
    entry = preset(config["dataset"], config["loss"], folder)
    updated = {
        **config,
        "loss_kwargs": dict(entry["loss_kwargs"]),
        "preset_source": entry["source"],
    }
    if entry["lr"] is not None:
        updated["lr"] = float(entry["lr"])
    return updated


def write_preset(
    dataset: str, loss: str, entry: dict[str, Any], folder: str | Path | None = None
) -> Path:
    """Store ``entry`` as ``loss``'s preset for ``dataset`` (other losses' entries are kept);
    returns the file written."""
    _check_entry(entry, f"the new {dataset}/{loss} preset")
    path = preset_file(dataset, folder)
    table = load_presets(dataset, folder)
    table[loss] = entry
    atomic_write_json(path, table)
    return path


def preset_table(datasets: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One flat row per shipped (dataset, loss) preset, for tables in the dashboard and docs:
    dataset, loss, source, lr, date, budget, val_map@r, and the loss's settings as text."""
    if datasets is None:
        datasets = tuple(sorted(p.stem for p in PRESETS_DIR.glob("*.json") if p.stem != DEFAULTS))
    rows = []
    for dataset in datasets:
        for loss, entry in load_presets(dataset).items():
            rows.append(
                {
                    "dataset": dataset,
                    "loss": loss,
                    "source": entry["source"],
                    "lr": entry["lr"],
                    "settings": ", ".join(f"{k}={v}" for k, v in entry["loss_kwargs"].items()),
                    "date": entry.get("date"),
                    "budget": entry.get("budget"),
                    "val_map@r": entry.get("val_map@r"),
                }
            )
    return rows


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    if entry["source"] not in SOURCES:
        raise ValueError(f"{where} has source {entry['source']!r}; use one of {SOURCES}")
    if not isinstance(entry["loss_kwargs"], dict):
        raise ValueError(f"{where}: loss_kwargs must be an object of the loss's arguments")
    lr = entry["lr"]
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
        raise ValueError(f"{where}: lr must be a positive number or null, not {lr!r}")
