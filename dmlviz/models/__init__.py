"""Embedding models: a backbone, global pooling and an L2-normalised embedding head.

``build_model(name, **kwargs)`` is the one way the trainer, the run directory and the notebooks
create a model (timm's ``create_model`` style); the backbones and their facts (help, ImageNet
weights) are ``dmlviz.registry``'s: ``MODELS`` are its fixed names, and ``timm:<name>`` is any timm
model as the backbone.
"""

from __future__ import annotations

from pathlib import Path

from dmlviz.models.head import POOLINGS, EmbeddingHead, EmbeddingNet, GeM
from dmlviz.models.timm_backbone import PREFIX as TIMM_PREFIX
from dmlviz.models.timm_backbone import check_timm_name, data_config, timm_name
from dmlviz.models.weights import PretrainedWeightsError, read_state_dict
from dmlviz.registry import BACKBONES, BackboneEntry, backbone_help
from dmlviz.validate import InvalidValue, check_choice, check_number

MODELS: dict[str, BackboneEntry] = {name: e for name, e in BACKBONES.items() if not e.prefix}
PRETRAINED = tuple(name for name, entry in MODELS.items() if entry.pretrained)  # and timm:<name>


def check_model_name(name) -> None:
    """Raise ``ValueError`` unless ``name`` is in ``MODELS`` or is ``timm:<a timm model>``."""
    if isinstance(name, str) and timm_name(name) is not None:
        check_timm_name(timm_name(name))
    elif name not in MODELS:
        raise InvalidValue(
            "model",
            name,
            f"choose one of {backbone_help()}, e.g. timm:resnet50, timm:vit_small_patch14_dinov2",
        )


def has_pretrained(name: str) -> bool:
    """Whether ``name`` can start from ImageNet weights or a ``weights`` file."""
    return name in PRETRAINED or timm_name(name) is not None


def model_image_size(name: str) -> int | None:
    """The input side the model's pretrained config asks for (timm models), else None."""
    if timm_name(name) is None:
        return None
    return int(data_config(timm_name(name))["input_size"][-1])


def build_model(
    name: str,
    embedding_dim: int = 128,
    in_channels: int = 3,
    image_size: int | None = None,
    pooling: str = "gem",
    freeze_bn: bool = False,
    layer_norm: bool = False,
    pretrained: bool = False,
    weights: str | Path | None = None,
) -> EmbeddingNet:
    """Return the model ``name`` (one of ``MODELS``, or ``timm:<name>`` for any timm model),
    randomly initialised unless ``pretrained`` or ``weights``.

    The model maps images (batch, in_channels, H, W) to embeddings (batch, embedding_dim) of unit
    L2 norm. ``pooling`` (gem, avg, max) and ``freeze_bn`` apply to the convolutional models;
    ``image_size`` is required by ``mlp``. ``pretrained`` loads the ImageNet weights (torchvision's
    for the ResNets, timm's pretrained config for ``timm:``) from the local cache only, and
    ``weights`` the backbone's state dict from a ``.safetensors`` or ``.pth`` file; both raise
    ``PretrainedWeightsError`` (a ``ValueError``) saying which file is expected where.
    """
    check_model_name(name)
    check_number("embedding_dim", embedding_dim, 1, integer=True)
    check_number("in_channels", in_channels, 1, integer=True)
    if image_size is not None:
        check_number("image_size", image_size, 1, integer=True)
    check_choice("pooling", pooling, POOLINGS)
    if (pretrained or weights is not None) and not has_pretrained(name):
        what, value = ("pretrained", True) if pretrained else ("weights", str(weights))
        raise InvalidValue(
            what,
            value,
            f"ImageNet weights exist for {', '.join(PRETRAINED)} and timm:<name>, not {name!r}",
        )
    kwargs = dict(
        embedding_dim=embedding_dim,
        in_channels=in_channels,
        image_size=image_size,
        pooling=pooling,
        freeze_bn=bool(freeze_bn),
        layer_norm=bool(layer_norm),
        pretrained=bool(pretrained),
    )
    if timm_name(name) is not None:
        return BACKBONES[TIMM_PREFIX].load()(timm_name(name), weights=weights, **kwargs)
    if weights is not None:
        kwargs["weights"] = weights
    return MODELS[name].load()(**kwargs)


__all__ = [
    "MODELS",
    "POOLINGS",
    "PRETRAINED",
    "EmbeddingHead",
    "EmbeddingNet",
    "GeM",
    "PretrainedWeightsError",
    "TIMM_PREFIX",
    "build_model",
    "check_model_name",
    "data_config",
    "has_pretrained",
    "model_image_size",
    "read_state_dict",
]
