"""The training-only projector of the contextual loss's 224 px recipe (``docs/contextual.md`` §1).

The loss sees ``f = normalize(W e)``, with ``e`` the unit embedding and ``W`` a bias-free
``projector_dim x embedding_dim`` linear map; retrieval uses ``e``. ``W`` belongs to training, so
it is saved with the trainer state, not with the model's weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectedLoss(nn.Module):
    """``loss(normalize(W e), labels)``: any ``(embeddings, labels)`` loss behind a projector."""

    def __init__(self, loss: nn.Module, embedding_dim: int, projector_dim: int):
        super().__init__()
        self.loss = loss
        self.projector = nn.Linear(embedding_dim, projector_dim, bias=False)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(batch, embedding_dim) unit embeddings -> the loss of their unit projections."""
        return self.loss(F.normalize(self.projector(embeddings), dim=1), labels)
