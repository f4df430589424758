"""What every backbone shares: global pooling (GeM, average, max) and the L2-normalised embedding head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dmlviz.registry.settings import POOLINGS  # the pooling setting's choices


class GeM(nn.Module):
    """Generalised-mean pooling: ``(mean(x ** p)) ** (1 / p)`` over the spatial axes, ``p`` learnt.

    ``p = 1`` is average pooling and ``p -> inf`` approaches max pooling (Radenovic et al. 2018).
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, C, H, W) feature map -> (batch, C)."""
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)


def build_pooling(name: str) -> nn.Module:
    """The global pooling layer ``name`` (one of ``POOLINGS``): (batch, C, H, W) -> (batch, C)."""
    if name == "gem":
        return GeM()
    if name == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if name == "max":
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
    raise ValueError(f"pooling={name!r} is unknown; choose one of {', '.join(POOLINGS)}")


class EmbeddingHead(nn.Module):
    """Linear map to ``embedding_dim``, optional LayerNorm, then L2 normalisation."""

    def __init__(self, in_features: int, embedding_dim: int, layer_norm: bool = False):
        super().__init__()
        self.linear = nn.Linear(in_features, embedding_dim)
        self.norm = nn.LayerNorm(embedding_dim) if layer_norm else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, in_features) -> (batch, embedding_dim) rows of unit L2 norm."""
        return F.normalize(self.norm(self.linear(features)), dim=1)


class EmbeddingNet(nn.Module):
    """``backbone`` (images to features), ``pool`` (features to vectors) and ``head`` (to embeddings).

    Training gives ``backbone`` + ``pool`` one learning rate and ``head`` another. With
    ``freeze_bn`` every BatchNorm layer stays in eval mode with fixed statistics and weights.
    ``weights_source`` says where the starting weights came from (for the run's config).
    """

    weights_source = "random initialisation"

    def __init__(
        self, backbone: nn.Module, pool: nn.Module, head: EmbeddingHead, freeze_bn: bool = False
    ):
        super().__init__()
        self.backbone = backbone
        self.pool = pool
        self.head = head
        self.freeze_bn = freeze_bn
        if freeze_bn:
            for module in self._batch_norms():
                for parameter in module.parameters():
                    parameter.requires_grad_(False)

    @property
    def embedding_dim(self) -> int:
        """Length of each output embedding."""
        return self.head.linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (batch, C, H, W) -> L2-normalised float32 embeddings (batch, embedding_dim).

        Under autocast only the backbone runs in reduced precision; pooling and head run in fp32.
        """
        features = self.backbone(x)
        with torch.autocast(x.device.type, enabled=False):
            return self.head(self.pool(features.float()))

    def train(self, mode: bool = True) -> EmbeddingNet:
        """Set training mode; frozen BatchNorm layers stay in eval mode."""
        super().train(mode)
        if self.freeze_bn:
            for module in self._batch_norms():
                module.eval()
        return self

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the backbone and pooling (the ``backbone_lr`` group)."""
        params = list(self.backbone.parameters()) + list(self.pool.parameters())
        return [p for p in params if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the embedding head (the ``lr`` group)."""
        return [p for p in self.head.parameters() if p.requires_grad]

    def _batch_norms(self) -> list[nn.Module]:
        return [
            m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
