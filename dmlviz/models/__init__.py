"""Embedding models: a backbone, global pooling and an L2-normalised embedding head.

``build_model(name, **kwargs)`` is the one way the trainer, the run directory and the notebooks
create a model (timm's ``create_model`` style); ``MODELS`` lists the names, and ``timm:<name>``
is any timm model as the backbone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from dmlviz.models.backbones import build_convnet, build_mlp, build_resnet
from dmlviz.models.head import POOLINGS, EmbeddingHead, EmbeddingNet, GeM
from dmlviz.models.timm_backbone import PREFIX as TIMM_PREFIX
from dmlviz.models.timm_backbone import build_timm, check_timm_name, data_config, timm_name
from dmlviz.models.weights import PretrainedWeightsError, read_state_dict

MODELS: dict[str, Callable[..., EmbeddingNet]] = {
    "mlp": build_mlp,
    "convnet": build_convnet,
    "resnet18": partial(build_resnet, "resnet18"),
    "resnet50": partial(build_resnet, "resnet50"),
}
PRETRAINED = ("resnet18", "resnet50")  # and every timm:<name>


def check_model_name(name) -> None:
    """Raise ``ValueError`` unless ``name`` is in ``MODELS`` or is ``timm:<a timm model>``."""
    if isinstance(name, str) and timm_name(name) is not None:
        check_timm_name(timm_name(name))
    elif name not in MODELS:
        raise ValueError(
            f"model={name!r} is unknown; choose one of {', '.join(MODELS)} or timm:<name> "
            "(any timm model, e.g. timm:resnet50, timm:vit_small_patch14_dinov2)"
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
    for key, value in (("embedding_dim", embedding_dim), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key}={value!r} must be a positive integer")
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"image_size={image_size!r} must be a positive integer or None")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is unknown; choose one of {', '.join(POOLINGS)}")
    if (pretrained or weights is not None) and not has_pretrained(name):
        what = "pretrained=True" if pretrained else f"weights={str(weights)!r}"
        raise ValueError(
            f"{what}: ImageNet weights exist for {', '.join(PRETRAINED)} and timm:<name>, "
            f"not {name!r}"
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
        return build_timm(timm_name(name), weights=weights, **kwargs)
    if weights is not None:
        kwargs["weights"] = weights
    return MODELS[name](**kwargs)


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
