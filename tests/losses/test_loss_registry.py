"""build() and LOSSES: the one way the CLI, notebooks and dashboard create a loss."""

import pytest
import torch

from dmlviz.losses import LOSSES, ContextualLoss, RankedListLoss, build
from dmlviz.losses.contextual import PRESETS
from dmlviz.registry import PER_CLASS


def batch(n=16, d=8):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=generator), torch.arange(n) // 4


def test_registry_names():
    assert set(LOSSES) == {"contextual", "rll", "contrastive", "multisimilarity", "triplet"}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_called_the_same_way(name):
    embeddings, labels = batch()
    leaf = embeddings.clone().requires_grad_(True)
    loss = build(name)(leaf, labels)
    loss.backward()
    assert loss.shape == () and torch.isfinite(loss) and torch.isfinite(leaf.grad).all()


def test_build_passes_hyperparameters():
    contextual = build("contextual", **PRESETS["224px"])
    assert isinstance(contextual, ContextualLoss) and contextual.ctx_weight == 0.8
    rll = build("rll", margin=0.2, alpha=1.4, gradient="symmetric")
    assert isinstance(rll, RankedListLoss) and (rll.alpha, rll.gradient) == (1.4, "symmetric")


def test_unknown_names_and_arguments_raise_value_errors():
    with pytest.raises(
        ValueError, match="loss='arcface' is invalid: unknown loss; choose one of contextual"
    ):
        build("arcface")
    with pytest.raises(ValueError, match="bad hyperparameters for loss 'rll'"):
        build("rll", temperature=3)
    with pytest.raises(ValueError, match="k=0 is invalid: must be an integer >= 2"):
        build("contextual", k=0)


def test_rll_built_with_a_margin_derives_alpha_from_it_as_the_paper_does():
    assert build("rll").alpha == 1.2  # the registered paper default, 1 + 0.4 / 2
    rll = build("rll", margin=0.6)
    assert rll.alpha is None  # RankedListLoss takes 1 + margin / 2 = 1.3
    assert build("rll", margin=0.6, alpha=1.5).alpha == 1.5


@pytest.mark.parametrize("name", ["contextual", "rll"])
def test_the_constructors_check_the_registered_ranges(name):
    from dmlviz.validate import InvalidValue

    entry = LOSSES[name]
    for p in entry.hyperparameters:
        build(name, **{p.name: entry.defaults[p.name]})
        outside = [] if p.low is None else [p.low - 1]
        outside += [] if p.high is None else [p.high + 1]
        outside += [p.low] if p.low_open else []
        outside += [entry.defaults[p.name] + 0.5] if p.integer else []
        for value in outside:
            with pytest.raises(InvalidValue, match=f"^{p.name}={value!r} is invalid: must be"):
                build(name, **{p.name: value})


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_declared_default_search_range_and_slider_is_accepted_by_the_loss(name):
    entry = LOSSES[name]
    for p in entry.hyperparameters:
        p.check(entry.defaults[p.name])
        ends = [*(p.search or ())[:1], *(p.slider or ())[:2]]
        if p.search and p.search[1] != PER_CLASS:
            ends.append(p.search[1])
        for value in ends:
            p.check(value)
        if p.slider:
            low, high, _ = p.slider
            assert low <= entry.defaults[p.name] <= high, p.name
