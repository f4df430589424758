"""Metric-learning losses: ours (contextual, Ranked List Loss) and baselines from pytorch-metric-learning.

``build(name, **kwargs)`` is the one way the CLI, notebooks and dashboard create a loss.
"""

from collections.abc import Callable

import torch

from dmlviz.losses._batch import check_batch
from dmlviz.losses.contextual import ContextualLoss
from dmlviz.losses.ranked_list import RankedListLoss


def _pml(class_name: str, **defaults) -> Callable[..., torch.nn.Module]:
    def make(**kwargs) -> torch.nn.Module:
        from pytorch_metric_learning import losses as pml_losses

        loss = getattr(pml_losses, class_name)(**{**defaults, **kwargs})
        loss.register_forward_pre_hook(_check_inputs, with_kwargs=True)
        return loss

    return make


def _check_inputs(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
    """The paper losses' batch checks (``check_batch``) before a baseline's forward."""
    embeddings = args[0] if args else kwargs.get("embeddings")
    labels = args[1] if len(args) > 1 else kwargs.get("labels")
    check_batch(embeddings, labels)


LOSSES: dict[str, Callable[..., torch.nn.Module]] = {
    "contextual": ContextualLoss,
    "rll": RankedListLoss,
    "contrastive": _pml("ContrastiveLoss", pos_margin=0.0, neg_margin=1.0),
    "multisimilarity": _pml("MultiSimilarityLoss", alpha=2.0, beta=50.0, base=0.5),
    "triplet": _pml("TripletMarginLoss", margin=0.1),
}


def build(name: str, **kwargs) -> torch.nn.Module:
    """Return the loss ``name`` (one of ``LOSSES``) built with ``kwargs`` as its hyperparameters.

    Every loss is called as ``loss(embeddings, labels)`` and returns a scalar tensor; a bad batch
    (not (n, d) floats and n integer labels, or NaN values) raises ``ValueError`` for every loss.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(sorted(LOSSES))}")
    try:
        return LOSSES[name](**kwargs)
    except TypeError as error:
        raise ValueError(f"bad hyperparameters for loss {name!r}: {error}") from None


__all__ = ["LOSSES", "ContextualLoss", "RankedListLoss", "build"]
