"""A training run on disk: its config, weights, metrics, labels, embeddings, evaluation and maps.

Every file is written atomically, every read validates what it reads and raises ``RunError``
naming the file and what to do. The files are named in ``dmlviz.runs.files`` (see
docs/run-format.md).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dmlviz.jobs.process import process_alive, start_time
from dmlviz.runs.atomic import atomic_write_json, atomic_writer
from dmlviz.runs.files import (  # noqa: F401  (importable from here as before)
    CONFIG,
    CONSISTENCY_SUMMARY,
    CONSISTENCY_TABLE,
    EMBEDDINGS,
    EVAL,
    LABELS,
    LOCK,
    METRICS,
    MODEL,
    PROJECTIONS,
    REPLAY,
    REPLAY_METRICS,
    REPLAY_PROBE,
    REPLAY_SUMMARY,
    RUN_FILES,
    STATUS,
    TRAINER_STATE,
    embeddings_file,
    eval_metrics_file,
    neighbours_file,
    per_query_file,
    projection_stem,
    replay_snapshot_file,
)
from dmlviz.runs.replay_record import ReplayRecord
from dmlviz.runs.store import RunError
from dmlviz.runs.summary import run_summary
from dmlviz.runs.training_log import TrainingLog
from dmlviz.runs.weights import Weights

if TYPE_CHECKING:
    from dmlviz.data import NoisyLabels, RetrievalDataset

REQUIRED_CONFIG_KEYS = ("dataset", "model", "embedding_dim", "loss")
STATES = ("created", "running", "finished", "interrupted", "cancelled", "failed")


class Run(Weights, TrainingLog, ReplayRecord):
    """One run directory. Create with ``Run.create``, open with ``Run.load``.

    Its parts, one module each: ``RunFiles`` (``store.py``: checked reads and atomic writes),
    ``Weights`` (``weights.py``: the model and trainer state), ``TrainingLog`` (``training_log.py``: metrics.jsonl), ``ReplayRecord`` (``replay_record.py``:
    the training replay); the row in a table of runs is ``dmlviz.runs.summary``."""

    # -- config -------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, config: dict[str, Any], exist_ok: bool = False) -> Run:
        """Create ``path`` and write ``config.json``; with ``exist_ok`` an existing run is reopened."""
        path = Path(path)
        if exist_ok and (path / CONFIG).exists():
            return cls.load(path)
        check_new_run_folder(path)
        missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
        if missing:
            raise RunError(f"run config lacks {', '.join(missing)}")
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path / CONFIG, config)
        run = cls(path, json.loads((path / CONFIG).read_text()))
        run.set_status("created")
        return run

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """Open the run at ``path``, validating ``config.json``."""
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{path} is not a run directory (it does not exist or is a file)")
        config_path = path / CONFIG
        if not config_path.exists():
            raise RunError(_not_a_run(path))
        try:
            config = json.loads(config_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RunError(
                f"{config_path} is corrupt ({error}); retrain or restore the file"
            ) from None
        if not isinstance(config, dict):
            raise RunError(f"{config_path} must hold a JSON object, found {type(config).__name__}")
        missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
        if missing:
            raise RunError(f"{config_path} lacks {', '.join(missing)}; retrain this run")
        return cls(path, config)

    def update_config(self, config: dict[str, Any]) -> None:
        """Rewrite ``config.json`` with ``config`` (e.g. more epochs when resuming)."""
        missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
        if missing:
            raise RunError(f"run config lacks {', '.join(missing)}")
        atomic_write_json(self.path / CONFIG, config)
        self.config = json.loads((self.path / CONFIG).read_text())

    # -- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The run's state record: ``{"state": one of STATES, "updated": unix time, ...}``."""
        record = self._read_json(STATUS, required=False)
        if record is None:
            return {"state": "finished" if (self.path / MODEL).exists() else "created"}
        return record

    def set_status(self, state: str, **extra: Any) -> None:
        """Record ``state`` (one of ``STATES``) with the writer's pid, the pid's start time (unix
        time, to tell it from a later process with the same pid), host and any extra fields."""
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}; choose one of {STATES}")
        record = {
            "state": state,
            "updated": time.time(),
            "pid": os.getpid(),
            "pid_started": start_time(os.getpid()),
            "host": socket.gethostname(),
        }
        atomic_write_json(self.path / STATUS, {**record, **extra})

    def writer_gone(self) -> bool:
        """Whether status.json says "running" but the process that wrote it is gone (killed
        without a chance to record it): the run is neither training nor finished; resume it.
        False when that cannot be told (the run was written on another host)."""
        status = self.status()
        pid = status.get("pid")
        if status.get("state") != "running" or not isinstance(pid, int):
            return False
        if status.get("host") not in (None, socket.gethostname()):
            return False
        return process_alive(pid, status.get("pid_started")) is False

    def check_not_training(self, action: str) -> None:
        """Raise ``RunError`` when another process trains the run now (holds its ``train.lock``):
        ``action`` (e.g. "evaluate it") would read files the trainer is about to replace, and
        what it writes would be overwritten, or overwrite the trainer's own results."""
        from dmlviz.jobs.lock import TrainingLock  # which raises RunError, defined here

        holder = TrainingLock(self.path).holder()
        if holder is not None:
            raise RunError(
                f"{self.path} is being trained right now ({holder} holds {self.path / LOCK}): "
                f"wait for the training to finish, or stop it, then {action}"
            )

    # -- labels ---------------------------------------------------------------------------------

    def save_labels(self, noisy: NoisyLabels) -> None:
        """Record the train split's clean, observed and flipped labels."""
        self._save_npz(
            LABELS,
            observed=np.asarray(noisy.observed, dtype=np.int64),
            clean=np.asarray(noisy.clean, dtype=np.int64),
            flipped=np.asarray(noisy.flipped, dtype=bool),
            rate=np.float64(noisy.rate),
            kind=np.str_(noisy.kind),
            seed=np.int64(noisy.seed),
        )

    def labels(self) -> NoisyLabels | None:
        """The train split's labels as trained (None for runs without a labels file)."""
        from dmlviz.data import NoisyLabels

        fix = f"`dmlviz train --resume --out {self.path}` rebuilds it from the config's noise settings"
        arrays = self._load_npz(LABELS, required=False, fix=fix)
        if arrays is None:
            return None
        return NoisyLabels(
            observed=arrays["observed"],
            clean=arrays["clean"],
            flipped=arrays["flipped"].astype(bool),
            rate=float(arrays["rate"]),
            kind=str(arrays["kind"]),
            seed=int(arrays["seed"]),
        )

    # -- embeddings -----------------------------------------------------------------------------

    def save_embeddings(self, split: str, embeddings: np.ndarray, labels: np.ndarray) -> None:
        """Store a split's embeddings (float32, one row per sample) and its clean labels."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        labels = np.asarray(labels)
        if embeddings.ndim != 2 or embeddings.shape[0] != labels.shape[0]:
            raise ValueError(
                f"embeddings {embeddings.shape} and labels {labels.shape} must be (n, d) and (n,)"
            )
        self._save_npz(embeddings_file(split), embeddings=embeddings, labels=labels)

    def has_embeddings(self, split: str) -> bool:
        """Whether ``embeddings/<split>.npz`` exists."""
        return (self.path / embeddings_file(split)).exists()

    def embed_hint(self, split: str | None = None) -> str:
        """How to (re)make the embeddings of ``split`` (of every split when None): the ``dmlviz
        embed`` command for a trained run; for an imported run, which has no model, importing
        them again."""
        from dmlviz.runs.imported import is_imported

        if is_imported(self.config):
            return (
                "an imported run has no model to embed with: import the embeddings again "
                "(`dmlviz import --out NEW_RUN --embeddings FILE ...`)"
            )
        command = f"dmlviz embed {quote(self.path)}" + (f" --split {split}" if split else "")
        return f"run `{command}`"

    def num_samples(self, split: str) -> int:
        """How many samples ``embeddings/<split>.npz`` holds (reads its labels only)."""
        return len(self.split_labels(split))

    def split_labels(self, split: str) -> np.ndarray:
        """A split's clean labels from ``embeddings/<split>.npz``, its embeddings left unread
        (a million of them are a gigabyte)."""
        relative = embeddings_file(split)
        path = self.path / relative
        if not path.exists():
            raise RunError(f"{path} is missing: {self.embed_hint(split)}")
        try:
            with np.load(path, allow_pickle=False) as data:
                return data["labels"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            raise RunError(f"{path} is corrupt ({error}); {self.remake(relative)}") from None

    def embeddings(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split's ``(embeddings (n, d) float32, labels (n,))``."""
        relative = embeddings_file(split)
        fix = self.embed_hint(split)
        arrays = self._load_npz(relative, hint=fix, fix=fix)
        embeddings, labels = arrays.get("embeddings"), arrays.get("labels")
        if embeddings is None or labels is None:
            raise RunError(f"{self.path / relative} lacks embeddings or labels; {fix}")
        if embeddings.ndim != 2 or labels.ndim != 1 or len(embeddings) != len(labels):
            raise RunError(
                f"{self.path / relative} holds embeddings of shape {embeddings.shape} but labels "
                f"of shape {labels.shape}: they must be (n, d) and (n,); {fix}"
            )
        return embeddings, labels

    # -- evaluation -----------------------------------------------------------------------------

    def save_eval(
        self,
        split: str,
        metrics: dict[str, Any],
        per_query: pd.DataFrame,
        neighbours: np.ndarray,
        similarities: np.ndarray,
    ) -> None:
        """Store a split's global metrics, per-query table and top-K neighbour table."""
        self._save_parquet(per_query_file(split), per_query)
        self._save_npz(
            neighbours_file(split),
            neighbours=np.asarray(neighbours, dtype=np.int64),
            similarities=np.asarray(similarities, dtype=np.float32),
        )
        # metrics last: its presence marks the evaluation as complete
        atomic_write_json(self.path / eval_metrics_file(split), metrics)

    def eval_metrics(self, split: str = "test") -> dict[str, Any] | None:
        """A split's global retrieval metrics, or None before evaluation."""
        return self._read_json(eval_metrics_file(split), required=False)

    def per_query(self, split: str = "test") -> pd.DataFrame | None:
        """A split's per-query table, or None before evaluation."""
        return self._read_parquet(per_query_file(split))

    def neighbours(self, split: str = "test") -> tuple[np.ndarray, np.ndarray] | None:
        """A split's ``(neighbour indices (n, K), similarities (n, K))``, or None."""
        arrays = self._load_npz(neighbours_file(split), required=False)
        if arrays is None:
            return None
        return arrays["neighbours"], arrays["similarities"]

    def save_consistency(self, summary: dict[str, Any], per_sample: pd.DataFrame) -> None:
        """Store the train split's neighbour-consistency table and its summary."""
        self._save_parquet(CONSISTENCY_TABLE, per_sample)
        atomic_write_json(self.path / CONSISTENCY_SUMMARY, summary)

    def consistency(self) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """``(summary, per_sample)`` of neighbour consistency, or None before it was computed."""
        summary = self._read_json(CONSISTENCY_SUMMARY, required=False)
        per_sample = self._read_parquet(CONSISTENCY_TABLE)
        if summary is None or per_sample is None:
            return None
        return summary, per_sample

    # -- projections ----------------------------------------------------------------------------

    def save_projection(
        self, split: str, method: str, coords: np.ndarray, meta: dict[str, Any]
    ) -> None:
        """Store a 2-D map of a split and its parameters/trustworthiness sidecar."""
        coords = np.asarray(coords, dtype=np.float32)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"a projection must be (n, 2), got {coords.shape}")
        stem = projection_stem(split, method)
        with atomic_writer(self.path / f"{stem}.npy") as tmp:
            np.save(tmp, coords)
        atomic_write_json(self.path / f"{stem}.json", meta)

    def projection(self, split: str, method: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """``(coords (n, 2), meta)`` of a stored map, or None when absent."""
        stem = projection_stem(split, method)
        meta = self._read_json(f"{stem}.json", required=False)
        if meta is None or not (self.path / f"{stem}.npy").exists():
            return None
        try:
            coords = np.load(self.path / f"{stem}.npy", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise RunError(
                f"{self.path / stem}.npy is corrupt ({error}); recompute the map with "
                f"`dmlviz project --force {self.path}`"
            ) from None
        return coords, meta

    # -- data -------------------------------------------------------------------------------------

    def dataset(self, split: str = "test", augment: bool = False) -> RetrievalDataset:
        """Rebuild a split of the run's dataset from its config (for an imported run, its class
        names and image paths: ``dmlviz.runs.imported.ImportedImages``)."""
        from dmlviz.data import load_dataset
        from dmlviz.runs.imported import imported_split, is_imported

        c = self.config
        if is_imported(c):
            return imported_split(self, split)
        kwargs: dict[str, Any] = {
            "root": c.get("dataset_root"),
            "test_root": c.get("test_root"),
            "split": split,
            "seed": c.get("split_seed", 0),
            "augment": augment,
        }
        for key in ("protocol", "image_size"):
            if c.get(key) is not None:
                kwargs[key] = c[key]
        if c.get("val_fraction"):
            kwargs["val_fraction"] = c["val_fraction"]
            kwargs["val_fold"] = c.get("val_fold") or 0  # absent from runs older than folds
        if c.get("train_fraction", 1.0) != 1:  # absent from runs older than the setting
            kwargs.update(
                train_fraction=c["train_fraction"],
                fraction_seed=c.get("seed", 0),
                min_per_class=c.get("m_per_class", 1),
            )
        return load_dataset(c["dataset"], **kwargs)

    # -- summary and advice -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """A flat row describing the run for tables (``dmlviz.runs.summary.run_summary``)."""
        return run_summary(self)

    def remake(self, relative: str) -> str:
        """What rewrites the run's file ``relative`` (a path inside the run folder), as advice
        that ends a message: the command that computes it again."""
        from dmlviz.runs.imported import is_imported

        run = quote(self.path)
        if relative.startswith(f"{EMBEDDINGS}/"):
            return self.embed_hint(Path(relative).stem)
        if relative.startswith(f"{EVAL}/"):
            return f"recompute it with `dmlviz evaluate {run}`"
        if relative.startswith(f"{PROJECTIONS}/"):
            return f"recompute it with `dmlviz project --force {run}`"
        if is_imported(self.config):
            return "import the embeddings again (`dmlviz import`)"
        return f"`dmlviz train --resume --out {run}` rewrites it"


@dataclass
class BrokenRun:
    """A folder that looks like a run but cannot be opened, and why."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return self.path.name


def find_runs(root: str | Path) -> list[Run | BrokenRun]:
    """Every run below ``root`` (``dmlviz.runs.walk.run_folders``: nested folders included, the
    fold runs of a tuning study left out), sorted by path.

    Folders that hold run files but cannot be loaded come back as ``BrokenRun`` with the reason.
    """
    from dmlviz.runs.walk import run_folders

    found: list[Run | BrokenRun] = []
    for folder in run_folders(root):
        try:
            found.append(Run.load(folder))
        except RunError as error:
            found.append(BrokenRun(folder, str(error)))
    return found


def quote(path: str | Path) -> str:
    """``path`` as one shell word, for the commands messages suggest (``shlex.quote``)."""
    return shlex.quote(str(path))


def _not_a_run(path: Path) -> str:
    """Why ``path`` (a folder without config.json) is not a run, and what to give instead: the
    runs below it (a sweep's folder), or how to make one."""
    from dmlviz.runs.walk import run_folders

    # two levels: a sweep's runs, or a folder of sweeps; not a walk of a whole disk
    below = [folder for folder in run_folders(path, max_depth=2) if folder != path]
    if not below:
        return f"{path} has no {CONFIG}: it is not a dmlviz run (train one with `dmlviz train`)"
    names = ", ".join(str(folder.relative_to(path)) for folder in below[:3])
    more = f" and {len(below) - 3} more" if len(below) > 3 else ""
    return (
        f"{path} is not a run but a folder of {len(below)} run(s) ({names}{more}): give one of "
        f"them, e.g. {quote(below[0])}; list them with `dmlviz runs {quote(path)}`"
    )


def check_new_run_folder(path: str | Path) -> None:
    """Raise ``RunError`` unless ``path`` can take a new run: absent, or a folder without run files
    (a new run never mixes its files with an earlier run's)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} is a file, not a folder: choose another --out for the run")
    if (path / CONFIG).exists():
        raise RunError(f"{path} already holds a run; choose another --out, delete it, or resume it")
    found = [f"{name}/" if (path / name).is_dir() else name for name in RUN_FILES
             if (path / name).exists()]  # fmt: skip
    if found:
        raise RunError(
            f"{path} holds files of an earlier run ({', '.join(found)}) but no {CONFIG}, so it "
            "cannot be resumed, and a new run there would mix its files with them: delete them "
            "or choose another --out"
        )
