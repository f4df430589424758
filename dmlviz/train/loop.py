"""The training loop: one loop for every loss, writing a run directory as it goes.

Per epoch: batches of ``m_per_class`` images from each of ``batch_size / m_per_class`` classes
(by the train split's OBSERVED labels, noisy when ``noise_rate > 0``), one optimiser step each;
then, every ``eval_every`` epochs, MAP@R and R@1 on the held-out split; then a checkpoint
(metrics record, trainer state, weights, status), each file written atomically. An interrupted or
failed run therefore always holds its last complete epoch, and ``resume=True`` continues from it
to the same weights an uninterrupted run reaches. One process trains a run at a time
(``train.lock``); SIGTERM and SIGHUP stop it like Ctrl-C, recorded as "interrupted".
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dmlviz import __version__
from dmlviz.data import MPerClassBatchSampler, inject_label_noise, split_layout
from dmlviz.evaluate import retrieval_metrics
from dmlviz.jobs.lock import TrainingLock
from dmlviz.losses import build
from dmlviz.models import build_model
from dmlviz.models.projector import ProjectedLoss
from dmlviz.runs import Run, RunError, remove_stale_temporaries
from dmlviz.runs.run import LABELS, check_new_run_folder
from dmlviz.train.config import ConfigError, check_resume, resolve_config, validate_config
from dmlviz.train.device import amp_dtype, pick_device
from dmlviz.train.distributed import DistInfo, RankSlice, any_rank, gather_batch, init_distributed
from dmlviz.train.embed import compute_embeddings, run_splits
from dmlviz.train.replay import Replay
from dmlviz.train.start import starting_model

NOISE_FEATURE_SIZE = 16  # nearest_class noise compares images pooled to at most 16 x 16 px
POSTFIX_EVERY_S = 0.5
STOP_SIGNALS = ("SIGTERM", "SIGHUP")  # `kill`, a closed terminal: stop as Ctrl-C does


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP reached the training process; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def train(
    config: dict[str, Any] | None,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Run:
    """Train a model as ``config`` says and write the run directory ``out``; returns the Run.

    ``config`` may be partial (missing keys come from ``default_config(dataset, loss)``); it is
    validated once, before anything is written. With ``resume`` the run in ``out`` continues from
    its last complete epoch; ``config`` may then be None, or change only ``RESUMABLE_CHANGES``.
    ``on_epoch`` gets each epoch's metrics record. ``should_stop`` is polled between batches: when
    it returns True the run stops with state "cancelled", keeping its last complete epoch.
    Ctrl-C, SIGTERM, SIGHUP and a closed stdout leave state "interrupted" (with the ``reason``), an
    error "failed"; both re-raise. Divergence raises ``FloatingPointError``. While it trains, the
    run is locked: a second ``train`` of it raises ``RunError``. Under torchrun every process
    calls ``train``; rank 0 writes the run.
    """
    out = Path(out)
    run = None
    lock = TrainingLock(out)  # taken by the process that writes the run, before it writes
    if resume:
        run = Run.load(out)
        if run.config.get("dmlviz_version") is None:
            raise RunError(f"{out} was not written by dmlviz train; it cannot be resumed")
        config = validate_config(check_resume(resolve_config(run.config), config or {}))
    else:
        check_new_run_folder(out)
        config = resolve_config(config or {})
    device = pick_device(config["device"])
    dist_info = init_distributed(use_cuda=device.type == "cuda")
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    threads = torch.get_num_threads()
    if config["num_threads"]:
        torch.set_num_threads(config["num_threads"])
    handlers = _stop_on_signals()
    try:
        return _train(config, out, run, lock, dist_info, device, progress, on_epoch, should_stop)
    finally:
        lock.release()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        torch.set_num_threads(threads)
        if dist_info.owns_group:
            torch.distributed.destroy_process_group()


def _train(
    config: dict[str, Any],
    out: Path,
    run: Run | None,
    lock: TrainingLock,
    dist_info: DistInfo,
    device: torch.device,
    progress: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    should_stop: Callable[[], bool] | None,
) -> Run:
    main = dist_info.is_main
    _seed_everything(config["seed"])

    # -- data: the train split, its observed (possibly noisy) labels, m-per-class batches --------
    train_set = Run(out, config).dataset("train", augment=config["augment"])
    # every split is read and its images checked before anything is written
    splits = run_splits(Run(out, config))[1:]  # what follows "train"
    held_out = {split: Run(out, config).dataset(split) for split in splits}
    _check_classes_per_batch(config, train_set)
    if config["batch_size"] % dist_info.world_size:
        raise ConfigError(
            "batch_size",
            config["batch_size"],
            f"must be a multiple of the {dist_info.world_size} training processes",
        )
    if run is None:
        config = _complete_config(config, out, train_set, held_out)
        # built before the folder is written, so missing ImageNet weights leave nothing behind
        model = starting_model(config, Run(out, config).model_kwargs())
        config = {**config, "weights_source": model.weights_source}
        if main:
            lock.acquire()
            run = Run.create(out, config)
        _barrier(dist_info)
        if not main:
            run = Run.load(out)
        state = None
    else:
        if main:
            lock.acquire()
            remove_stale_temporaries(run.path)  # left by a process killed mid-write
        if main and config != run.config:
            run.update_config(config)
        model = build_model(**run.model_kwargs())
        state = run.load_trainer_state()
    try:
        noisy = run.labels()
    except RunError as error:  # corrupt: the config's noise settings rebuild it exactly
        warnings.warn(f"{error}; rebuilding it", stacklevel=2)
        noisy = None
    if noisy is None:
        noisy = _noisy_labels(config, train_set, run)
        if main:
            run.save_labels(noisy)
    elif len(noisy.observed) != len(train_set):
        raise RunError(
            f"{run.path / LABELS} has {len(noisy.observed)} labels but the train split "
            f"has {len(train_set)} images: the dataset changed; retrain this run"
        )
    observed = torch.as_tensor(np.asarray(noisy.observed), dtype=torch.int64)
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
    steps_per_epoch = len(sampler)

    # -- model, loss, optimiser, schedule, mixed precision -----------------------------------------
    model = model.to(device)
    channels_last = device.type == "cuda" and config["model"] != "mlp"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = build(config["loss"], **config["loss_kwargs"])
    if config["projector_dim"]:
        loss_fn = ProjectedLoss(loss_fn, config["embedding_dim"], config["projector_dim"])
    loss_fn = loss_fn.to(device)
    optimizer = _optimizer(config, model, loss_fn)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config, steps_per_epoch))
    dtype = amp_dtype(config["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state.get("loss", {}))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        start_epoch = int(state["epoch"])
        if start_epoch > config["epochs"]:
            raise ConfigError(
                "epochs", config["epochs"], f"the run already trained {start_epoch} epochs"
            )
        if main and not run.has_model():
            run.save_model(model)  # deleted or lost: trainer_state.pt holds the same weights
    if main:  # also when a crash came before the first trainer state: one record per epoch
        run.truncate_metrics(start_epoch)
        run.truncate_replay(start_epoch)
    replay = None
    if main:  # the probe's embeddings every replay_every epochs, on un-augmented images
        plain_train = run.dataset("train") if config["augment"] else train_set
        replay = Replay.start(run, config, plain_train, held_out.get("test"), noisy)
        if replay is not None and start_epoch == 0:
            replay.snapshot(model, 0, device)
    net: torch.nn.Module = model
    if dist_info.enabled:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config["compile"]:
        net = torch.compile(net)
    params = [p for group in optimizer.param_groups for p in group["params"]]

    # -- the held-out split(s) for evaluation during training --------------------------------------
    epochs = config["epochs"]
    eval_sets = {}
    if main and config["eval_every"]:
        eval_sets = {split: held_out[split] for split in ("test", "val") if split in held_out}
        if "query" in held_out:  # retrieval of query images among a separate gallery
            eval_sets["test"] = (held_out["query"], held_out["gallery"])
    writer = _tensorboard_writer(run) if main and config["tensorboard"] else None

    # -- the loop ------------------------------------------------------------------------------------
    bar = tqdm(
        total=epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        disable=not (progress and main),
        unit="batch",
        desc=run.name,
        dynamic_ncols=True,
    )
    done = start_epoch
    stopped = False
    if main:
        run.set_status("running", epoch=done, epochs=epochs)
    try:
        for epoch in range(start_epoch + 1, epochs + 1):
            sampler.set_epoch(epoch)
            model.train()
            total = torch.zeros((), device=device)
            steps = images_seen = 0
            started = shown = time.perf_counter()
            for images, _, index in loader:
                if _poll(should_stop, dist_info, device):
                    stopped = True
                    break
                labels = observed[index].to(device, non_blocking=True)
                images = images.to(device, non_blocking=True)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                try:
                    loss = train_step(
                        net, loss_fn, images, labels, optimizer, scheduler, scaler, dtype,
                        config["grad_clip"], params, dist_info.enabled,
                    )  # fmt: skip
                except FloatingPointError as error:
                    raise _diverged(str(error), epoch, (epoch - 1) * steps_per_epoch + steps + 1,
                                    config) from None  # fmt: skip
                total += loss
                steps += 1
                images_seen += len(index) * dist_info.world_size
                bar.update(1)
                now = time.perf_counter()
                if not bar.disable and now - shown > POSTFIX_EVERY_S:
                    bar.set_postfix(
                        loss=f"{loss.item():.4f}", img_s=f"{images_seen / (now - started):.0f}"
                    )
                    shown = now
            if stopped:
                break
            seconds = time.perf_counter() - started
            mean_loss = (total / max(steps, 1)).item()
            if not math.isfinite(mean_loss):
                raise _diverged(f"the loss became {mean_loss}", epoch, epoch * steps_per_epoch,
                                config)  # fmt: skip
            record: dict[str, Any] = {
                "epoch": epoch,
                "step": epoch * steps_per_epoch,
                "loss": mean_loss,
                "lr": optimizer.param_groups[1]["lr"],
                "backbone_lr": optimizer.param_groups[0]["lr"],
                "images_per_s": images_seen / seconds,
                "seconds": seconds,
            }
            if eval_sets and (epoch % config["eval_every"] == 0 or epoch == epochs):
                record.update(_evaluate(model, eval_sets, device, config))
            if replay is not None and replay.due(epoch, epochs):
                replay_started = time.perf_counter()
                replay.snapshot(model, epoch, device)  # before the checkpoint: retrained if lost
                record["replay_seconds"] = time.perf_counter() - replay_started
            if main:
                _checkpoint(run, record, model, optimizer, scheduler, scaler, epochs, loss_fn)
            done = epoch  # saved: an interruption from here on keeps this epoch
            if main:
                if writer is not None:
                    for key, value in record.items():
                        if key not in ("epoch", "step"):
                            writer.add_scalar(key, value, epoch)
                    writer.flush()
                if progress:
                    bar.write(_describe(record, epochs))
            if main and on_epoch is not None:
                on_epoch(record)
            _barrier(dist_info)
    except KeyboardInterrupt as error:
        reason = str(error) if isinstance(error, Terminated) else "Ctrl-C"
        if main:
            _record_end(run, "interrupted", epoch=done, epochs=epochs, reason=reason)
        raise
    except BrokenPipeError:  # stdout went away (`| head`): stop as if interrupted, resumable
        if main:
            _record_end(run, "interrupted", epoch=done, epochs=epochs, reason="stdout closed")
        raise
    except Exception as error:
        if main:
            _record_end(run, "failed", epoch=done, epochs=epochs,
                        error=f"{type(error).__name__}: {error}")  # fmt: skip
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if main:
        run.set_status("cancelled" if stopped else "finished", epoch=done, epochs=epochs)
    return run


def train_step(
    net: torch.nn.Module,
    loss_fn: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    dtype: torch.dtype | None,
    grad_clip: float | None,
    params: list[torch.nn.Parameter],
    distributed: bool,
) -> torch.Tensor:
    """One optimiser step; returns the (detached) loss of the whole, global batch.

    The backbone runs under autocast when ``dtype`` is set; the head and the loss run in fp32.
    Distributed, the loss sees every rank's embeddings and labels (``gather_batch``).
    Raises ``FloatingPointError`` when the embeddings are not finite (training diverged).
    """
    with torch.autocast(images.device.type, dtype=dtype, enabled=dtype is not None):
        embeddings = net(images)
    embeddings = embeddings.float()
    if distributed:
        embeddings, labels = gather_batch(embeddings, labels)
    if not torch.isfinite(embeddings).all():
        raise FloatingPointError("the embeddings became NaN or infinite")
    loss = loss_fn(embeddings, labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return loss.detach()


# -- pieces of the loop ------------------------------------------------------------------------------


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


def _noisy_labels(config: dict[str, Any], train_set, run: Run):
    """The train split's labels after ``inject_label_noise`` as the config says."""
    features = None
    if config["noise_rate"] > 0 and config["noise_kind"] == "nearest_class":
        plain = run.dataset("train") if config["augment"] else train_set
        features = _image_features(plain)
    return inject_label_noise(
        np.asarray(train_set.labels),
        rate=config["noise_rate"],
        kind=config["noise_kind"],
        seed=config["noise_seed"],
        num_classes=train_set.num_classes,
        features=features,
    )


