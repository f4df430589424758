"""The one list of losses and backbones, each entry's facts registered once, next to each other.

As timm's ``register_model``: every loss and every backbone is one ``register_*`` call below with
its factory (``"module:attribute"``, imported when built, so this module stays free of torch and
the CLI and dashboard can read it fast), and everything the rest of dmlviz says about it:

* a loss: its paper defaults (what ``dmlviz.losses.build(name)`` uses and what the paper presets
  hold) and the ``reference`` they come from, its search space for ``dmlviz tune``, its display
  name and colour in the dashboard, and its help line in the CLI;
* a backbone: its help line, whether ImageNet weights exist for it and the input side it needs.

``dmlviz.losses.build`` and ``dmlviz.models.build_model`` create them; ``LOSSES`` and
``BACKBONES`` are the names the config check, the CLI and the views accept.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dmlviz.validate import InvalidValue

SearchSpace = Callable[[Any, dict[str, Any]], dict[str, Any]]  # (optuna trial, config) -> kwargs


@dataclass(frozen=True)
class LossEntry:
    """A loss's facts. ``defaults`` are its constructor arguments as the paper sets them;
    ``per_class`` names the one the papers set to the images per class of a batch
    (``m_per_class``), which the paper presets of each dataset follow; ``follows`` maps a default
    that the paper derives from another argument to that argument: when a caller sets the
    argument, the loss derives the default again instead of taking the registered value."""

    name: str
    factory: str
    defaults: dict[str, Any]
    reference: str
    search: SearchSpace
    display_name: str
    color: str
    help: str
    per_class: str | None = None
    follows: dict[str, str] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        """The factory (a class or function), imported now."""
        return _load(self.factory)


@dataclass(frozen=True)
class BackboneEntry:
    """A backbone's facts. ``prefix``: the entry stands for every ``<name><model>`` (timm)."""

    name: str
    factory: str
    help: str
    pretrained: bool  # ImageNet weights exist (read from the local cache only)
    image_size: str  # the input side it takes, in words, for the CLI help and docs
    prefix: bool = False

    def load(self) -> Callable[..., Any]:
        """The factory (a function), imported now."""
        return _load(self.factory)


LOSSES: dict[str, LossEntry] = {}
BACKBONES: dict[str, BackboneEntry] = {}


def register_loss(**facts: Any) -> LossEntry:
    """Add the loss ``facts["name"]`` (``LossEntry``'s fields); returns its entry."""
    entry = LossEntry(**facts)
    if entry.name in LOSSES:
        raise ValueError(f"loss {entry.name!r} is registered twice")
    LOSSES[entry.name] = entry
    return entry


def register_backbone(**facts: Any) -> BackboneEntry:
    """Add the backbone ``facts["name"]`` (``BackboneEntry``'s fields); returns its entry."""
    entry = BackboneEntry(**facts)
    if entry.name in BACKBONES:
        raise ValueError(f"backbone {entry.name!r} is registered twice")
    BACKBONES[entry.name] = entry
    return entry


