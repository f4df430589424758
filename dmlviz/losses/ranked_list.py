"""Ranked List Loss (Wang et al., CVPR 2019 and TPAMI 2021, arXiv 1903.03238).

Every sample is a query in turn; the rest of the batch is its ranked list. Non-trivial negatives
(closer than the boundary ``alpha``) are pushed out, weighted towards the hardest; non-trivial
positives (farther than ``alpha - margin``) are pulled in. A class is squeezed into a ball of
diameter ``alpha - margin``, not onto a point. Symbols follow ``docs/rll.md`` §1: ``e`` unit
embeddings, ``cos`` their cosine similarities, ``d`` distances, ``P_star`` / ``N_star`` the non-trivial sets, ``w`` the weights,
``L_P`` / ``L_N`` the per-query losses, ``c`` the query weights.

The defaults follow the official Caffe layer: the gradient reaches only the query of each pair
(the gallery side is a constant) and the weights are constants. ``gradient="symmetric",
detach_weights=False`` is the plain-autograd variant of pytorch-metric-learning: its
``RankedListLoss`` up to the n·1e-5 that it adds to every weight sum (at most ~1e-3 relative).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmlviz.losses._batch import check_batch
from dmlviz.losses._products import gram, product
from dmlviz.registry import loss_entry, rll_alpha
from dmlviz.validate import check_choice, check_flag

FLOOR = 1e-12  # d = √max(2 - 2 e·e, FLOOR), so √ keeps a finite gradient at d = 0

# The hyperparameters' defaults (the released SOP config), ranges and search space: dmlviz.registry.
REGISTERED = loss_entry("rll")
PAPER = REGISTERED.defaults


class RankedListLoss(nn.Module):
    """Ranked List Loss: mean over queries of ``(1 - imbalance)·L_P + imbalance·L_N``.

    Args:
        margin: m, the gap between the positive boundary ``alpha - margin`` and ``alpha`` (a
            boundary below 0 makes every positive pair non-trivial).
        alpha: negative boundary (Euclidean distance on unit vectors, in (0, 2]); ``None`` means
            ``1 + margin/2`` (RLL-Simpler, the TPAMI code).
        tn, tp: temperatures of the negative and positive weights exp(T·violation); 0 weighs every
            non-trivial pair alike, large ``tn`` approaches hardest-negative mining.
        imbalance: λ, the weight of L_N (0.5 = the official ½(L_P + L_N)).
        gradient: ``"query"`` (official: d̃_ij = ‖e_i - sg(e_j)‖, each pair moves its query only)
            or ``"symmetric"`` (plain autograd: both ends move, about twice the gradient).
        detach_weights: treat the weights as constants (official) or differentiate through them.
        query_weighting: ``"uniform"`` mean over queries, or ``"caffe"``: query i weighted by
            c_i = (S⁺_i + S⁻_i) / Σ_k (S⁺_k + S⁻_k), S^± the sums of its raw weights (a constant).

    ``loss(embeddings, labels)`` takes raw (n, d) embeddings (normalised inside) and integer labels
    and returns a scalar. Everything is computed in float32 (float64 input stays float64) with
    autocast off. An empty positive or negative set contributes 0.
    """

    def __init__(
        self,
        margin: float = PAPER["margin"],
        alpha: float | None = None,
        tn: float = PAPER["tn"],
        tp: float = PAPER["tp"],
        imbalance: float = PAPER["imbalance"],
        gradient: str = "query",
        detach_weights: bool = True,
        query_weighting: str = "uniform",
    ) -> None:
        super().__init__()
        REGISTERED.check(margin=margin, alpha=alpha, tn=tn, tp=tp, imbalance=imbalance)
        check_choice("gradient", gradient, ("query", "symmetric"))
        check_flag("detach_weights", detach_weights)
        check_choice("query_weighting", query_weighting, ("uniform", "caffe"))
        self.margin = margin
        self.alpha = alpha
        self.tn = tn
        self.tp = tp
        self.imbalance = imbalance
        self.gradient = gradient
        self.detach_weights = detach_weights
        self.query_weighting = query_weighting

    def extra_repr(self) -> str:
        names = ["margin", "alpha", "tn", "tp", "imbalance", "gradient", "detach_weights"]
        names += ["query_weighting"]
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in names)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss, a 0-d float32 tensor (float64 for float64 input)."""
        return self._terms(embeddings, labels)["loss"]

    @torch.no_grad()
    def explain(self, embeddings: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
        """Every intermediate of the loss, as numpy arrays.

        (n, n): ``distances`` d_ij = ‖e_i - e_j‖; ``positive_mask`` P*_i (same label, j ≠ i,
        d > alpha - margin) and ``negative_mask`` N*_i (other label, d < alpha) as bools;
        ``positive_weights`` / ``negative_weights`` the normalised weights w/Σw of each query
        (rows sum to 1, or 0 for an empty set). (n,): ``L_P``, ``L_N`` the per-query losses and
        ``query_weights`` c_i (1/n when uniform). 0-d: ``loss``.
        """
        return {
            name: value.cpu().numpy() for name, value in self._terms(embeddings, labels).items()
        }

    def _terms(self, embeddings: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        check_batch(embeddings, labels)
        dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
        margin, Tn, Tp, imbalance = self.margin, self.tn, self.tp, self.imbalance
        alpha = rll_alpha(margin) if self.alpha is None else self.alpha  # RLL-Simpler
        with torch.autocast(embeddings.device.type, enabled=False):
            # 1.1 Inputs and distance: unit embeddings e, d_ij = ‖e_i - e_j‖ = √(2 - 2 e_i·e_j).
            # With gradient="query" the gallery end is a constant: d̃_ij = ‖e_i - sg(e_j)‖.
            e = F.normalize(embeddings.to(dtype), dim=1)
            cos = product(e, e.detach().T) if self.gradient == "query" else gram(e)
            d = (2 - 2 * cos).clamp_min(FLOOR).sqrt()

            # 1.2 Mining: non-trivial positives lie beyond alpha - m, non-trivial negatives inside alpha.
            Y = labels[:, None] == labels[None, :]
            N_star = ~Y & (d < alpha)
            P_star = Y & (d > alpha - margin)
            P_star.fill_diagonal_(False)

            # 1.3 Weighting: w⁺ ∝ exp(Tp·(d - (alpha - m))) over P*_i, w⁻ ∝ exp(Tn·(alpha - d)) over
            # N*_i, normalised per query by a (max-subtracted, so stable) softmax; an empty set has
            # only -inf logits, hence NaN weights, which become 0. Constants when detach_weights.
            l_P = d - (alpha - margin)
            l_N = alpha - d
            source_P, source_N = (l_P.detach(), l_N.detach()) if self.detach_weights else (l_P, l_N)
            logits_P = torch.where(P_star, Tp * source_P, -torch.inf)
            logits_N = torch.where(N_star, Tn * source_N, -torch.inf)
            w_P = torch.softmax(logits_P, dim=1).nan_to_num(0.0)
            w_N = torch.softmax(logits_N, dim=1).nan_to_num(0.0)

            # 1.4 Per-query objective: weighted mean hinge of each set (0 for an empty set).
            L_P = (w_P * l_P).sum(1)
            L_N = (w_N * l_N).sum(1)
            L = (1 - imbalance) * L_P + imbalance * L_N

            # 1.5 Batch loss: uniform mean, or the Caffe query weights c_i = (S⁺_i + S⁻_i) / Σ_k (S⁺_k
            # + S⁻_k) with S^± the sums of the raw weights exp(T·l), taken as constants.
            if self.query_weighting == "uniform":
                c = torch.full_like(L, 1 / len(L))
            else:
                log_S = torch.logaddexp(logits_P.logsumexp(1), logits_N.logsumexp(1)).detach()
                c = torch.softmax(log_S, dim=0).nan_to_num(0.0)
            loss = (c * L).sum()
        masks = dict(distances=d, positive_mask=P_star, negative_mask=N_star)
        weights = dict(positive_weights=w_P, negative_weights=w_N, query_weights=c)
        return dict(masks, **weights, L_P=L_P, L_N=L_N, loss=loss)
