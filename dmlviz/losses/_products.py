"""Matrix products for the losses, done as sparse products where one side is mostly zeros.

The contextual loss multiplies neighbourhood masks with about k ones per row, and the Ranked List
Loss gradient is zero outside the few non-trivial pairs. On CPU such a product costs a fraction of
the dense one when done sparse; the values are the same up to the order of the float additions.
On GPUs the dense product is fast enough, and counting the zeros would cost a host sync, so there
every product is dense.
"""

import torch

SPARSE_BELOW = 0.02  # fraction of non-zeros under which a CPU product goes sparse


def _mostly_zeros(X: torch.Tensor) -> bool:
    return X.device.type == "cpu" and torch.count_nonzero(X) < SPARSE_BELOW * X.numel()


def mm(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """X @ Y, computed as a sparse product when X or Y (on CPU) is mostly zeros."""
    if _mostly_zeros(X):
        return torch.sparse.mm(X.to_sparse(), Y.contiguous())
    if _mostly_zeros(Y):
        return torch.sparse.mm(Y.T.to_sparse(), X.T.contiguous()).T
    return X @ Y


class Product(torch.autograd.Function):
    """A @ B, forward and backward through ``mm``; no gradient is computed for a constant input."""

    @staticmethod
    def forward(ctx, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(A, B)
        return mm(A, B)

    @staticmethod
    def backward(ctx, G: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        A, B = ctx.saved_tensors
        grad_A = mm(G, B.T) if ctx.needs_input_grad[0] else None
        grad_B = mm(A.T, G) if ctx.needs_input_grad[1] else None
        return grad_A, grad_B


class Gram(torch.autograd.Function):
    """X Xᵀ, whose backward (G + Gᵀ) X costs one product where autograd would spend two."""

    @staticmethod
    def forward(ctx, X: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(X)
        return mm(X, X.T)

    @staticmethod
    def backward(ctx, G: torch.Tensor) -> torch.Tensor:
        (X,) = ctx.saved_tensors
        return mm(G + G.T, X)


def product(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """A @ B (see ``mm``), differentiable."""
    return Product.apply(A, B)


def gram(X: torch.Tensor) -> torch.Tensor:
    """X Xᵀ (see ``mm``), differentiable, with a one-product backward."""
    return Gram.apply(X)
