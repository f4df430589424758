"""Contextual loss (Liao, Tsiligkaridis & Kulis, ICML 2023), as the official code computes it.

Two points are similar in *context* when their k-nearest-neighbour sets overlap. The loss asks that
this contextual similarity ``W`` be 1 for same-class pairs and 0 otherwise, adds a contrastive hinge on
the cosine similarity ``S`` and a regulariser on the batch-mean cosine. Symbols follow
``docs/contextual.md`` §1: ``f`` unit embeddings, ``S`` cosine similarities, ``D`` squared distances,
``N`` / ``M`` the k- and k/2-neighbour masks with ε slack, ``A`` / ``B`` the positive and negative
neighbourhood overlaps, ``R`` mutual neighbours, ``W`` the contextual similarity, ``Y`` label agreement.

The masks are Heaviside steps. Their backward is the paper's "heuristic gradient": a constant slope of
10 on every entry (straight-through), so all the contextual gradient reaches ``S`` through the masks.

The masks have about k ones per row, so everything after step 1 is a sparse matrix (``_products.py``)
and ``forward_steps`` touches n x n dense memory only for S, D, the top-k and the thresholds. The
backward is written out by hand (``backward_steps``, the steps in reverse): autograd would turn every
sparse step back into dense n x n passes, while the gradient is a sparse matrix plus one vector per
row (the straight-through slope reaches every pair through |N(i)|), whose product with f costs
O(nd) instead of a second n x n x d matrix product.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmlviz.losses._batch import check_batch
from dmlviz.losses._products import (
    dense,
    row_sums,
    scale_rows,
    sparse,
    sparse_dense_mm,
    sparse_mm,
    sparse_sum,
    values_at,
)
from dmlviz.registry import loss_entry

GAIN = 10.0  # slope of the straight-through Heaviside backward, as in the official code

# The hyperparameters' defaults (the 256 px recipe), ranges and search space: dmlviz.registry.
REGISTERED = loss_entry("contextual")
PAPER = REGISTERED.defaults
PRESETS = {name: REGISTERED.variant(name) for name in REGISTERED.variants}  # "256px", "224px"


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
        check_batch(embeddings, labels)
        with torch.autocast(embeddings.device.type, enabled=False):
            f = F.normalize(embeddings.to(_dtype(embeddings)), dim=1)
            terms = ContextualTerms.apply(f, labels, self._settings())
            return self._weighted(*terms)

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
        check_batch(embeddings, labels)
        with torch.autocast(embeddings.device.type, enabled=False):
            f = F.normalize(embeddings.to(_dtype(embeddings)), dim=1)
            steps = forward_steps(f, labels, **self._settings())
        n = f.shape[0]
        size = row_sums(steps["N"])
        A, B = overlaps(dense(steps["NN"]), size[:, None], size[None, :], n)
        matrices = dict(S=steps["S"], D=steps["D"], Y=labels[:, None] == labels[None, :], A=A, B=B)
        for name in ("N", "M", "W_tilde", "R", "W_hat", "W"):
            matrices[name] = dense(steps[name])
        terms = {name: steps[name] for name in ("L_ctx", "L_con", "L_reg")}
        loss = self._weighted(*terms.values())
        results = dict(matrices, **terms, loss=loss)
        return {name: value.to(f.dtype).cpu().numpy() for name, value in results.items()}

    def _settings(self) -> dict:
        names = ("k", "eps", "rho", "pos_margin", "neg_margin")
        return {name: getattr(self, name) for name in names}

    def _weighted(self, L_ctx, L_con, L_reg) -> torch.Tensor:
        return self.ctx_weight * L_ctx + self.contrastive_weight * L_con + self.reg_weight * L_reg


def _dtype(embeddings: torch.Tensor) -> torch.dtype:
    """float32 for every input but float64 (the loss never runs in half precision)."""
    return torch.float64 if embeddings.dtype == torch.float64 else torch.float32


def overlaps(NN, size_i, size_j, n: int):
    """A = |N(i)∩N(j)| / |N(i)| and B = |¬N(i)∩¬N(j)| / |¬N(i)| from NN = |N(i)∩N(j)| and the set
    sizes (elementwise, for any broadcastable shapes): |¬N(i)∩¬N(j)| = n - |N(i)| - |N(j)| + NN.
    The denominators are constants (detached in the official code); |¬N(i)| is taken as at least
    1, so a collapsed batch (every N(i) the whole batch) stays finite."""
    return NN / size_i, (n - size_i - size_j + NN) / (n - size_i).clamp_min(1)


def forward_steps(f, labels, k, eps, rho, pos_margin, neg_margin) -> dict:
    """The loss's steps on unit embeddings ``f`` (n, d): dense ``S``, ``D``; sparse (n x n COO)
    ``N``, ``M``, ``NN`` = N Nᵀ, ``W_tilde``, ``R``, ``W_hat``, ``W``, ``Y`` (off the diagonal);
    0-d ``L_ctx``, ``L_con``, ``L_reg``; and what ``backward_steps`` needs besides."""
    n = f.shape[0]
    ones = f.new_ones(())
    # Step 0 (similarities): S = f fᵀ, and the squared distance D = max(2 - 2S, 0).
    S = f @ f.T
    D = (2 - 2 * S).clamp_min(0)

    # Step 1 (k-NN masks with ε slack): N_ij = H(ε - D_ij - t_i), t_i = -D_i,(k) the k-th smallest
    # distance (self is the first), a constant: j is in N(i) iff D_ij <= D_i,(k) + ε. M likewise
    # with the (k/2)-th, so M ⊆ N.
    k, half = min(k, n), min(k // 2, n)
    nearest = D.topk(k, dim=1, largest=False).values
    x = eps - D
    i, j = (x >= -nearest[:, k - 1 : k]).nonzero(as_tuple=True)
    in_M = x[i, j] >= -nearest[i, half - 1]
    N = sparse(i, j, ones.expand(len(i)), n)
    M = sparse(i[in_M], j[in_M], ones.expand(int(in_M.sum())), n)

    # Step 2 (neighbourhood overlap), on the pairs of N: W̃ = ½(A + B) ⊙ N.
    size = row_sums(N)
    NN = sparse_mm(N, N.t())
    A, B = overlaps(values_at(NN, i, j), size[i], size[j], n)
    W_tilde = sparse(i, j, 0.5 * (A + B), n)

    # Step 3 (query expansion): Ŵ = R W̃ / |R(i)|, R = M ⊙ Mᵀ the mutual k/2-neighbours (self
    # included, so |R(i)| >= 1; not detached).
    R = (M * M.t()).coalesce()
    W_hat = scale_rows(sparse_mm(R, W_tilde), 1 / row_sums(R))

    # Step 4 (symmetrise): W = ½(Ŵ + Ŵᵀ).
    W = sparse_sum(W_hat, W_hat.t()) * 0.5

    # Contextual loss: (1/n²) Σ_{i≠j} (W - Y)², summed as Σ_{i≠j} Y plus, on W's pairs,
    # W² - 2WY; Y is 1 for same-label pairs (diagonal included).
    # Y = L Lᵀ with L the one-hot labels (row i has its 1 in the column of its class).
    classes = labels.unique(return_inverse=True)[1]
    L = sparse(torch.arange(n, device=f.device), classes, ones.expand(n), n)
    yi, yj = sparse_mm(L, L.t()).indices()
    Y = sparse(yi[yi != yj], yj[yi != yj], ones.expand(len(yi) - n), n)
    wi, wj = W.indices()
    w = torch.where(wi != wj, W.values(), 0)
    L_ctx = (Y._nnz() + (w * (w - 2 * (labels[wi] == labels[wj]))).sum()) / n**2

    # Contrastive term: hinges on S, each averaged over its active pairs (0 if none). Negatives
    # can be active only where S > m⁻, so only those pairs are read.
    P = (pos_margin - S[yi, yj]).relu()
    qi, qj = S.gt(neg_margin).nonzero(as_tuple=True)
    qi, qj = qi[labels[qi] != labels[qj]], qj[labels[qi] != labels[qj]]
    Q = (S[qi, qj] - neg_margin).relu()
    L_con = P.sum() / (P > 0).sum().clamp_min(1) + Q.sum() / (Q > 0).sum().clamp_min(1)

    # Similarity regulariser: the batch-mean cosine (diagonal included) pulled toward ρ.
    L_reg = (S.mean() - rho).square()

    hinges = dict(yi=yi, yj=yj, P=P, qi=qi, qj=qj, Q=Q, rho=rho)
    masks = dict(N=N, M=M, NN=NN, size=size, W_tilde=W_tilde, R=R, W_hat=W_hat, W=W, Y=Y)
    return dict(f=f, S=S, D=D, **masks, **hinges, L_ctx=L_ctx, L_con=L_con, L_reg=L_reg)


def backward_steps(steps: dict, g_ctx, g_con, g_reg) -> torch.Tensor:
    """The gradient with respect to ``f`` of g_ctx·L_ctx + g_con·L_con + g_reg·L_reg, from the
    ``forward_steps`` result; equal (up to float rounding) to autograd through the dense loss with
    the straight-through Heaviside."""
    f, S, n = steps["f"], steps["S"], steps["f"].shape[0]
    G_S, per_row = contextual_gradient(steps, g_ctx)

    # Contrastive term: -1/#P on active positive pairs, +1/#Q on active negative pairs.
    P, Q = steps["P"], steps["Q"]
    G_P = -g_con * (P > 0) / (P > 0).sum().clamp_min(1)
    G_Q = g_con * (Q > 0) / (Q > 0).sum().clamp_min(1)
    G_P = sparse(steps["yi"], steps["yj"], G_P.to(f.dtype), n)
    G_Q = sparse(steps["qi"], steps["qj"], G_Q.to(f.dtype), n)

    # Similarity regulariser: the same 2(mean(S) - ρ)/n² on every pair.
    per_row = per_row + g_reg * 2 * (S.mean() - steps["rho"]) / n**2

    # S = f fᵀ: dL/df = (G + Gᵀ) f, and G is a sparse Sp plus u 1ᵀ (u = per_row: every pair of
    # row i gets u_i), so (G + Gᵀ) f = (Sp + Spᵀ) f + u (1ᵀf) + 1 (uᵀf), no n x n x d product.
    Sp = sparse_sum(G_S, G_S.t(), G_P, G_P.t(), G_Q, G_Q.t())
    u_and_1 = torch.stack([per_row, torch.ones_like(per_row)], dim=1)  # (n, 2)
    sums = torch.stack([f.sum(0), per_row @ f])  # 1ᵀf and uᵀf, (2, d)
    return torch.addmm(sparse_dense_mm(Sp, f), u_and_1, sums)


def contextual_gradient(steps: dict, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of g·L_ctx on S, as (sparse matrix, per-row vector), the steps in reverse."""
    N, M, NN, size, n = steps["N"], steps["M"], steps["NN"], steps["size"], steps["f"].shape[0]
    W, W_hat, W_tilde, R, Y = steps["W"], steps["W_hat"], steps["W_tilde"], steps["R"], steps["Y"]

    # Contextual loss: G_W = 2g(W - Y)/n² off the diagonal; symmetric, so it is also G_Ŵ.
    wi, wj = W.indices()
    off = wi != wj
    G_W = sparse_sum(sparse(wi[off], wj[off], W.values()[off], n), -Y) * (2 * g / n**2)

    # Step 3, Ŵ = U / r with U = R W̃ and r = |R(i)|: G_U = G_W / r, G_r = -Σ_j G_W Ŵ / r;
    # then G_W̃ = Rᵀ G_U = R G_U and G_R = G_U W̃ᵀ + G_r (every j of row i).
    r = row_sums(R)
    G_U = scale_rows(G_W, 1 / r)
    gi, gj = G_W.indices()
    G_r = -row_sums(sparse(gi, gj, G_W.values() * values_at(W_hat, gi, gj), n)) / r
    G_W_tilde = sparse_mm(R, G_U)
    G_R = sparse_mm(G_U, W_tilde.t())

    # R = M ⊙ Mᵀ: G_M_ab = (G_R_ab + G_R_ba) M_ba, on the transposed pairs of M.
    b, a = M.indices()
    G_M_ab = values_at(G_R, a, b) + values_at(G_R, b, a) + G_r[a] + G_r[b]
    G_M = sparse(a, b, G_M_ab, n)

    # Step 2, W̃ = ½(A + B) ⊙ N: G_N = G_W̃ ⊙ ½(A + B) at every pair G_W̃ reaches, and
    # G_A = G_B = ½ G_W̃ on N's pairs; A = NN / |N(i)| and B = (n - |N(i)| - |N(j)| + NN) / |¬N(i)|
    # send G_A / |N(i)| + G_B / |¬N(i)| to NN = N Nᵀ and -G_B / |¬N(i)| to |N(i)| and |N(j)|.
    ti, tj = G_W_tilde.indices()
    A, B = overlaps(values_at(NN, ti, tj), size[ti], size[tj], n)
    G_N = sparse(ti, tj, G_W_tilde.values() * 0.5 * (A + B), n)
    i, j = N.indices()
    G_half = 0.5 * values_at(G_W_tilde, i, j)
    G_B_scaled = G_half / (n - size[i]).clamp_min(1)
    G_NN = sparse(i, j, G_half / size[i] + G_B_scaled, n)
    G_size = -(torch.zeros_like(size).index_add_(0, i, G_B_scaled).index_add_(0, j, G_B_scaled))
    G_N = sparse_sum(G_N, sparse_mm(sparse_sum(G_NN, G_NN.t()), N))

    # Step 1 and 0: the Heaviside's slope GAIN into x = ε - D, then D = max(2 - 2S, 0) gives
    # G_S = 2 G_x where 2 - 2S >= 0 and 0 elsewhere; |N(i)| = Σ_j N_ij sends G_size_i to every
    # pair of row i. Pairs with 2 - 2S < 0 have D = 0, so they are in N: zero them there.
    G_x = sparse_sum(G_N, G_M)
    S_at = steps["S"][i, j]
    clamped = (2 - 2 * S_at) < 0
    ci, cj = i[clamped], j[clamped]
    G_x = sparse_sum(G_x, sparse(ci, cj, -values_at(G_x, ci, cj) - G_size[ci], n))
    return (2 * GAIN) * G_x, (2 * GAIN) * G_size


class ContextualTerms(torch.autograd.Function):
    """(L_ctx, L_con, L_reg) of unit embeddings ``f``: ``forward_steps`` forward and
    ``backward_steps`` backward (only ``f`` gets a gradient)."""

    @staticmethod
    def forward(ctx, f: torch.Tensor, labels: torch.Tensor, settings: dict):
        steps = forward_steps(f, labels, **settings)
        ctx.steps = steps
        return steps["L_ctx"], steps["L_con"], steps["L_reg"]

    @staticmethod
    def backward(ctx, g_ctx, g_con, g_reg):
        grad_f = backward_steps(ctx.steps, g_ctx, g_con, g_reg)
        del ctx.steps
        return grad_f, None, None
