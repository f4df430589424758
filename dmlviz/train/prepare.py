"""Everything a run's training needs before its first epoch, built once (``prepare``).

Every split is read and its images checked before anything is written; then the run is created
(its config completed from the data, its starting model built first so that missing ImageNet
weights leave nothing behind) or reopened to resume; then its labels, its batches, the model and
what trains it (loss, optimiser, schedule, mixed precision; restored from the trainer state on
resume), the replay probe and the held-out splits evaluated during training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from dmlviz import __version__
from dmlviz.data import MPerClassBatchSampler, split_layout
from dmlviz.jobs.lock import TrainingLock
from dmlviz.losses import build
from dmlviz.models import build_model
from dmlviz.models.projector import ProjectedLoss
from dmlviz.runs import Run, remove_stale_temporaries
from dmlviz.train.checkpoint import restore_checkpoint
from dmlviz.train.config import ConfigError
from dmlviz.train.device import amp_dtype
from dmlviz.train.distributed import DistInfo, RankSlice
from dmlviz.train.embed import run_splits
from dmlviz.train.labels import observed_labels
from dmlviz.train.optim import build_optimizer, lr_factor
from dmlviz.train.replay import Replay
from dmlviz.train.start import starting_model


@dataclass
class Training:
    """What every epoch uses, built once by ``prepare``."""

    config: dict[str, Any]
    run: Run
    dist_info: DistInfo
    device: torch.device
    observed: torch.Tensor  # the train split's observed (possibly noisy) labels, by image index
    sampler: MPerClassBatchSampler
    loader: DataLoader
    model: torch.nn.Module  # the bare model: evaluated, snapshotted, saved
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None  # autocast's, None without mixed precision
    start_epoch: int = 0  # the last epoch saved before this call
    net: torch.nn.Module | None = None  # what trains: the model, under DDP and torch.compile
    replay: Replay | None = None
    eval_sets: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    @property
    def channels_last(self) -> bool:
        """Whether images go in channels-last, as the model does (``_channels_last``)."""
        return _channels_last(self.config, self.device)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        """Every parameter the optimiser updates (what ``grad_clip`` clips)."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]


def prepare(
    config: dict[str, Any],
    out: Path,
    run: Run | None,
    lock: TrainingLock,
    dist_info: DistInfo,
    device: torch.device,
) -> Training:
    """Everything before the first epoch: every split read and checked, then the run created
    (or reopened, with ``run``) under ``lock``, its labels, the batches, the model with its
    loss, optimiser, schedule and scaler (restored from the trainer state on resume), the
    replay probe and the held-out splits to evaluate on."""
    main = dist_info.is_main
    planned = Run(out, config)  # the run with the config of this call: where its splits are
    train_set, held_out = _read_splits(planned, dist_info)
    if run is None:
        config, run, model = _create_run(planned, train_set, held_out, lock, dist_info)
        state = None
    else:
        model, state = _reopen_run(run, config, lock, main)
    noisy = observed_labels(run, config, train_set, write=main)
    observed = torch.as_tensor(np.asarray(noisy.observed), dtype=torch.int64)
    sampler, loader = _batches(config, noisy, train_set, dist_info, device)
    parts = _optimisation(config, model, len(sampler), device)  # model, loss_fn, optimizer, ...
    t = Training(config, run, dist_info, device, observed, sampler, loader, *parts)
    if state is not None:
        _restore(t, state)
    if main:  # also when a crash came before the first trainer state: one record per epoch
        run.truncate_metrics(t.start_epoch)
        run.truncate_replay(t.start_epoch)
        t.replay = _start_replay(t, train_set, held_out, noisy)
        t.eval_sets = _eval_sets(held_out) if config["eval_every"] else {}
    t.net = _wrap(t.model, config, dist_info, device)
    return t


def _read_splits(planned: Run, dist_info: DistInfo) -> tuple[Any, dict[str, Any]]:
    """The train split (augmented when the config says) and the other splits by name, every
    one read and its images checked before anything is written; ``ConfigError`` when its
    batches cannot be made."""
    config = planned.config
    train_set = planned.dataset("train", augment=config["augment"])
    held_out = {split: planned.dataset(split) for split in run_splits(planned)[1:]}
    _check_classes_per_batch(config, train_set)
    if config["batch_size"] % dist_info.world_size:
        raise ConfigError(
            "batch_size",
            config["batch_size"],
            f"must be a multiple of the {dist_info.world_size} training processes",
        )
    return train_set, held_out


def _create_run(
    planned: Run, train_set, held_out: dict[str, Any], lock: TrainingLock, dist_info: DistInfo
) -> tuple[dict[str, Any], Run, torch.nn.Module]:
    """Write the new run (rank 0, under ``lock``) with its config completed from the data;
    returns that config, the run and its starting model."""
    planned.config = _complete_config(planned.config, planned.path, train_set, held_out)
    # built before the folder is written, so missing ImageNet weights leave nothing behind
    model = starting_model(planned.config, planned.model_kwargs())
    config = {**planned.config, "weights_source": model.weights_source}
    if dist_info.is_main:
        lock.acquire()
        run = Run.create(planned.path, config)
    dist_info.barrier()
    if not dist_info.is_main:
        run = Run.load(planned.path)
    return config, run, model


def _reopen_run(
    run: Run, config: dict[str, Any], lock: TrainingLock, main: bool
) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    """Take a resumed run's ``lock`` and record its changed ``config`` (rank 0); returns its
    model (untrained) and its trainer state."""
    if main:
        lock.acquire()
        remove_stale_temporaries(run.path)  # left by a process killed mid-write
        if config != run.config:
            run.update_config(config)
    return build_model(**run.model_kwargs()), run.load_trainer_state()


