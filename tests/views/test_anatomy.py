"""The Loss anatomy page's views: batches, slider defaults, explain() heatmaps."""

import numpy as np
import pytest

from dmlviz.views.anatomy import (
    PARAMS,
    default_params,
    draw_batch,
    explain,
    feasible_params,
    loss_terms,
    panels,
    tick_labels,
)


def test_draw_batch_is_m_per_class_and_seeded():
    labels = np.repeat(np.arange(6), 5)
    labels = np.append(labels, [9])  # a class with one sample can never be drawn
    batch = draw_batch(labels, classes=3, per_class=4, seed=1)
    assert len(batch) == 12
    assert np.all(np.bincount(labels[batch])[np.unique(labels[batch])] == 4)
    assert list(batch) == list(draw_batch(labels, 3, 4, seed=1))
    assert 9 not in labels[batch]
    with pytest.raises(ValueError, match="two classes"):
        draw_batch(np.array([0, 0, 1]), 2, 2)


def test_an_rll_margin_above_alpha_is_lowered_with_a_warning():
    params, warning = feasible_params("rll", {"margin": 1.5, "alpha": 1.2})
    assert params["margin"] == 1.2 and "margin is larger than alpha" in warning
    assert feasible_params("rll", {"margin": 0.4, "alpha": 1.2}) == (
        {"margin": 0.4, "alpha": 1.2},
        None,
    )
    assert feasible_params("contextual", {"k": 4})[1] is None


def test_default_params_take_the_runs_settings():
    assert default_params("contextual")["k"] == 4
    given = default_params("contextual", {"k": 6, "eps": 9.0, "unknown": 1})
    assert given["k"] == 6 and isinstance(given["k"], int)
    assert given["eps"] == PARAMS["contextual"][1].high  # clipped into the slider
    assert default_params("rll", {"margin": 0.4})["alpha"] == pytest.approx(1.2)
    assert default_params("rll", {"margin": 0.4, "alpha": 1.5})["alpha"] == 1.5


@pytest.mark.parametrize("loss", ["contextual", "rll"])
def test_explain_and_panels(loss):
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((12, 8)).astype(np.float32)
    labels = np.repeat([0, 1, 2], 4)
    explained = explain(loss, default_params(loss), embeddings, labels)
    ticks = tick_labels(np.arange(12), [str(label) for label in labels], labels == 1)
    assert ticks[4] == "1* #4"
    shown = panels(loss, explained, ticks)
    assert len(shown) >= 4
    heatmaps = [p.figure.data[0] for p in shown if p.figure.data[0].type == "heatmap"]
    assert all(np.asarray(h.z).shape == (12, 12) for h in heatmaps)
    terms = loss_terms(loss, explained)
    assert terms["total loss"] == pytest.approx(float(explained["loss"]))


def test_panels_reject_other_losses():
    with pytest.raises(ValueError, match="explains"):
        panels("triplet", {}, [])
