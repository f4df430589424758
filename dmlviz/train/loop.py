"""The training loop: one loop for every loss, writing a run directory as it goes.

Per epoch: batches of ``m_per_class`` images from each of ``batch_size / m_per_class`` classes
(by the train split's OBSERVED labels, noisy when ``noise_rate > 0``), one optimiser step each;
then, every ``eval_every`` epochs, MAP@R and R@1 on the held-out split; then a checkpoint
(metrics record, trainer state, weights, status), each file written atomically. An interrupted or
failed run therefore always holds its last complete epoch, and ``resume=True`` continues from it
to the same weights an uninterrupted run reaches. One process trains a run at a time
(``train.lock``); SIGTERM and SIGHUP stop it like Ctrl-C, recorded as "interrupted".

``_train`` reads as those steps: ``prepare`` (``prepare.py``: data, the run created or resumed,
its labels, the model and what trains it, the replay probe), then per epoch ``_one_epoch``,
``_end_epoch`` (evaluation, replay, checkpoint) and ``_report`` (TensorBoard, progress), all
under ``_status``. Beside it: ``labels.py`` (noisy labels), ``optim.py`` (optimiser, schedule),
``checkpoint.py`` (what an epoch saves, the RNGs), ``replay.py``, ``embed.py``.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dmlviz.evaluate import retrieval_metrics
from dmlviz.jobs.lock import TrainingLock
from dmlviz.runs import Run, RunError
from dmlviz.runs.files import TENSORBOARD
from dmlviz.runs.run import check_new_run_folder
from dmlviz.train.checkpoint import save_checkpoint, seed_everything
from dmlviz.train.config import check_resume, resolve_config, validate_config
from dmlviz.train.device import pick_device
from dmlviz.train.distributed import DistInfo, any_rank, gather_batch, init_distributed
from dmlviz.train.embed import compute_embeddings
from dmlviz.train.prepare import Training, prepare

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
    """``train``'s steps once the process is set up: prepare, then each epoch and its end
    (evaluation, replay, checkpoint, then TensorBoard and the progress line), under the status
    record."""
    seed_everything(config["seed"])
    t = prepare(config, out, run, lock, dist_info, device)
    main, epochs = dist_info.is_main, t.config["epochs"]
    writer = _tensorboard_writer(t.run) if main and t.config["tensorboard"] else None
    bar = tqdm(
        total=epochs * t.steps_per_epoch,
        initial=t.start_epoch * t.steps_per_epoch,
        disable=not (progress and main),
        unit="batch",
        desc=t.run.name,
        dynamic_ncols=True,
    )
    with (
        bar,
        contextlib.closing(writer) if writer is not None else contextlib.nullcontext(),
        _status(t.run, main, t.start_epoch, epochs) as status,
    ):
        for epoch in range(t.start_epoch + 1, epochs + 1):
            record = _one_epoch(t, epoch, bar, should_stop)
            if record is None:
                status.stopped = True
                break
            _end_epoch(t, record)
            status.done = epoch  # saved: an interruption from here on keeps this epoch
            if main:
                _report(record, epochs, writer, bar if progress else None, on_epoch)
            dist_info.barrier()
    return t.run


# -- one epoch, and its end ------------------------------------------------------------------------------


def _one_epoch(
    t: Training, epoch: int, bar: tqdm, should_stop: Callable[[], bool] | None
) -> dict[str, Any] | None:
    """Train ``epoch``, one optimiser step per batch; returns its metrics record (loss, lr,
    speed), or None when ``should_stop`` asked to stop. Raises ``FloatingPointError`` when the
    training diverged."""
    t.sampler.set_epoch(epoch)
    t.model.train()
    params = t.params
    total = torch.zeros((), device=t.device)
    steps = images_seen = 0
    started = shown = time.perf_counter()
    for images, _, index in t.loader:
        if _poll(should_stop, t.dist_info, t.device):
            return None
        labels = t.observed[index].to(t.device, non_blocking=True)
        images = images.to(t.device, non_blocking=True)
        if t.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        try:
            loss = train_step(
                t.net, t.loss_fn, images, labels, t.optimizer, t.scheduler, t.scaler, t.dtype,
                t.config["grad_clip"], params, t.dist_info.enabled,
            )  # fmt: skip
        except FloatingPointError as error:
            step = (epoch - 1) * t.steps_per_epoch + steps + 1
            raise _diverged(str(error), epoch, step, t.config) from None
        total += loss
        steps += 1
        images_seen += len(index) * t.dist_info.world_size
        bar.update(1)
        now = time.perf_counter()
        if not bar.disable and now - shown > POSTFIX_EVERY_S:
            bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{images_seen / (now - started):.0f}")
            shown = now
    seconds = time.perf_counter() - started
    mean_loss = (total / max(steps, 1)).item()
    if not math.isfinite(mean_loss):
        raise _diverged(f"the loss became {mean_loss}", epoch, epoch * t.steps_per_epoch, t.config)
    return {
        "epoch": epoch,
        "step": epoch * t.steps_per_epoch,
        "loss": mean_loss,
        "lr": t.optimizer.param_groups[1]["lr"],
        "backbone_lr": t.optimizer.param_groups[0]["lr"],
        "images_per_s": images_seen / seconds,
        "seconds": seconds,
    }


def _end_epoch(t: Training, record: dict[str, Any]) -> None:
    """Add the held-out metrics (every ``eval_every`` epochs and after the last) and the replay
    snapshot to the epoch, then save the checkpoint (rank 0): from then on it survives a crash."""
    epoch, epochs = record["epoch"], t.config["epochs"]
    if t.eval_sets and (epoch % t.config["eval_every"] == 0 or epoch == epochs):
        record.update(_evaluate(t.model, t.eval_sets, t.device, t.config))
    if t.replay is not None and t.replay.due(epoch, epochs):
        replay_started = time.perf_counter()
        t.replay.snapshot(t.model, epoch, t.device)  # before the checkpoint: retrained if lost
        record["replay_seconds"] = time.perf_counter() - replay_started
    if t.dist_info.is_main:
        save_checkpoint(t.run, record, t.model, t.loss_fn, t.optimizer, t.scheduler, t.scaler,
                        epochs)  # fmt: skip


def _report(
    record: dict[str, Any],
    epochs: int,
    writer: Any,
    bar: tqdm | None,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> None:
    """Show a saved epoch: its scalars to TensorBoard (``writer``), its line under the progress
    ``bar``, its record to ``on_epoch``."""
    if writer is not None:
        for key, value in record.items():
            if key not in ("epoch", "step"):
                writer.add_scalar(key, value, record["epoch"])
        writer.flush()
    if bar is not None:
        bar.write(_describe(record, epochs))
    if on_epoch is not None:
        on_epoch(record)


@dataclass
class _Outcome:
    """How far the loop got: the last epoch saved, and whether it was asked to stop."""

    done: int
    stopped: bool = False


@contextlib.contextmanager
def _status(run: Run, main: bool, start_epoch: int, epochs: int) -> Iterator[_Outcome]:
    """Record the run's state around its epochs (rank 0 only): "running", then "finished", or
    "cancelled" when stopped; "interrupted" with the reason on Ctrl-C, SIGTERM, SIGHUP or a
    closed stdout (``| head``: resumable), "failed" with the error on any other error, which
    goes on up."""
    outcome = _Outcome(start_epoch)
    if main:
        run.set_status("running", epoch=start_epoch, epochs=epochs)
    try:
        yield outcome
    except (KeyboardInterrupt, Exception) as error:
        if main:
            state, why = _ending(error)
            _record_end(run, state, **why, epoch=outcome.done, epochs=epochs)
        raise
    if main:
        state = "cancelled" if outcome.stopped else "finished"
        run.set_status(state, epoch=outcome.done, epochs=epochs)


def _ending(error: BaseException) -> tuple[str, dict[str, str]]:
    """The state an error leaves a run in, and the field that says why."""
    if isinstance(error, Terminated):
        return "interrupted", {"reason": str(error)}
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", {"reason": "Ctrl-C"}
    if isinstance(error, BrokenPipeError):
        return "interrupted", {"reason": "stdout closed"}
    return "failed", {"error": f"{type(error).__name__}: {error}"}


def _record_end(run: Run, state: str, **fields: Any) -> None:
    """Record how the run ended, unless even that cannot be written (a full disk): the error
    being raised says why, and ``Run.writer_gone`` tells the stale "running" state later."""
    with contextlib.suppress(OSError):
        run.set_status(state, **fields)


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


def _diverged(what: str, epoch: int, step: int, config: dict[str, Any]) -> FloatingPointError:
    return FloatingPointError(
        f"training diverged: {what} at epoch {epoch}, step {step}. Lower the learning rate "
        f"(lr={config['lr']:g}; --lr) or clip the gradients (grad_clip; --grad-clip)"
    )


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


def _tensorboard_writer(run: Run):
    """A SummaryWriter into ``<run>/tensorboard``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run.path / TENSORBOARD))
