"""The backbones, one ``register_backbone`` call each with its factory and facts.

``dmlviz.models.build_model`` creates them; ``BACKBONES`` are the names the config check and the
CLI accept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dmlviz.registry._common import load_factory, names_help


@dataclass(frozen=True)
class BackboneEntry:
    """A backbone's facts. ``prefix``: the entry stands for every ``<name><model>`` (timm)."""

    name: str
    factory: str
    help: str
    pretrained: bool  # ImageNet weights exist (read from the local cache only)
    image_size: str  # the input side it takes, in words, for the CLI help and docs
    prefix: bool = False

    def load(self) -> Callable:
        """The factory (a function), imported now."""
        return load_factory(self.factory)


BACKBONES: dict[str, BackboneEntry] = {}


def register_backbone(**facts) -> BackboneEntry:
    """Add the backbone ``facts["name"]`` (``BackboneEntry``'s fields); returns its entry."""
    entry = BackboneEntry(**facts)
    if entry.name in BACKBONES:
        raise ValueError(f"backbone {entry.name!r} is registered twice")
    BACKBONES[entry.name] = entry
    return entry


def backbone_help() -> str:
    """The CLI's help for ``--model``: every backbone by name."""
    names = [f"{e.name}<name> ({e.help})" if e.prefix else e.name for e in BACKBONES.values()]
    return names_help(names)


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
