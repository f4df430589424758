"""The contextual loss transcribed plainly from docs/contextual.md §1, the speed benchmark's baseline.

It follows the structure the spec describes step by step, written from the spec, not copied: two
top-k calls, the negative overlap (1-N)(1-N)ᵀ as its own matrix product, plain autograd (two
products for each backward of X Xᵀ), and the similarity function and the contrastive term each
computing S = f fᵀ from f, like the separate functions the spec names. It has no guard on |¬N|,
so a collapsed batch gives NaN exactly as the original does. ``dmlviz.losses.contextual`` computes
the same values with fewer matrix products; ``benchmarks/loss_speed.py`` times the two.
"""

import torch
import torch.nn.functional as F


class GreaterThan(torch.autograd.Function):
    """(x >= t) forward; the backward passes 10 x the upstream gradient to x and none to t."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x >= t).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return 10.0 * grad, None


def contextual_similarity(f: torch.Tensor, k: int, eps: float) -> torch.Tensor:
    """The symmetrised contextual similarity W of unit embeddings ``f`` (n, d)."""
    S = f @ f.T
    D = torch.clamp(2 - 2 * S, min=0)
    t_k = torch.topk(-D, k, dim=1).values[:, k - 1].unsqueeze(1).detach()
    N = GreaterThan.apply(-D + eps, t_k)
    A = (N @ N.T) / N.sum(1, keepdim=True).detach()
    not_N = 1 - N
    B = (not_N @ not_N.T) / not_N.sum(1, keepdim=True).detach()
    W_tilde = 0.5 * (A + B) * N
    t_half = torch.topk(-D, k // 2, dim=1).values[:, k // 2 - 1].unsqueeze(1).detach()
    M = GreaterThan.apply(-D + eps, t_half)
    R = M * M.T
    W_hat = (R @ W_tilde) / R.sum(1, keepdim=True)
    return 0.5 * (W_hat + W_hat.T)


def contextual_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    k: int = 4,
    eps: float = 0.05,
    ctx_weight: float = 0.4,
    contrastive_weight: float = 0.5,
    reg_weight: float = 0.1,
    rho: float = 0.25,
    pos_margin: float = 0.75,
    neg_margin: float = 0.6,
) -> torch.Tensor:
    """``ctx_weight·L_ctx + contrastive_weight·L_con + reg_weight·L_reg`` of raw embeddings (a scalar)."""
    f = F.normalize(embeddings, dim=1)
    n = f.shape[0]
    Y = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(f.dtype)
    W = contextual_similarity(f, k, eps)
    off_diagonal = 1 - torch.eye(n, dtype=f.dtype, device=f.device)
    L_ctx = ((Y * (1 - W) ** 2 + (1 - Y) * W**2) * off_diagonal).sum() / n**2

    S = f @ f.T
    P = torch.relu(pos_margin - S) * Y
    Q = torch.relu(S - neg_margin) * (1 - Y)
    zero = torch.zeros((), dtype=f.dtype, device=f.device)
    L_pos = P.sum() / (P > 0).sum() if (P > 0).any() else zero
    L_neg = Q.sum() / (Q > 0).sum() if (Q > 0).any() else zero
    L_con = L_pos + L_neg

    L_reg = (S.mean() - rho) ** 2
    return ctx_weight * L_ctx + contrastive_weight * L_con + reg_weight * L_reg
