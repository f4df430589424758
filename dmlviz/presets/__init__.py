"""Per-dataset hyperparameter presets: each loss's settings for a fair comparison.

Two kinds, each a JSON file per dataset mapping a loss to its entry::

    {"contextual": {"loss_kwargs": {...}, "lr": 0.002, "source": "paper defaults",
                    "reference": "...", "notes": "..."}, ...}

* ``paper/<dataset>.json``: the loss's published settings (``source`` "paper defaults", with a
  ``reference``), with the learning rate of dmlviz's model for that dataset. They are generated
  from the registered defaults of ``dmlviz.registry`` (``paper_presets``; after a change there,
  ``python -m dmlviz.presets`` writes them again), with the hyperparameter the paper ties to the
  batch (``per_class``) set to the dataset's images per class. Datasets without a file of their
  own take the registry's defaults as they are, with ``lr`` null, the trainer's default.
* ``<dataset>.json``: settings found by ``dmlviz tune`` on validation classes (``source`` "tuned
  on validation", with the search's ``date``, ``budget`` (trials), ``folds``, ``val_map@r`` and
  ``paper_val_map@r``, ``epochs``, ``val_fraction`` and the ``command`` that ran it).

``preset(dataset, loss)`` gives the tuned entry where there is one and the paper defaults
otherwise; ``kind="paper"`` always gives the paper defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dmlviz.registry import LOSSES, loss_entry
from dmlviz.runs import atomic_write_json

PRESETS_DIR = Path(__file__).resolve().parent
PAPER_DIR = PRESETS_DIR / "paper"
KINDS = ("tuned", "paper")  # "tuned": tuned where a search ran, paper defaults elsewhere
TUNED, PAPER = "tuned on validation", "paper defaults"
SOURCES = (TUNED, PAPER)
REQUIRED_KEYS = ("loss_kwargs", "lr", "source")
LR_NOTE = "lr is dmlviz's default for this dataset's model (no paper trains on it)"


def preset_file(dataset: str, folder: str | Path | None = None) -> Path:
    """The JSON file holding ``dataset``'s tuned presets (it may not exist)."""
    return Path(folder or PRESETS_DIR) / f"{dataset}.json"


def load_presets(dataset: str, folder: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every loss's entry in ``<folder>/<dataset>.json`` (empty when there is no such file);
    ``folder`` None is the tuned presets' folder."""
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


def preset(
    dataset: str, loss: str, folder: str | Path | None = None, kind: str = "tuned"
) -> dict[str, Any]:
    """The preset for ``loss`` on ``dataset``.

    Returns a new dict with at least ``dataset``, ``loss``, ``loss_kwargs`` (the loss's
    constructor arguments), ``lr`` (the head's learning rate, or None for the trainer's default)
    and ``source`` ("tuned on validation" or "paper defaults"). ``kind`` "tuned" takes the entry
    in ``folder`` (default: the shipped tuned presets) and falls back to the paper defaults;
    "paper" takes the paper defaults. Unknown losses or kinds raise ``ValueError``.
    """
    loss_entry(loss)  # unknown losses: ValueError naming the choices
    if kind not in KINDS:
        raise ValueError(f"preset kind {kind!r} is unknown; choose one of {', '.join(KINDS)}")
    entry = load_presets(dataset, folder).get(loss) if kind == "tuned" else None
    if entry is None:
        entry = load_presets(dataset, PAPER_DIR).get(loss)
    if entry is None:
        entry = registered_preset(loss)
    return {"dataset": dataset, "loss": loss, **json.loads(json.dumps(entry))}


def registered_preset(loss: str) -> dict[str, Any]:
    """The paper-defaults entry of ``loss`` straight from its registry entry (``lr`` null: the
    trainer's default for the dataset)."""
    registered = loss_entry(loss)
    return {
        "loss_kwargs": dict(registered.defaults),
        "lr": None,
        "source": PAPER,
        "reference": registered.reference,
        "notes": "lr null: the trainer's default for the dataset",
    }


def paper_presets(dataset: str) -> dict[str, dict[str, Any]]:
    """Every loss's paper-defaults entry for ``dataset``, as ``paper/<dataset>.json`` holds it:
    the registered defaults and reference, the hyperparameter the paper ties to the batch
    (``per_class``) set to the dataset's images per class, and the dataset's default ``lr``."""
    from dmlviz.train.config import BASE_CONFIG, DATASET_DEFAULTS

    settings = {**BASE_CONFIG, **DATASET_DEFAULTS[dataset]}
    table = {}
    for loss, registered in LOSSES.items():
        loss_kwargs, notes = registered.defaults, LR_NOTE
        if registered.per_class:
            name = registered.per_class
            loss_kwargs[name] = settings["m_per_class"]
            notes = (
                f"{name} = images per class in a batch, as the paper sets it ({name} = IPC); "
                + notes
            )
        table[loss] = {"loss_kwargs": loss_kwargs, "lr": settings["lr"], "notes": notes,
                       "reference": registered.reference, "source": PAPER}  # fmt: skip
    return table


def write_paper_presets() -> list[Path]:
    """Write every ``paper/<dataset>.json`` again from the registry (``paper_presets``); returns
    the files written."""
    paths = sorted(PAPER_DIR.glob("*.json"))
    for path in paths:
        atomic_write_json(path, paper_presets(path.stem))
    return paths


def apply_preset(
    config: dict[str, Any], folder: str | Path | None = None, kind: str = "tuned"
) -> dict[str, Any]:
    """``config`` (a training config) with ``loss_kwargs``, ``lr`` and ``preset_source`` taken
    from ``preset(config["dataset"], config["loss"], folder, kind)``; returns a new dict. ``lr``
    is kept when the preset leaves it to the trainer (null)."""
    entry = preset(config["dataset"], config["loss"], folder, kind)
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
    """Store ``entry`` (a tuned one) as ``loss``'s preset for ``dataset``, keeping the other
    losses' entries; returns the file written."""
    _check_entry(entry, f"the new {dataset}/{loss} preset")
    if entry["source"] != TUNED:
        raise ValueError(
            f"the new {dataset}/{loss} preset has source {entry['source']!r}: only "
            f"{TUNED!r} entries go to the tuned presets (paper defaults live in {PAPER_DIR})"
        )
    path = preset_file(dataset, folder)
    table = load_presets(dataset, folder)
    table[loss] = entry
    atomic_write_json(path, dict(sorted(table.items())))
    return path


def preset_table(datasets: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One flat row per (dataset, loss) that ships presets, for tables in the dashboard and docs:
    dataset, loss, source (of the preset used by default), lr, settings as text, and for tuned
    entries the search's date, budget, folds, val_map@r and paper_val_map@r."""
    if datasets is None:
        shipped = {p.stem for p in (*PRESETS_DIR.glob("*.json"), *PAPER_DIR.glob("*.json"))}
        datasets = tuple(sorted(shipped))
    rows = []
    for dataset in datasets:
        losses = {**load_presets(dataset, PAPER_DIR), **load_presets(dataset)}
        for loss in (name for name in LOSSES if name in losses):
            entry = preset(dataset, loss)
            rows.append(
                {
                    "dataset": dataset,
                    "loss": loss,
                    "source": entry["source"],
                    "lr": entry["lr"],
                    "settings": ", ".join(f"{k}={v}" for k, v in entry["loss_kwargs"].items()),
                    "date": entry.get("date"),
                    "budget": entry.get("budget"),
                    "folds": entry.get("folds"),
                    "val_map@r": entry.get("val_map@r"),
                    "paper_val_map@r": entry.get("paper_val_map@r"),
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
