"""A training run on disk: its config, weights, metrics, labels, embeddings, evaluation and maps.

Every file is written atomically, every read validates what it reads and raises ``RunError``
naming the file and what to do. Files (see docs/run-format.md)::

    config.json  status.json  model.safetensors  trainer_state.pt  metrics.jsonl  labels.npz
    embeddings/<split>.npz
    eval/<split>_metrics.json  eval/<split>_per_query.parquet  eval/<split>_neighbours.npz
    eval/consistency.json  eval/consistency.parquet
    projections/<split>_<method>.npy  projections/<split>_<method>.json
    replay/probe.npz  replay/epoch_<NNNN>.npz  eval/replay.parquet  eval/replay.json
    projections/replay_<method>.npz  projections/replay_<method>.json
"""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psutil

from dmlviz.runs.atomic import (
    _json_safe,
    atomic_write_bytes,
    atomic_write_json,
    atomic_writer,
    file_mode,
)

if TYPE_CHECKING:
    import torch

    from dmlviz.data import NoisyLabels, RetrievalDataset

CONFIG = "config.json"
STATUS = "status.json"
MODEL = "model.safetensors"
TRAINER_STATE = "trainer_state.pt"
METRICS = "metrics.jsonl"
LABELS = "labels.npz"
LOCK = "train.lock"
REPLAY = "replay"  # the probe set's embeddings during training (``dmlviz.train.replay``)
REPLAY_PROBE = f"{REPLAY}/probe.npz"
REPLAY_METRICS = "eval/replay.parquet"
REPLAY_SUMMARY = "eval/replay.json"
# What a run leaves in its folder besides config.json: a folder holding any of them is no
# place for a new run (its files would be mixed with the old run's).
RUN_FILES = (STATUS, MODEL, TRAINER_STATE, METRICS, LABELS, "embeddings", "eval", "projections",
             "tensorboard", REPLAY)  # fmt: skip
REQUIRED_CONFIG_KEYS = ("dataset", "model", "embedding_dim", "loss")
STATES = ("created", "running", "finished", "interrupted", "cancelled", "failed")


class RunError(ValueError):
    """A run directory is missing, incomplete or corrupt; the message names the file and the fix."""


