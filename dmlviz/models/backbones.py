"""The backbones: a flattening MLP (digits), a 4-block CNN (Omniglot-sized images), torchvision ResNets."""

from __future__ import annotations

import torch
from torch import nn

from dmlviz.models.head import EmbeddingHead, EmbeddingNet, build_pooling

MLP_HIDDEN = (256, 128)
CONVNET_CHANNELS = 64
CONVNET_BLOCKS = 4
CONVNET_MIN_SIZE = 2**CONVNET_BLOCKS
RESNET_FEATURES = {"resnet18": 512, "resnet50": 2048}


class PretrainedWeightsError(ValueError):
    """ImageNet weights were asked for but cannot be fetched; the message says how to go on."""


def build_mlp(
    embedding_dim: int,
    in_channels: int,
    image_size: int | None,
    pooling: str,
    freeze_bn: bool,
    layer_norm: bool,
    pretrained: bool,
) -> EmbeddingNet:
    """Flatten the image, two ReLU layers (``MLP_HIDDEN``), then the embedding head.

    Needs ``image_size`` (the input is ``in_channels * image_size**2`` numbers); ``pooling`` and
    ``freeze_bn`` do not apply.
    """
    if image_size is None:
        raise ValueError("model 'mlp' needs image_size (its input has a fixed length)")
    widths = (in_channels * image_size * image_size, *MLP_HIDDEN)
    layers: list[nn.Module] = [nn.Flatten()]
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.ReLU(inplace=True)]
    head = EmbeddingHead(widths[-1], embedding_dim, layer_norm)
    return EmbeddingNet(nn.Sequential(*layers), nn.Identity(), head, freeze_bn=freeze_bn)


def build_convnet(
    embedding_dim: int,
    in_channels: int,
    image_size: int | None,
    pooling: str,
    freeze_bn: bool,
    layer_norm: bool,
    pretrained: bool,
) -> EmbeddingNet:
    """The "Conv-4" few-shot CNN: 4 x (conv 3x3, BatchNorm, ReLU, max-pool 2), pooling, head.

    Suits 28-64 px images; any side of at least ``CONVNET_MIN_SIZE`` works.
    """
    if image_size is not None and image_size < CONVNET_MIN_SIZE:
        raise ValueError(
            f"image_size={image_size} is too small for 'convnet'; use at least {CONVNET_MIN_SIZE}"
        )
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(CONVNET_BLOCKS):
        layers += [
            nn.Conv2d(channels, CONVNET_CHANNELS, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(CONVNET_CHANNELS),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = CONVNET_CHANNELS
    head = EmbeddingHead(CONVNET_CHANNELS, embedding_dim, layer_norm)
    return EmbeddingNet(nn.Sequential(*layers), build_pooling(pooling), head, freeze_bn=freeze_bn)


def build_resnet(
    arch: str,
    embedding_dim: int,
    in_channels: int,
    image_size: int | None,
    pooling: str,
    freeze_bn: bool,
    layer_norm: bool,
    pretrained: bool,
) -> EmbeddingNet:
    """A torchvision ResNet (``resnet18`` or ``resnet50``) up to its last stage, pooling, head.

    ``pretrained`` loads torchvision's ImageNet weights (downloaded once into torch's hub cache);
    for ``in_channels != 3`` the first convolution is rebuilt, from the summed RGB filters
    when pretrained.
    """
    import torchvision.models as tvm

    weights = None
    if pretrained:
        weights = {"resnet18": tvm.ResNet18_Weights, "resnet50": tvm.ResNet50_Weights}[
            arch
        ].IMAGENET1K_V1
    try:
        net = getattr(tvm, arch)(weights=weights)
    # no network raises URLError (an OSError); a damaged download a RuntimeError
    except (OSError, RuntimeError) as error:
        raise PretrainedWeightsError(_no_weights_message(arch, weights, error)) from None
    if in_channels != 3:
        old = net.conv1
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if pretrained:
            with torch.no_grad():
                summed = old.weight.sum(dim=1, keepdim=True)  # a grey image seen as RGB
                net.conv1.weight.copy_(summed.repeat(1, in_channels, 1, 1) / in_channels)
    backbone = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )
    head = EmbeddingHead(RESNET_FEATURES[arch], embedding_dim, layer_norm)
    return EmbeddingNet(backbone, build_pooling(pooling), head, freeze_bn=freeze_bn)


def _no_weights_message(arch: str, weights, error: Exception) -> str:
    from torch.hub import get_dir

    return (
        f"the ImageNet weights of {arch} could not be loaded ({type(error).__name__}: {error}). "
        f"They are downloaded once from {weights.url} into {get_dir()}/checkpoints/, which needs "
        "network access: copy that file there by hand, or continue without pretrained weights "
        "(--no-pretrained on the command line, pretrained=False in Python)"
    )