def _image_features(dataset) -> np.ndarray:
    """Flattened images (pooled to at most ``NOISE_FEATURE_SIZE`` px a side), (n, features)."""
    loader = DataLoader(dataset, batch_size=256, shuffle=False)
    rows = []
    for images, *_ in loader:
        if images.shape[-1] > NOISE_FEATURE_SIZE:
            images = torch.nn.functional.adaptive_avg_pool2d(images, NOISE_FEATURE_SIZE)
        rows.append(images.flatten(1))
    return torch.cat(rows).numpy()


def _optimizer(config: dict[str, Any], model, loss_fn) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum 0.9, Nesterov) with a backbone group and a head group, and a
    projector group at twice the head's lr when the loss has one (the contextual R224 recipe)."""
    backbone_lr = config["backbone_lr"] or config["lr"]
    groups = [
        {"params": model.backbone_parameters(), "lr": backbone_lr, "name": "backbone"},
        {"params": model.head_parameters(), "lr": config["lr"], "name": "head"},
    ]
    if list(loss_fn.parameters()):
        groups.append(
            {"params": list(loss_fn.parameters()), "lr": 2 * config["lr"], "name": "projector"}
        )
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config["lr"],
            momentum=0.9,
            nesterov=True,
            weight_decay=config["weight_decay"],
        )
    return torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])


