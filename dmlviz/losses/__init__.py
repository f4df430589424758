"""Metric-learning losses: ours (contextual, Ranked List Loss) and baselines from pytorch-metric-learning.

``build(name, **kwargs)`` is the one way the CLI, notebooks and dashboard create a loss; the
losses and their facts (paper defaults, search space, display name) are ``dmlviz.registry``'s.
"""

import torch

from dmlviz.losses._batch import check_batch
from dmlviz.losses.contextual import ContextualLoss
from dmlviz.losses.ranked_list import RankedListLoss
from dmlviz.registry import LOSSES, loss_entry


def build(name: str, **kwargs) -> torch.nn.Module:
    """Return the loss ``name`` (one of ``LOSSES``) built with its registered paper defaults,
    ``kwargs`` replacing any of them.

    Every loss is called as ``loss(embeddings, labels)`` and returns a scalar tensor; a bad batch
    (not (n, d) floats and n integer labels, or NaN values) raises ``ValueError`` for every loss.
    """
    entry = loss_entry(name)
    defaults = {k: v for k, v in entry.defaults.items() if entry.follows.get(k) not in kwargs}
    try:
        loss = entry.load()(**{**defaults, **kwargs})
    except TypeError as error:
        raise ValueError(f"bad hyperparameters for loss {name!r}: {error}") from None
    if not isinstance(loss, (ContextualLoss, RankedListLoss)):  # a baseline: check its batch too
        loss.register_forward_pre_hook(_check_inputs, with_kwargs=True)
    return loss


def _check_inputs(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
    """The paper losses' batch checks (``check_batch``) before a baseline's forward."""
    embeddings = args[0] if args else kwargs.get("embeddings")
    labels = args[1] if len(args) > 1 else kwargs.get("labels")
    check_batch(embeddings, labels)


__all__ = ["LOSSES", "ContextualLoss", "RankedListLoss", "build"]
