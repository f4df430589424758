"""Contextual loss (Liao, Tsiligkaridis & Kulis, ICML 2023), as the official code computes it.

Two points are similar in *context* when their k-nearest-neighbour sets overlap. The loss asks that
this contextual similarity ``W`` be 1 for same-class pairs and 0 otherwise, adds a contrastive hinge on
the cosine similarity ``S`` and a regulariser on the batch-mean cosine. Symbols follow
``docs/contextual.md`` §1: ``f`` unit embeddings, ``S`` cosine similarities, ``D`` squared distances,
``N`` / ``M`` the k- and k/2-neighbour masks with ε slack, ``A`` / ``B`` the positive and negative
neighbourhood overlaps, ``R`` mutual neighbours, ``W`` the contextual similarity, ``Y`` label agreement.

The masks are Heaviside steps. Their backward is the paper's "heuristic gradient": a constant slope of
10 on every entry (straight-through), so all the contextual gradient reaches ``S`` through the masks.
The matrix products ``gram`` and ``product`` (``_products.py``) run sparse on CPU when one side is a
mask with few ones, as N and R are (about k ones per row); the values are those of ``@``.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmlviz.losses._batch import check_batch
from dmlviz.losses._products import gram, product
from dmlviz.registry import loss_entry

GAIN = 10.0  # slope of the straight-through Heaviside backward, as in the official code

# The hyperparameters' defaults (the 256 px recipe), ranges and search space: dmlviz.registry.
REGISTERED = loss_entry("contextual")
PAPER = REGISTERED.defaults
PRESETS = {name: REGISTERED.variant(name) for name in REGISTERED.variants}  # "256px", "224px"


class Heaviside(torch.autograd.Function):
    """H(x - t) = 1[x >= t]; backward passes GAIN x the upstream gradient to x, nothing to t."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x >= t).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return GAIN * grad, None


