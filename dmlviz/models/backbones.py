"""The backbones: a flattening MLP (digits), a 4-block CNN (Omniglot-sized images), torchvision ResNets.

The ResNets stay torchvision's (not timm's): the contextual paper fine-tunes torchvision's
ImageNet ResNet-50, and runs written before timm came in keep their weight names
(``backbone.0.weight`` ...). timm's ResNets are ``timm:resnet50`` and so on.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from dmlviz.models.head import EmbeddingHead, EmbeddingNet, build_pooling
from dmlviz.models.weights import PretrainedWeightsError, load_into, read_state_dict

MLP_HIDDEN = (256, 128)
CONVNET_CHANNELS = 64
CONVNET_BLOCKS = 4
CONVNET_MIN_SIZE = 2**CONVNET_BLOCKS
RESNET_FEATURES = {"resnet18": 512, "resnet50": 2048}


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
    weights: str | Path | None = None,
) -> EmbeddingNet:
    """A torchvision ResNet (``resnet18`` or ``resnet50``) up to its last stage, pooling, head.

    ``pretrained`` loads torchvision's ImageNet weights (IMAGENET1K_V1, the contextual paper's)
    from torch's hub cache, ``weights`` a torchvision ResNet state dict from a file; nothing is
    downloaded. For ``in_channels != 3`` the first convolution is rebuilt, from the mean of the
    RGB filters' sum when weights were loaded (a grey image seen as RGB).
    """
    import torchvision.models as tvm

    net = getattr(tvm, arch)(weights=None)
    source = EmbeddingNet.weights_source
    if weights is not None:
        load_into(net, read_state_dict(weights), f"weights file {weights}", ignore=("fc.",))
        source = f"file {weights}"
    elif pretrained:
        path = _torchvision_cache(arch)
        load_into(net, read_state_dict(path), f"torchvision's cached weights {path}", ("fc.",))
        source = f"torchvision {arch} IMAGENET1K_V1 ({path})"
    if in_channels != 3:
        old = net.conv1
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if pretrained or weights is not None:
            with torch.no_grad():
                summed = old.weight.sum(dim=1, keepdim=True)  # a grey image seen as RGB
                net.conv1.weight.copy_(summed.repeat(1, in_channels, 1, 1) / in_channels)
    backbone = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )
    head = EmbeddingHead(RESNET_FEATURES[arch], embedding_dim, layer_norm)
    model = EmbeddingNet(backbone, build_pooling(pooling), head, freeze_bn=freeze_bn)
    model.weights_source = source
    return model


def build_resnet18(**kwargs) -> EmbeddingNet:
    """``build_resnet("resnet18", **kwargs)``."""
    return build_resnet("resnet18", **kwargs)


def build_resnet50(**kwargs) -> EmbeddingNet:
    """``build_resnet("resnet50", **kwargs)``."""
    return build_resnet("resnet50", **kwargs)


def _torchvision_cache(arch: str) -> Path:
    """The cached file of torchvision's ImageNet weights of ``arch``; raises
    ``PretrainedWeightsError`` saying where it belongs and how to get it when it is absent."""
    import torchvision.models as tvm
    from torch.hub import get_dir

    url = {"resnet18": tvm.ResNet18_Weights, "resnet50": tvm.ResNet50_Weights}[
        arch
    ].IMAGENET1K_V1.url
    path = Path(get_dir()) / "checkpoints" / os.path.basename(url)
    if not path.is_file():
        raise PretrainedWeightsError(
            f"the ImageNet weights of {arch} are not in torch's hub cache: expected {path}. "
            f"dmlviz never downloads; fetch {url} on a machine with network and copy it there "
            "(TORCH_HOME selects another cache), or pass the state dict with --weights FILE, or "
            "continue without pretrained weights (--no-pretrained on the command line, "
            "pretrained=False in Python)"
        )
    return path
