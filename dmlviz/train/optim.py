"""The optimiser and the learning-rate schedule a run trains with, as its config says."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

SGD_MOMENTUM = 0.9


def build_optimizer(
    config: dict[str, Any], model: torch.nn.Module, loss_fn: torch.nn.Module
) -> torch.optim.Optimizer:
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
            momentum=SGD_MOMENTUM,
            nesterov=True,
            weight_decay=config["weight_decay"],
        )
    return torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])


def lr_factor(config: dict[str, Any], steps_per_epoch: int) -> Callable[[int], float]:
    """Learning-rate multiplier per optimiser step: cosine to 0, step decay, or constant."""
    total = config["epochs"] * steps_per_epoch
    if config["schedule"] == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    if config["schedule"] == "step":
        every, gamma = config["step_size"] * steps_per_epoch, config["step_gamma"]
        return lambda step: gamma ** (step // every)
    return lambda step: 1.0
