"""What an epoch leaves on disk, and how training restarts from it exactly.

The trainer state holds the weights, the loss's own parameters, the optimiser, schedule and
gradient-scaler states and every RNG's state, as tensors and plain lists (``torch.load`` with
``weights_only``), so a resumed run reaches the weights an uninterrupted one does.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from dmlviz.runs import Run


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(
    run: Run,
    record: dict[str, Any],
    model: torch.nn.Module,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    epochs: int,
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


def restore_checkpoint(
    state: dict[str, Any],
    model: torch.nn.Module,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> int:
    """Load a saved trainer state into the training's parts and the RNGs; returns its epoch."""
    model.load_state_dict(state["model"])
    loss_fn.load_state_dict(state.get("loss", {}))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return int(state["epoch"])


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
