"""The sparse route of the losses' matrix products gives the dense values, forward and backward."""

import pytest
import torch

from dmlviz.losses import ContextualLoss, RankedListLoss, _products
from dmlviz.losses._products import gram, mm, product


@pytest.fixture(params=[0.0, 2.0], ids=["dense", "sparse"])
def route(request, monkeypatch):
    monkeypatch.setattr(_products, "SPARSE_BELOW", request.param)
    return request.param


def test_mm_of_a_mostly_zero_matrix_on_either_side():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(40, 30, dtype=torch.float64, generator=generator)
    mask = torch.rand(40, 30, generator=generator) < 0.01
    sparse = X * mask
    Y = torch.randn(30, 20, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(mm(sparse, Y), sparse @ Y)
    torch.testing.assert_close(mm(Y.T, sparse.T), Y.T @ sparse.T)
    torch.testing.assert_close(mm(X, Y), X @ Y)


def test_product_and_gram_gradients(route):
    generator = torch.Generator().manual_seed(1)
    A = torch.randn(12, 7, dtype=torch.float64, generator=generator, requires_grad=True)
    B = torch.randn(7, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    G = torch.randn(12, 5, dtype=torch.float64, generator=generator)
    (product(A, B) * G).sum().backward()
    expected = torch.autograd.grad((A @ B * G).sum(), (A, B))
    torch.testing.assert_close((A.grad, B.grad), expected)
    A.grad = None
    H = torch.randn(12, 12, dtype=torch.float64, generator=generator)
    (gram(A) * H).sum().backward()
    torch.testing.assert_close(A.grad, torch.autograd.grad((A @ A.T * H).sum(), A)[0])


@pytest.mark.parametrize(
    "loss", [ContextualLoss(), RankedListLoss(), RankedListLoss(gradient="symmetric")]
)
def test_losses_take_the_same_values_either_way(loss, monkeypatch):
    generator = torch.Generator().manual_seed(2)
    embeddings = torch.randn(96, 16, dtype=torch.float64, generator=generator)
    labels = torch.arange(96) // 4
    results = []
    for threshold in (0.0, 2.0):  # never, always sparse
        monkeypatch.setattr(_products, "SPARSE_BELOW", threshold)
        leaf = embeddings.clone().requires_grad_(True)
        value = loss(leaf, labels)
        value.backward()
        results.append((value.detach(), leaf.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-15)


def test_sparse_matrix_helpers_agree_with_dense_ones(monkeypatch):
    generator = torch.Generator().manual_seed(3)
    X = torch.randn(9, 9, dtype=torch.float64, generator=generator)
    X[torch.rand(9, 9, generator=generator) < 0.7] = 0
    Y = torch.randn(9, 9, dtype=torch.float64, generator=generator)
    Y[torch.rand(9, 9, generator=generator) < 0.7] = 0
    X_sp, Y_sp = X.to_sparse(), Y.to_sparse()
    torch.testing.assert_close(_products.dense(X_sp), X)
    torch.testing.assert_close(_products.dense(_products.sparse_sum(X_sp, Y_sp.t())), X + Y.T)
    rows, cols = torch.arange(9).repeat(9), torch.arange(9).repeat_interleave(9)
    torch.testing.assert_close(_products.values_at(X_sp, rows, cols), X[rows, cols])
    torch.testing.assert_close(_products.row_sums(X_sp), X.sum(1))
    scale = torch.arange(9, dtype=torch.float64)
    torch.testing.assert_close(
        _products.dense(_products.scale_rows(X_sp, scale)), X * scale[:, None]
    )
    for threshold in (0.0, 1.0):  # dense, sparse
        monkeypatch.setattr(_products, "BOTH_DENSE_ABOVE", threshold)
        torch.testing.assert_close(_products.dense(_products.sparse_mm(X_sp, Y_sp)), X @ Y)
    torch.testing.assert_close(_products.sparse_dense_mm(X_sp, Y), X @ Y)