class ContextualLoss(nn.Module):
    """Contextual loss: ``ctx_weight·L_ctx + contrastive_weight·L_con + reg_weight·L_reg``.

    Args:
        k: neighbourhood size, counting the point itself; use the images per class (4).
        eps: slack on the k-th neighbour's distance, in squared-L2 units (0.05 = 0.025 in cosine).
        ctx_weight, contrastive_weight, reg_weight: weights of the contextual loss, the contrastive
            hinge and the similarity regulariser. Defaults are the 256 px recipe; ``PRESETS`` also
            holds the 224 px one (``ContextualLoss(**PRESETS["224px"])``).
        rho: target of the batch-mean cosine similarity.
        pos_margin, neg_margin: the contrastive hinge pulls positives above ``pos_margin`` and
            pushes negatives below ``neg_margin`` (cosine).

    ``loss(embeddings, labels)`` takes raw (n, d) embeddings (normalised inside) and integer labels
    and returns a scalar. Everything is computed in float32 (float64 input stays float64) with
    autocast off.
    """

    def __init__(
        self,
        k: int = PAPER["k"],
        eps: float = PAPER["eps"],
        ctx_weight: float = PAPER["ctx_weight"],
        contrastive_weight: float = PAPER["contrastive_weight"],
        reg_weight: float = PAPER["reg_weight"],
        rho: float = PAPER["rho"],
        pos_margin: float = PAPER["pos_margin"],
        neg_margin: float = PAPER["neg_margin"],
    ) -> None:
        super().__init__()
        REGISTERED.check(
            k=k, eps=eps, ctx_weight=ctx_weight, contrastive_weight=contrastive_weight,
            reg_weight=reg_weight, rho=rho, pos_margin=pos_margin, neg_margin=neg_margin,
        )  # fmt: skip
        self.k = k
        self.eps = eps
        self.ctx_weight = ctx_weight
        self.contrastive_weight = contrastive_weight
        self.reg_weight = reg_weight
        self.rho = rho
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin

    def extra_repr(self) -> str:
        names = ["k", "eps", "ctx_weight", "contrastive_weight", "reg_weight", "rho"]
        names += ["pos_margin", "neg_margin"]
        return ", ".join(f"{name}={getattr(self, name)}" for name in names)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The weighted loss, a 0-d float32 tensor (float64 for float64 input)."""
        return self._terms(embeddings, labels)["loss"]

    @torch.no_grad()
    def explain(self, embeddings: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
        """Every intermediate of the loss, as numpy arrays (n x n unless said otherwise).

        ``S`` cosine similarity; ``D`` squared distance max(2 - 2S, 0); ``Y`` 1 for same-label
        pairs (diagonal included); ``N`` k-neighbour mask with ε slack (row i is N(i), self
        included); ``M`` k/2-neighbour mask; ``A`` |N(i)∩N(j)|/|N(i)|; ``B`` |¬N(i)∩¬N(j)|/|¬N(i)|;
        ``W_tilde`` ½(A + B)⊙N; ``R`` mutual k/2-neighbours M⊙Mᵀ; ``W_hat`` R W_tilde / |R|;
        ``W`` the symmetrised contextual similarity in [0, 1]; scalars (0-d) ``L_ctx``,
        ``L_con``, ``L_reg`` (the unweighted terms) and ``loss`` (their weighted sum).
        """
        return {
            name: value.cpu().numpy() for name, value in self._terms(embeddings, labels).items()
        }

    def _terms(self, embeddings: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        check_batch(embeddings, labels)
        n = embeddings.shape[0]
        dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
        with torch.autocast(embeddings.device.type, enabled=False):
            # Inputs: unit-length embeddings f and label agreement Y (diagonal 1).
            f = F.normalize(embeddings.to(dtype), dim=1)
            Y = (labels[:, None] == labels[None, :]).to(dtype)

            # Step 0 (similarities): S = f fᵀ, and the squared distance D = max(2 - 2S, 0).
            S = gram(f)
            D = (2 - 2 * S).clamp_min(0)

            # Step 1 (k-NN mask with ε slack): N_ij = H(-D_ij + ε - t_i), t_i the k-th largest
            # -D_i· (self is the first), detached: j is in N(i) iff D_ij <= D_i,(k) + ε.
            k, half = min(self.k, n), min(self.k // 2, n)
            t = torch.topk(-D.detach(), k, dim=1).values
            x = self.eps - D
            N = Heaviside.apply(x, t[:, k - 1 : k])

            # Step 2 (neighbourhood overlap): A = N Nᵀ / |N(i)| and B = (1-N)(1-N)ᵀ / |¬N(i)|, the
            # counts in the denominators detached, |¬N(i)| >= 1 so a collapsed batch stays finite;
            # (1-N)(1-N)ᵀ = n - |N(i)| - |N(j)| + N Nᵀ. Then W̃ = ½(A + B) ⊙ N.
            NN = gram(N)
            size = N.sum(1, keepdim=True)
            A = NN / size.detach()
            B = (n - size - size.T + NN) / (n - size.detach()).clamp_min(1)
            W_tilde = 0.5 * (A + B) * N

            # Step 3 (query expansion): average W̃ over mutual k/2-neighbours R = M ⊙ Mᵀ, where
            # M is the k/2 mask; |R(i)| >= 1 (self) and is not detached.
            M = Heaviside.apply(x, t[:, half - 1 : half])
            R = M * M.T
            W_hat = product(R, W_tilde) / R.sum(1, keepdim=True)

            # Step 4 (symmetrise): W = ½(Ŵ + Ŵᵀ).
            W = 0.5 * (W_hat + W_hat.T)

            # Contextual loss: (1/n²) Σ_{i≠j} Y(1-W)² + (1-Y)W², which is (W - Y)² for 0/1 labels.
            E = (W - Y).square()
            L_ctx = (E.sum() - E.diagonal().sum()) / n**2

            # Contrastive term: hinges on S, each averaged over its active pairs (0 if none).
            P = (self.pos_margin - S).relu() * Y
            Q = (S - self.neg_margin).relu() * (1 - Y)
            L_con = P.sum() / (P > 0).sum().clamp_min(1) + Q.sum() / (Q > 0).sum().clamp_min(1)

            # Similarity regulariser: the batch-mean cosine (diagonal included) pulled toward ρ.
            L_reg = (S.mean() - self.rho).square()

            loss = (
                self.ctx_weight * L_ctx + self.contrastive_weight * L_con + self.reg_weight * L_reg
            )
        intermediates = dict(S=S, D=D, Y=Y, N=N, M=M, A=A, B=B, W_tilde=W_tilde, R=R, W_hat=W_hat)
        return dict(intermediates, W=W, L_ctx=L_ctx, L_con=L_con, L_reg=L_reg, loss=loss)
