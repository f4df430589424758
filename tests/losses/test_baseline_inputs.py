"""The baselines from build() check their batches as the two paper losses do."""

import pytest
import torch

from dmlviz.losses import LOSSES, build

BASELINES = ("contrastive", "multisimilarity", "triplet")


def _batch():
    return torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) // 2


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e, y: (e.masked_fill(torch.eye(8, 4, dtype=bool), float("nan")), y), "NaN"),
        (lambda e, y: (e.flatten(), y), "must be 2-D"),
        (lambda e, y: (e.reshape(8, 2, 2), y), "must be 2-D"),
        (lambda e, y: (e, y.float()), "labels must be integers"),
        (lambda e, y: (e, y[:-1]), "got 8 embeddings but 7 labels"),
    ],
)
def test_every_loss_refuses_a_bad_batch(name, change, message):
    embeddings, labels = change(*_batch())
    with pytest.raises(ValueError, match=message):
        build(name)(embeddings, labels)


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_still_take_keyword_arguments_and_train(name):
    embeddings, labels = _batch()
    leaf = embeddings.requires_grad_(True)
    loss = build(name)(embeddings=leaf, labels=labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(leaf.grad).all()
