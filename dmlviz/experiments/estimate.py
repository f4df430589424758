"""The noise lab's cost estimate: how long an experiment will take, measured before it starts.

Training time comes from timing real optimiser steps of each loss's model on a batch of the
dataset's shape, on the device the sweep will train on (its config's ``device``: CUDA when present,
then MPS, then CPU).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from dmlviz.experiments.spec import SweepSpec, experiment_problems

STARTUP_S = 6.0  # a fresh Python process importing torch, the data and the losses
# numba compiles UMAP once per process: 30-40 s for 5000 points (docs/environment), less below
# 4096 points (exact kNN); the demo's 18 maps of about 900 points took about 22 s of CPU in all.
UMAP_COMPILE_S = 20.0
UMAP_MAP_S = 0.5  # each further UMAP map of a small split


def estimate_seconds(spec: dict[str, Any]) -> float:
    """Expected wall time of the experiment on this machine, in seconds.

    Training time comes from timing real optimiser steps of each loss's model on a batch of the
    dataset's shape here (measured once per process and setting), times the batches per epoch,
    epochs and runs, divided over ``jobs``; plus process start-up, evaluation and (unless
    ``umap`` is false) UMAP's one-off compilation and its maps.
    """
    problems = experiment_problems(spec)
    if problems:
        raise ValueError("; ".join(problems))
    sweep = SweepSpec.from_dict(spec)
    runs_per_loss = len(sweep.noise_rates) * len(sweep.train_fractions) * len(sweep.seeds)
    training = 0.0
    evaluation = 0.0
    for loss in sweep.losses:
        epoch_s, eval_s, default_epochs = _measured_costs(
            sweep.dataset, loss, sweep.dataset_root, sweep.protocol, sweep.test_root
        )
        epochs = sweep.epochs or default_epochs
        training += runs_per_loss * epochs * epoch_s
        evaluation += runs_per_loss * eval_s
    parallel = min(sweep.jobs, runs_per_loss * len(sweep.losses))
    seconds = STARTUP_S * (1 + (parallel if parallel > 1 else 0))
    seconds += (training + evaluation) / parallel
    if sweep.umap:
        seconds += UMAP_COMPILE_S + 2 * UMAP_MAP_S * runs_per_loss * len(sweep.losses)
    return float(seconds)


@functools.lru_cache(maxsize=64)
def _measured_costs(
    dataset: str, loss: str, root: str | None, protocol: str | None, test_root: str | None = None
) -> tuple[float, float, int]:
    """(seconds per training epoch, seconds to embed and evaluate a run, default epochs) of
    ``loss`` on ``dataset``, measured by timing optimiser steps and a forward pass on the device
    the sweep's runs will train on."""
    import numpy as np
    import torch

    from dmlviz.data import MPerClassBatchSampler, load_dataset
    from dmlviz.losses import build
    from dmlviz.models import build_model
    from dmlviz.train import default_config

    config = default_config(dataset, loss)
    device = training_device(config)
    kwargs = {"root": root, "seed": config["split_seed"], "protocol": protocol}
    if test_root is not None:
        kwargs["test_root"] = test_root
    train_set = load_dataset(dataset, split="train", **kwargs)
    test_set = load_dataset(dataset, split="test", **kwargs)
    size = config["image_size"] or train_set.image_size
    batches = len(
        MPerClassBatchSampler(
            np.asarray(train_set.labels),
            m=config["m_per_class"],
            batch_size=config["batch_size"],
            seed=0,
            batches_per_epoch=config["batches_per_epoch"],
        )
    )
    torch.manual_seed(0)
    model = build_model(
        config["model"],
        embedding_dim=config["embedding_dim"],
        in_channels=train_set.in_channels,
        image_size=size,
        pooling=config["pooling"],
    ).to(device)
    loss_fn = build(loss, **config["loss_kwargs"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"])
    classes = config["batch_size"] // config["m_per_class"]
    images = torch.randn(config["batch_size"], train_set.in_channels, size, size, device=device)
    labels = torch.arange(classes, device=device).repeat_interleave(config["m_per_class"])
    step_times = []
    for _ in range(8):
        started = time.perf_counter()
        value = loss_fn(model(images), labels)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        _synchronize(device)
        step_times.append(time.perf_counter() - started)
    # the first step pays one-off allocations; the fastest of the rest is the least disturbed by
    # other processes on a shared machine
    step_s = float(min(step_times[1:]))
    model.eval()
    forward_times = []
    with torch.inference_mode():
        for _ in range(3):
            started = time.perf_counter()
            model(images)
            _synchronize(device)
            forward_times.append(time.perf_counter() - started)
    forward_s = min(forward_times)
    loading_s = 1.25  # the data loader's per-batch work, relative to the step (measured on digits)
    epoch_s = batches * step_s * loading_s
    embed_s = (len(train_set) + len(test_set)) / config["batch_size"] * forward_s
    eval_s = 1.0 + 2 * embed_s  # faiss kNN, metrics and files: about a second on small sets
    return epoch_s, eval_s, int(config["epochs"])


def training_device(config: dict[str, Any]):
    """The ``torch.device`` a run of ``config`` trains on (``dmlviz.train.device.pick_device``)."""
    from dmlviz.train.device import pick_device

    return pick_device(config.get("device"))


def _synchronize(device) -> None:
    """Wait for the device's queued work, so a timer measures it (CPU work is synchronous)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