def _batches(
    config: dict[str, Any], noisy, train_set, dist_info: DistInfo, device: torch.device
) -> tuple[MPerClassBatchSampler, DataLoader]:
    """Batches of ``m_per_class`` images from each of ``batch_size / m_per_class`` classes, by
    the observed labels; each process of a distributed run loads its slice of every batch."""
    sampler = MPerClassBatchSampler(
        np.asarray(noisy.observed),
        m=config["m_per_class"],
        batch_size=config["batch_size"],
        seed=config["seed"],
        batches_per_epoch=config["batches_per_epoch"],
    )
    batches = (
        RankSlice(sampler, dist_info.rank, dist_info.world_size) if dist_info.enabled else sampler
    )
    loader = DataLoader(
        train_set,
        batch_sampler=batches,
        num_workers=config["num_workers"],
        pin_memory=device.type == "cuda",
        persistent_workers=config["num_workers"] > 0,
    )
    return sampler, loader


def _optimisation(
    config: dict[str, Any], model: torch.nn.Module, steps_per_epoch: int, device: torch.device
) -> tuple:
    """The model on ``device`` (channels-last for convolutions on a GPU), what trains it (the
    loss, with its projector when asked) and how (optimiser, lr schedule, mixed precision's
    scaler and dtype)."""
    model = model.to(device)
    if _channels_last(config, device):
        model = model.to(memory_format=torch.channels_last)
    loss_fn = build(config["loss"], **config["loss_kwargs"])
    if config["projector_dim"]:
        loss_fn = ProjectedLoss(loss_fn, config["embedding_dim"], config["projector_dim"])
    loss_fn = loss_fn.to(device)
    optimizer = build_optimizer(config, model, loss_fn)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps_per_epoch))
    dtype = amp_dtype(config["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    return model, loss_fn, optimizer, scheduler, scaler, dtype


def _channels_last(config: dict[str, Any], device: torch.device) -> bool:
    """Whether the model and its images go channels-last (faster convolutions on a GPU)."""
    return device.type == "cuda" and config["model"] != "mlp"


def _restore(t: Training, state: dict[str, Any]) -> None:
    """Continue from a resumed run's trainer state (its weights written again when lost)."""
    t.start_epoch = restore_checkpoint(
        state, t.model, t.loss_fn, t.optimizer, t.scheduler, t.scaler
    )
    if t.start_epoch > t.config["epochs"]:
        raise ConfigError(
            "epochs", t.config["epochs"], f"the run already trained {t.start_epoch} epochs"
        )
    if t.dist_info.is_main and not t.run.has_model():
        t.run.save_model(t.model)  # deleted or lost: trainer_state.pt holds the same weights


def _start_replay(t: Training, train_set, held_out: dict[str, Any], noisy) -> Replay | None:
    """The replay (``Replay.start``: None when the config asks for none): the probe's embeddings
    every ``replay_every`` epochs, on un-augmented images, from the untrained model on."""
    plain_train = t.run.dataset("train") if t.config["augment"] else train_set
    replay = Replay.start(t.run, t.config, plain_train, held_out.get("test"), noisy)
    if replay is not None and t.start_epoch == 0:
        replay.snapshot(t.model, 0, t.device)
    return replay


def _eval_sets(held_out: dict[str, Any]) -> dict[str, Any]:
    """The held-out splits evaluated during training: test and val, or test as a query split
    searched among a separate gallery, (query, gallery)."""
    eval_sets = {split: held_out[split] for split in ("test", "val") if split in held_out}
    if "query" in held_out:
        eval_sets["test"] = (held_out["query"], held_out["gallery"])
    return eval_sets


def _wrap(
    model: torch.nn.Module, config: dict[str, Any], dist_info: DistInfo, device: torch.device
) -> torch.nn.Module:
    """What trains: ``model`` under DistributedDataParallel (distributed) and torch.compile
    (``compile``), wrapped after its weights are restored (DDP copies rank 0's)."""
    net = model
    if dist_info.enabled:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return torch.compile(net) if config["compile"] else net


def _complete_config(
    config: dict[str, Any], out: Path, train_set, held_out: dict[str, Any]
) -> dict[str, Any]:
    """Fill what only the data knows (channels, image size, how it was split, how many test
    classes also train) and the versions into the config."""
    if config["in_channels"] not in (None, train_set.in_channels):
        raise ConfigError(
            "in_channels",
            config["in_channels"],
            f"the {config['dataset']} images have {train_set.in_channels} channel(s)",
        )
    tested = {
        name for split, data in held_out.items() if split != "val" for name in data.class_names
    }
    return {
        **config,
        "name": config["name"] or out.name,
        "in_channels": train_set.in_channels,
        "image_size": config["image_size"] or train_set.image_size,
        "split_layout": split_layout(
            config["dataset"], config["dataset_root"], config["test_root"]
        ).name,
        "test_classes_in_train": len(tested & set(train_set.class_names)),
        "dmlviz_version": __version__,
        "torch_version": torch.__version__,
    }


def _check_classes_per_batch(config: dict[str, Any], train_set) -> None:
    per_batch = config["batch_size"] // config["m_per_class"]
    if per_batch > train_set.num_classes:
        raise ConfigError(
            "batch_size",
            config["batch_size"],
            f"with m_per_class={config['m_per_class']} a batch needs {per_batch} classes but the "
            f"train split of {config['dataset']} has {train_set.num_classes}; lower batch_size "
            "or raise m_per_class",
        )