def _lr_factor(config: dict[str, Any], steps_per_epoch: int) -> Callable[[int], float]:
    """Learning-rate multiplier per optimiser step: cosine to 0, step decay, or constant."""
    total = config["epochs"] * steps_per_epoch
    if config["schedule"] == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    if config["schedule"] == "step":
        every, gamma = config["step_size"] * steps_per_epoch, config["step_gamma"]
        return lambda step: gamma ** (step // every)
    return lambda step: 1.0


def _evaluate(
    model, eval_sets: dict, device: torch.device, config: dict[str, Any]
) -> dict[str, float]:
    """MAP@R and R@1 of each held-out split: ``map@r`` and ``recall@1`` for test, ``val_map@r``
    and ``val_recall@1`` for val."""
    batch_size = 512 if config["model"] in ("mlp", "convnet") else 128
    record = {}

    def embed(dataset):
        return compute_embeddings(model, dataset, device, batch_size, config["num_workers"])

    for split, dataset in eval_sets.items():
        if isinstance(dataset, tuple):  # (query, gallery)
            query, gallery = dataset
            metrics = retrieval_metrics(
                embed(query), query.labels, embed(gallery), gallery.labels, clustering=False
            ).metrics
        else:
            metrics = retrieval_metrics(embed(dataset), dataset.labels, clustering=False).metrics
        prefix = "" if split == "test" else f"{split}_"
        record[f"{prefix}map@r"] = float(metrics["map@r"])
        record[f"{prefix}recall@1"] = float(metrics["recall@1"])
    return record


def _checkpoint(
    run: Run, record, model, optimizer, scheduler, scaler, epochs: int, loss_fn
) -> None:
    """Write the epoch's files in an order that survives a crash between any two of them.

    The trainer state carries the weights too, so it alone restarts training; metrics past its
    epoch are dropped on resume, and model.safetensors (for readers) is rewritten each epoch.
    """
    run.append_metrics(record)
    run.save_trainer_state(
        {
            "epoch": record["epoch"],
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "loss": {k: v.detach().cpu() for k, v in loss_fn.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _rng_state(),
        }
    )
    run.save_model(model)
    run.set_status("running", epoch=record["epoch"], epochs=epochs)


def _diverged(what: str, epoch: int, step: int, config: dict[str, Any]) -> FloatingPointError:
    return FloatingPointError(
        f"training diverged: {what} at epoch {epoch}, step {step}. Lower the learning rate "
        f"(lr={config['lr']:g}; --lr) or clip the gradients (grad_clip; --grad-clip)"
    )


def _record_end(run: Run, state: str, **fields: Any) -> None:
    """Record how the run ended, unless even that cannot be written (a full disk): the error
    being raised says why, and ``Run.writer_gone`` tells the stale "running" state later."""
    with contextlib.suppress(OSError):
        run.set_status(state, **fields)


def _stop_on_signals() -> dict[int, Any]:
    """Make SIGTERM and SIGHUP raise ``Terminated`` (where they still have the default action,
    and in the main thread only); returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, _terminate)
    return previous


def _terminate(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal stops the process outright
    raise Terminated(signum)


def _describe(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.endswith(("map@r", "recall@1"))]
    parts.append(f"{record['images_per_s']:.0f} img/s")
    return "  ".join(parts)


def _poll(should_stop, dist_info: DistInfo, device: torch.device) -> bool:
    if should_stop is None:
        return False
    flag = bool(should_stop())
    return any_rank(flag, device) if dist_info.enabled else flag


def _barrier(dist_info: DistInfo) -> None:
    if dist_info.enabled:
        torch.distributed.barrier()


def _tensorboard_writer(run: Run):
    """A SummaryWriter into ``<run>/tensorboard``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run.path / "tensorboard"))


# -- reproducibility ---------------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and plain lists (loadable with weights_only)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
