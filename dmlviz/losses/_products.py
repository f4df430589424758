"""Matrix products for the losses, done as sparse products where one side is mostly zeros.

The Ranked List Loss gradient is zero outside the few non-trivial pairs: ``mm``, ``product`` and
``gram`` compute dense products, sparse on CPU when one side is mostly zeros (the values are the
same up to the order of the float additions). On GPUs the dense product is fast enough, and
counting the zeros would cost a host sync, so there they are always dense.

The contextual loss's neighbourhood masks have about k ones per row, and so does everything it
computes from them: ``sparse``, ``dense``, ``sparse_sum``, ``values_at``, ``row_sums``, ``scale_rows``, ``sparse_mm`` and
``sparse_dense_mm`` are the few operations it needs on sparse n x n matrices (coalesced COO, on any
device), each falling back to the dense product where the matrices are mostly non-zero.
"""

import warnings

import torch

SPARSE_BELOW = 0.02  # fraction of non-zeros under which a product goes sparse (mm: on CPU only)
# a sparse x sparse product is done dense only when both factors hold more than this fraction of
# non-zeros (a collapsed batch): below it the sparse product is cheap, and a dense n x n product
# would start threads that a busy machine makes wait
BOTH_DENSE_ABOVE = 0.25


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


# -- sparse n x n matrices (coalesced COO), for the contextual loss's neighbourhood algebra --------


def sparse(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """The n x n matrix with ``values`` at (``rows``, ``cols``) (repeats summed), coalesced COO."""
    indices = torch.stack([rows, cols])
    matrix = torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=False)
    return matrix.coalesce()


def sparse_sum(*matrices: torch.Tensor) -> torch.Tensor:
    """The sum of sparse n x n matrices, coalesced (torch's sparse ``+`` on CPU starts threads
    even for a few entries, which costs milliseconds on a busy machine)."""
    rows, cols = torch.cat([X._indices() for X in matrices], dim=1)
    values = torch.cat([X._values() for X in matrices])
    return sparse(rows, cols, values, matrices[0].shape[0])


def values_at(X: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``X[rows, cols]`` of a coalesced sparse ``X``: its value at each pair, 0 where it has none."""
    if X._nnz() == 0:
        return torch.zeros(len(rows), dtype=X.dtype, device=X.device)
    n = X.shape[1]
    keys = X.indices()[0] * n + X.indices()[1]  # increasing, as X is coalesced
    wanted = rows * n + cols
    at = torch.searchsorted(keys, wanted).clamp_max(len(keys) - 1)
    return torch.where(keys[at] == wanted, X.values()[at], 0)


def row_sums(X: torch.Tensor) -> torch.Tensor:
    """The row sums of a coalesced sparse n x n ``X`` (a dense vector)."""
    sums = torch.zeros(X.shape[0], dtype=X.dtype, device=X.device)
    return sums.index_add_(0, X.indices()[0], X.values())


def scale_rows(X: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``diag(scale) X`` of a coalesced sparse ``X``, still coalesced."""
    values = X.values() * scale[X.indices()[0]]
    return torch.sparse_coo_tensor(
        X.indices(), values, X.shape, is_coalesced=True, check_invariants=False
    )


def dense(X: torch.Tensor) -> torch.Tensor:
    """A sparse matrix as a dense one (``to_dense`` starts threads on CPU however few the
    entries, which costs milliseconds on a busy machine)."""
    rows, cols = X._indices()
    zeros = X.new_zeros(X.shape, layout=torch.strided)
    return zeros.index_put_((rows, cols), X._values(), accumulate=True)


def _density(X: torch.Tensor) -> float:
    return X._nnz() / (X.shape[0] * X.shape[1])


def sparse_mm(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """X @ Y of two sparse matrices, coalesced sparse; computed dense when both are mostly
    non-zero (a collapsed batch), where a sparse product would cost more than the dense one."""
    if min(_density(X), _density(Y)) > BOTH_DENSE_ABOVE:
        return (dense(X) @ dense(Y)).to_sparse()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse.mm(X, Y).coalesce()


def sparse_dense_mm(X: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """X @ F of a sparse ``X`` and a dense ``F`` (dense), through the dense product when ``X`` is
    mostly non-zero."""
    if _density(X) >= SPARSE_BELOW:
        return dense(X) @ F
    return torch.sparse.mm(X, F)
