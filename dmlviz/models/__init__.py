"""Embedding models: a backbone, global pooling and an L2-normalised embedding head.

``build_model(name, **kwargs)`` is the one way the trainer, the run directory and the notebooks
create a model (timm's ``create_model`` style); ``MODELS`` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from dmlviz.models.backbones import (
    PretrainedWeightsError,
    build_convnet,
    build_mlp,
    build_resnet,
)
from dmlviz.models.head import POOLINGS, EmbeddingHead, EmbeddingNet, GeM

MODELS: dict[str, Callable[..., EmbeddingNet]] = {
    "mlp": build_mlp,
    "convnet": build_convnet,
    "resnet18": partial(build_resnet, "resnet18"),
    "resnet50": partial(build_resnet, "resnet50"),
}
PRETRAINED = ("resnet18", "resnet50")


def build_model(
    name: str,
    embedding_dim: int = 128,
    in_channels: int = 3,
    image_size: int | None = None,
    pooling: str = "gem",
    freeze_bn: bool = False,
    layer_norm: bool = False,
    pretrained: bool = False,
) -> EmbeddingNet:
    """Return the model ``name`` (one of ``MODELS``), randomly initialised unless ``pretrained``.

    The model maps images (batch, in_channels, H, W) to embeddings (batch, embedding_dim) of unit
    L2 norm. ``pooling`` (gem, avg, max) and ``freeze_bn`` apply to the convolutional models;
    ``image_size`` is required by ``mlp``; ``pretrained`` loads torchvision's ImageNet weights
    (ResNets only) and raises ``PretrainedWeightsError`` when they cannot be fetched.
    """
    if name not in MODELS:
        raise ValueError(f"model={name!r} is unknown; choose one of {', '.join(MODELS)}")
    for key, value in (("embedding_dim", embedding_dim), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key}={value!r} must be a positive integer")
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"image_size={image_size!r} must be a positive integer or None")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is unknown; choose one of {', '.join(POOLINGS)}")
    if pretrained and name not in PRETRAINED:
        raise ValueError(
            f"pretrained=True: ImageNet weights exist for {', '.join(PRETRAINED)}, not {name!r}"
        )
    return MODELS[name](
        embedding_dim=embedding_dim,
        in_channels=in_channels,
        image_size=image_size,
        pooling=pooling,
        freeze_bn=bool(freeze_bn),
        layer_norm=bool(layer_norm),
        pretrained=bool(pretrained),
    )


__all__ = [
    "MODELS",
    "POOLINGS",
    "PRETRAINED",
    "EmbeddingHead",
    "EmbeddingNet",
    "GeM",
    "PretrainedWeightsError",
    "build_model",
]