class Run:
    """One run directory. Create with ``Run.create``, open with ``Run.load``."""

    def __init__(self, path: Path, config: dict[str, Any]):
        self.path = Path(path)
        self.config = config

    @property
    def name(self) -> str:
        """The run's name: its config name, else its folder name."""
        return str(self.config.get("name") or self.path.name)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

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
            "pid_started": psutil.Process().create_time(),
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
        holder = TrainingLock(self.path).holder()
        if holder is not None:
            raise RunError(
                f"{self.path} is being trained right now ({holder} holds {self.path / LOCK}): "
                f"wait for the training to finish, or stop it, then {action}"
            )

    # -- weights and trainer state --------------------------------------------------------------

    def save_model(self, model: torch.nn.Module) -> None:
        """Write the model's weights as safetensors (no code is ever loaded back)."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        with atomic_writer(self.path / MODEL) as tmp:
            save_file(state, str(tmp))

    def has_model(self) -> bool:
        """Whether ``model.safetensors`` exists."""
        return (self.path / MODEL).exists()

    def load_model(self, device: str = "cpu") -> torch.nn.Module:
        """Rebuild the model from ``config.json`` alone and load its saved weights (eval mode)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from dmlviz.models import build_model
        from dmlviz.runs.imported import is_imported

        weights = self.path / MODEL
        if is_imported(self.config):
            raise RunError(f"{self.path} holds imported embeddings: it has no model to load")
        if not weights.exists():
            raise RunError(self._missing_weights())
        model = build_model(**self.model_kwargs())
        try:
            state = load_file(str(weights), device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise RunError(
                f"{weights} is corrupt ({error}); resume training to rewrite it"
            ) from None
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise RunError(f"{weights} does not fit the model in {CONFIG}: {error}") from None
        return model.to(device).eval()

    def _missing_weights(self) -> str:
        weights = self.path / MODEL
        if (self.path / TRAINER_STATE).exists():
            return (
                f"{weights} is missing, but {TRAINER_STATE} holds the weights of the last complete "
                f"epoch: `dmlviz train --resume --out {self.path}` writes it again"
            )
        try:
            epoch = self.status().get("epoch")
        except RunError:
            epoch = None
        if epoch:
            return (
                f"{weights} is missing (the run trained {epoch} epoch(s), and {TRAINER_STATE} is "
                "gone too): retrain the run"
            )
        return f"{weights} is missing: the run never finished an epoch; resume or retrain it"

    def model_kwargs(self) -> dict[str, Any]:
        """The ``build_model`` arguments recorded in the config."""
        c = self.config
        kwargs = {"name": c["model"], "embedding_dim": c["embedding_dim"]}
        for key in ("in_channels", "image_size", "pooling", "freeze_bn", "layer_norm"):
            if key in c and c[key] is not None:
                kwargs[key] = c[key]
        return kwargs

    def save_trainer_state(self, state: dict[str, Any]) -> None:
        """Write optimizer/scheduler/RNG/epoch state (tensors and plain Python values only)."""
        import torch

        with atomic_writer(self.path / TRAINER_STATE) as tmp:
            torch.save(state, tmp)

    def load_trainer_state(self) -> dict[str, Any] | None:
        """The saved trainer state, loaded with ``weights_only=True``; None when absent."""
        import torch

        path = self.path / TRAINER_STATE
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a damaged file
            raise RunError(f"{path} is corrupt ({error}); delete it to restart training") from None

    # -- training metrics ---------------------------------------------------------------------

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
        self._save_npz(f"embeddings/{split}.npz", embeddings=embeddings, labels=labels)

    def has_embeddings(self, split: str) -> bool:
        """Whether ``embeddings/<split>.npz`` exists."""
        return (self.path / "embeddings" / f"{split}.npz").exists()

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
        relative = f"embeddings/{split}.npz"
        path = self.path / relative
        if not path.exists():
            raise RunError(f"{path} is missing: {self.embed_hint(split)}")
        try:
            with np.load(path, allow_pickle=False) as data:
                return len(data["labels"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            raise RunError(f"{path} is corrupt ({error}); {self.remake(relative)}") from None

    def embeddings(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split's ``(embeddings (n, d) float32, labels (n,))``."""
        relative = f"embeddings/{split}.npz"
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
        self._save_parquet(f"eval/{split}_per_query.parquet", per_query)
        self._save_npz(
            f"eval/{split}_neighbours.npz",
            neighbours=np.asarray(neighbours, dtype=np.int64),
            similarities=np.asarray(similarities, dtype=np.float32),
        )
        # metrics last: its presence marks the evaluation as complete
        atomic_write_json(self.path / f"eval/{split}_metrics.json", metrics)

    def eval_metrics(self, split: str = "test") -> dict[str, Any] | None:
        """A split's global retrieval metrics, or None before evaluation."""
        return self._read_json(f"eval/{split}_metrics.json", required=False)

    def per_query(self, split: str = "test") -> pd.DataFrame | None:
        """A split's per-query table, or None before evaluation."""
        return self._read_parquet(f"eval/{split}_per_query.parquet")

    def neighbours(self, split: str = "test") -> tuple[np.ndarray, np.ndarray] | None:
        """A split's ``(neighbour indices (n, K), similarities (n, K))``, or None."""
        arrays = self._load_npz(f"eval/{split}_neighbours.npz", required=False)
        if arrays is None:
            return None
        return arrays["neighbours"], arrays["similarities"]

    def save_consistency(self, summary: dict[str, Any], per_sample: pd.DataFrame) -> None:
        """Store the train split's neighbour-consistency table and its summary."""
        self._save_parquet("eval/consistency.parquet", per_sample)
        atomic_write_json(self.path / "eval/consistency.json", summary)

    def consistency(self) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """``(summary, per_sample)`` of neighbour consistency, or None before it was computed."""
        summary = self._read_json("eval/consistency.json", required=False)
        per_sample = self._read_parquet("eval/consistency.parquet")
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
        stem = f"projections/{split}_{method}"
        with atomic_writer(self.path / f"{stem}.npy") as tmp:
            np.save(tmp, coords)
        atomic_write_json(self.path / f"{stem}.json", meta)

    def projection(self, split: str, method: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """``(coords (n, 2), meta)`` of a stored map, or None when absent."""
        stem = f"projections/{split}_{method}"
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

    # -- replay: the probe set's embeddings during training ------------------------------------

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
        stem = f"projections/replay_{method}"
        self._save_npz(f"{stem}.npz", epochs=np.asarray(epochs, dtype=np.int64), coords=coords)
        atomic_write_json(self.path / f"{stem}.json", meta)

    def replay_layout(self, method: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
        """``(epochs (frames,), coords (frames, n, 2), meta)`` of a stored layout, or None."""
        stem = f"projections/replay_{method}"
        meta = self._read_json(f"{stem}.json", required=False)
        fix = f"recompute it with `dmlviz project --force {self.path}`"
        arrays = self._load_npz(f"{stem}.npz", required=False, fix=fix)
        if meta is None or arrays is None:
            return None
        return arrays["epochs"], arrays["coords"], meta

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
        return load_dataset(c["dataset"], **kwargs)

    # -- summary ----------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """A flat row describing the run for tables: identity, settings, state and best metrics.
        ``state`` is status.json's, or "died" when that says running but its writer is gone
        (``writer_gone``)."""
        from dmlviz.runs.imported import is_imported

        c = self.config
        row: dict[str, Any] = {
            "name": self.name,
            "path": str(self.path),
            "dataset": c.get("dataset"),
            "model": c.get("model"),
            "loss": c.get("loss"),
            "noise_kind": c.get("noise_kind"),
            "noise_rate": c.get("noise_rate", 0.0),
            "seed": c.get("seed"),
            "epochs": c.get("epochs"),
            "preset_source": c.get("preset_source"),
            "split_layout": c.get("split_layout"),
            "test_classes_in_train": c.get("test_classes_in_train"),
            "imported": is_imported(c),
        }
        status = self.status()
        row["state"] = "died" if self.writer_gone() else status.get("state")
        row["epoch"] = status.get("epoch")
        row["best_map@r"] = self.best_training_metric("map@r")
        metrics = self.eval_metrics("test") or {}
        row["map@r"] = metrics.get("map@r")
        row["recall@1"] = metrics.get("recall@1")
        consistency = self._read_json("eval/consistency.json", required=False) or {}
        row["consistency_clean"] = consistency.get("consistency_clean")
        row["consistency_flipped"] = consistency.get("consistency_flipped")
        row["detector_auroc"] = consistency.get("detector_auroc")
        replay = self._read_json(REPLAY_SUMMARY, required=False) or {}
        row["auroc_peak_epoch"] = replay.get("auroc_peak_epoch")
        row["memorised_end"] = replay.get("memorised_end")
        return row

    # -- file helpers -----------------------------------------------------------------------------

    def _read_json(self, relative: str, required: bool = True) -> Any:
        path = self.path / relative
        if not path.exists():
            if required:
                raise RunError(f"{path} is missing")
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RunError(f"{path} is corrupt ({error}); {self.remake(relative)}") from None

    def _save_npz(self, relative: str, **arrays: Any) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.path / relative, buffer.getvalue())

    def _load_npz(
        self, relative: str, required: bool = True, hint: str = "", fix: str = ""
    ) -> dict | None:
        path = self.path / relative
        if not path.exists():
            if required:
                raise RunError(f"{path} is missing" + (f": {hint}" if hint else ""))
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise RunError(f"{path} is corrupt ({error}); {fix or self.remake(relative)}") from None

    def _save_parquet(self, relative: str, frame: pd.DataFrame) -> None:
        with atomic_writer(self.path / relative) as tmp:
            frame.to_parquet(tmp, index=False)

    def _read_parquet(self, relative: str) -> pd.DataFrame | None:
        path = self.path / relative
        if not path.exists():
            return None
        try:
            return pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for damaged files
            raise RunError(f"{path} is corrupt ({error}); {self.remake(relative)}") from None

    def remake(self, relative: str) -> str:
        """What rewrites the run's file ``relative`` (a path inside the run folder), as advice
        that ends a message: the command that computes it again."""
        from dmlviz.runs.imported import is_imported

        run = quote(self.path)
        if relative.startswith("embeddings/"):
            return self.embed_hint(Path(relative).stem)
        if relative.startswith("eval/"):
            return f"recompute it with `dmlviz evaluate {run}`"
        if relative.startswith("projections/"):
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


def process_alive(pid: int, started: float | None = None) -> bool | None:
    """Whether process ``pid`` still runs and, with ``started`` (its ``psutil`` start time, unix
    time), is the same process and not a later one given the same pid; None when that cannot be
    told (no permission). A zombie counts as gone unless other threads of it still run."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE and process.num_threads() <= 1:
            return False
        now = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return None
    return not isinstance(started, (int, float)) or abs(now - started) <= 1.0


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


class TrainingLock:
    """``train.lock`` in a run folder, held (``filelock``: an OS file lock) by the one process that
    trains the run. The OS releases it when that process ends, however it ends."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = None

    def acquire(self) -> None:
        """Take the lock (creating the folder); raises ``RunError`` when another process holds it."""
        from filelock import FileLock, Timeout

        if self._lock is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.path / LOCK, timeout=0, mode=file_mode())
        try:
            lock.acquire()
        except Timeout:
            raise RunError(
                f"{self.path} is being trained by another process{self._holder()}: wait for it "
                "to finish or stop it (two trainings of one run would overwrite each other)"
            ) from None
        self._lock = lock

    def release(self) -> None:
        """Let the lock go (nothing when it is not held)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def holder(self) -> str | None:
        """Who trains the run now, from its status.json ("pid 123 on host h", or "a process"
        when it does not say); None when no process holds the lock (or that cannot be told)."""
        from filelock import FileLock, Timeout

        if self._lock is not None or not (self.path / LOCK).is_file():
            return None
        try:
            with FileLock(self.path / LOCK, timeout=0):
                return None
        except Timeout:
            pass
        except OSError:  # a lock file this user cannot open: someone else's run
            return None
        try:
            status = json.loads((self.path / STATUS).read_text())
        except (OSError, ValueError):
            status = {}
        pid = status.get("pid") if isinstance(status, dict) else None
        if not isinstance(pid, int):
            return "a process"
        host = status.get("host")
        return f"pid {pid}" + (f" on {host}" if host else "")

    def _holder(self) -> str:
        holder = self.holder() if self._lock is None else None
        return f" ({holder})" if holder and holder != "a process" else ""


def replay_snapshot_file(epoch: int) -> str:
    """The file holding the replay snapshot after ``epoch``, relative to the run folder."""
    return f"{REPLAY}/epoch_{int(epoch):04d}.npz"


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