def loss_entry(name: str) -> LossEntry:
    """The entry of loss ``name``; ``InvalidValue`` naming the choices for an unknown one."""
    if name not in LOSSES:
        raise InvalidValue("loss", name, f"unknown loss; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def names_help(names: list[str]) -> str:
    """``["a", "b", "c"]`` as ``"a, b or c"``, for help lines."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def loss_help() -> str:
    """The CLI's help for a loss option: every loss by name."""
    return names_help(list(LOSSES))


def backbone_help() -> str:
    """The CLI's help for ``--model``: every backbone by name."""
    names = [f"{e.name}<name> ({e.help})" if e.prefix else e.name for e in BACKBONES.values()]
    return names_help(names)


def _load(path: str) -> Callable[..., Any]:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


# --- losses -----------------------------------------------------------------------------------


def _contextual_space(trial, config: dict[str, Any]) -> dict[str, Any]:
    # The three weights sum to 1 as in the 256 px recipe (0.4 / 0.5 / 0.1); under AdamW only
    # their ratios matter, the learning rate sets the step.
    ctx_weight = trial.suggest_float("ctx_weight", 0.05, 0.95)
    reg_weight = trial.suggest_float("reg_weight", 0.0, 0.3)
    return {
        "k": trial.suggest_int("k", 2, max(2, config["m_per_class"])),
        "eps": trial.suggest_float("eps", 0.005, 0.5, log=True),
        "ctx_weight": ctx_weight,
        "contrastive_weight": max(0.0, 1.0 - ctx_weight - reg_weight),
        "reg_weight": reg_weight,
    }


register_loss(
    name="contextual",
    factory="dmlviz.losses.contextual:ContextualLoss",
    defaults={
        "k": 4,
        "eps": 0.05,
        "ctx_weight": 0.4,
        "contrastive_weight": 0.5,
        "reg_weight": 0.1,
        "rho": 0.25,
        "pos_margin": 0.75,
        "neg_margin": 0.6,
    },
    per_class="k",
    reference="Liao, Tsiligkaridis & Kulis, ICML 2023: official code, 256 px recipe "
    "(docs/contextual.md: eps 0.05, weights 0.4/0.5/0.1, rho 0.25, margins 0.75/0.6)",
    search=_contextual_space,
    display_name="Contextual",
    color="#0072B2",  # Okabe-Ito, colour-blind-safe, as every loss colour here
    help="the contextual loss (Liao et al., ICML 2023)",
)


def _rll_space(trial, config: dict[str, Any]) -> dict[str, Any]:
    # Distances between unit vectors lie in [0, 2]: at alpha 2 every negative pair is active.
    return {
        "margin": trial.suggest_float("margin", 0.05, 1.0),
        "alpha": trial.suggest_float("alpha", 0.8, 2.0),
        "tn": trial.suggest_float("tn", 0.0, 20.0),
    }


register_loss(
    name="rll",
    factory="dmlviz.losses.ranked_list:RankedListLoss",
    defaults={"margin": 0.4, "alpha": 1.2, "tn": 10.0, "tp": 0.0, "imbalance": 0.5},
    reference="Wang et al., TPAMI 2021 (RLL-Simpler), released SOP config: alpha 1.2 = 1 + m/2, "
    "m 0.4, T_n 10, T_p 0 (docs/rll.md 1.8)",
    follows={"alpha": "margin"},  # RankedListLoss(margin=m) takes alpha = 1 + m / 2
    search=_rll_space,
    display_name="Ranked List Loss",
    color="#E69F00",
    help="the Ranked List Loss (Wang et al., TPAMI 2021)",
)


def _multisimilarity_space(trial, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "alpha": trial.suggest_float("alpha", 0.5, 10.0, log=True),
        "beta": trial.suggest_float("beta", 10.0, 100.0, log=True),
        "base": trial.suggest_float("base", 0.2, 1.2),
    }


register_loss(
    name="multisimilarity",
    factory="pytorch_metric_learning.losses:MultiSimilarityLoss",
    defaults={"alpha": 2.0, "beta": 50.0, "base": 1.0},
    reference="Wang et al., CVPR 2019: alpha 2, beta 50, lambda 1 (pytorch-metric-learning's "
    "default base is 0.5; no pair miner here)",
    search=_multisimilarity_space,
    display_name="Multi-Similarity",
    color="#009E73",
    help="baseline, pytorch-metric-learning's MultiSimilarityLoss",
)


def _contrastive_space(trial, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "pos_margin": trial.suggest_float("pos_margin", 0.0, 0.6),
        "neg_margin": trial.suggest_float("neg_margin", 0.6, 1.6),
    }


register_loss(
    name="contrastive",
    factory="pytorch_metric_learning.losses:ContrastiveLoss",
    defaults={"pos_margin": 0.0, "neg_margin": 1.0},
    reference="Hadsell, Chopra & LeCun, CVPR 2006 (positives pulled to distance 0, negatives "
    "pushed past margin 1, Euclidean distance on unit vectors; the paper fixes no margin value, "
    "1 is pytorch-metric-learning's default)",
    search=_contrastive_space,
    display_name="Contrastive",
    color="#CC79A7",
    help="baseline, pytorch-metric-learning's ContrastiveLoss",
)


def _triplet_space(trial, config: dict[str, Any]) -> dict[str, Any]:
    return {"margin": trial.suggest_float("margin", 0.01, 0.5, log=True)}


register_loss(
    name="triplet",
    factory="pytorch_metric_learning.losses:TripletMarginLoss",
    defaults={"margin": 0.2},
    reference="Schroff, Kalenichenko & Philbin (FaceNet), CVPR 2015: margin 0.2, all triplets "
    "of the batch (pytorch-metric-learning's default margin is 0.05)",
    search=_triplet_space,
    display_name="Triplet",
    color="#56B4E9",
    help="baseline, pytorch-metric-learning's TripletMarginLoss",
)


# --- backbones --------------------------------------------------------------------------------

register_backbone(
    name="mlp",
    factory="dmlviz.models.backbones:build_mlp",
    help="two hidden layers over the flattened image (digits)",
    pretrained=False,
    image_size="required: the flattened input's side",
)
register_backbone(
    name="convnet",
    factory="dmlviz.models.backbones:build_convnet",
    help="four conv blocks (Omniglot)",
    pretrained=False,
    image_size="the dataset's; at least 16 px",
)
register_backbone(
    name="resnet18",
    factory="dmlviz.models.backbones:build_resnet18",
    help="torchvision's ResNet-18",
    pretrained=True,
    image_size="the dataset's (224 for the image sets)",
)
register_backbone(
    name="resnet50",
    factory="dmlviz.models.backbones:build_resnet50",
    help="torchvision's ResNet-50",
    pretrained=True,
    image_size="the dataset's (224 for the image sets)",
)
register_backbone(
    name="timm:",
    factory="dmlviz.models.timm_backbone:build_timm",
    help="any timm model",
    pretrained=True,
    image_size="the model's pretrained config",
    prefix=True,
)
