"""ContextualLoss against the original code's numbers (../shared/fixtures/contextual), the plain
transcription of the spec, and the batches that break naive implementations."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from shared_files import REPO, SHARED, shared_path

from dmlviz.losses import ContextualLoss
from dmlviz.losses._products import gram
from dmlviz.losses.contextual import GAIN, PRESETS

FIXTURES = SHARED / "fixtures" / "contextual"
CASES = (
    [case["name"] for case in json.loads((FIXTURES / "cases.json").read_text())["cases"]]
    if (FIXTURES / "cases.json").exists()
    else ["fixtures-absent"]
)
HP = {"R256": "256px", "R224": "224px"}  # fixture setting -> our preset


def load_transcription():
    """benchmarks/contextual_transcription.py, the plain baseline (benchmarks/ is not a package)."""
    path = REPO / "benchmarks" / "contextual_transcription.py"
    spec = importlib.util.spec_from_file_location("contextual_transcription", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_close(actual, reference, what):
    """The fixtures' float64 rule: |impl - ref| <= 1e-6·|ref| + 1e-12, elementwise."""
    actual, reference = np.asarray(actual, dtype=np.float64), np.asarray(reference)
    excess = np.abs(actual - reference) - (1e-6 * np.abs(reference) + 1e-12)
    assert excess.max() <= 0, f"{what}: max |Δ| {np.abs(actual - reference).max():.3g}"


def grad_of(loss, raw, labels):
    leaf = torch.tensor(raw, requires_grad=True)
    value = loss(leaf, torch.as_tensor(labels))
    value.backward()
    return value.detach().numpy(), leaf.grad.numpy()


def random_batch(n=24, d=16, per_class=4, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) // per_class
    labels = labels[torch.randperm(n, generator=generator)]
    return torch.randn(n, d, generator=generator, dtype=dtype), labels


def test_presets_are_the_two_official_recipes():
    assert ContextualLoss().extra_repr() == ContextualLoss(**PRESETS["256px"]).extra_repr()
    r224 = ContextualLoss(**PRESETS["224px"])
    weights = (r224.ctx_weight, r224.contrastive_weight, r224.reg_weight, r224.rho, r224.eps)
    assert weights == (0.8, 0.2, 0.1, 0.3, 0.05)


@pytest.mark.parametrize("name", CASES)
def test_matches_the_original_code_in_float64(name):
    """`*_f64` arrays, and `*_f64_guard` where every row of N is all ones (collapsed batches)."""
    case = np.load(shared_path("fixtures", "contextual", f"{name}.npz"))
    suffix = "_f64_guard" if "collapsed" in name else "_f64"
    preset = PRESETS[HP[name.split("__")[1]]]
    raw, labels = case["raw"], case["labels"]

    loss, grad = grad_of(ContextualLoss(**preset), raw, labels)
    assert_close(loss, case[f"L_total{suffix}"], "L_total")
    assert_close(grad, case[f"grad_total{suffix}"], "grad_total")

    explained = ContextualLoss(**preset).explain(torch.tensor(raw), torch.tensor(labels))
    for term in ("L_con", "L_reg"):
        assert_close(explained[term], case[term], term)
    assert_close(explained["L_ctx"], case[f"L_ctx{suffix}"], "L_ctx")
    assert_close(explained["S"], case["normalised"] @ case["normalised"].T, "S")

    weights = {"ctx_weight": 1.0, "contrastive_weight": 0.0, "reg_weight": 0.0}
    contextual_only = ContextualLoss(**{**preset, **weights})
    _, grad_ctx = grad_of(contextual_only, raw, labels)
    assert_close(grad_ctx, case[f"grad_ctx{suffix}"], "grad_ctx")


def test_collapsed_batch_gives_the_guarded_value():
    case = np.load(shared_path("fixtures", "contextual", "collapsed_n32_d16__R256.npz"))
    explained = ContextualLoss().explain(torch.tensor(case["raw"]), torch.tensor(case["labels"]))
    assert explained["N"].min() == 1  # every point is within ε of every 4th neighbour
    assert explained["L_ctx"] == 0.2421875  # W̃ = ½ off the diagonal
    assert np.isnan(case["L_total_f64"])  # the original, without the guard


@pytest.mark.parametrize("name", CASES)
def test_the_plain_transcription_matches_the_original_code(name):
    """The speed benchmark's baseline is itself right (unguarded: NaN on collapsed batches)."""
    case = np.load(shared_path("fixtures", "contextual", f"{name}.npz"))
    preset = PRESETS[HP[name.split("__")[1]]]
    transcription = load_transcription().contextual_loss
    loss, grad = grad_of(lambda z, y: transcription(z, y, **preset), case["raw"], case["labels"])
    if name.startswith("collapsed"):
        assert np.isnan(loss)
    else:
        assert_close(loss, case["L_total_f64"], "L_total")
        assert_close(grad, case["grad_total_f64"], "grad_total")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_the_transcription_on_random_batches(dtype):
    transcription = load_transcription().contextual_loss
    for seed in range(3):
        embeddings, labels = random_batch(n=40, d=8, seed=seed, dtype=dtype)
        ours = ContextualLoss()(embeddings, labels)
        plain = transcription(embeddings, labels)
        assert ours.dtype == dtype
        torch.testing.assert_close(
            ours, plain, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=0
        )


TERMS = {
    "contextual": dict(ctx_weight=1.0, contrastive_weight=0.0, reg_weight=0.0),
    "contrastive": dict(ctx_weight=0.0, contrastive_weight=1.0, reg_weight=0.0),
    "regulariser": dict(ctx_weight=0.0, contrastive_weight=0.0, reg_weight=1.0),
    "all": {},
}
BATCHES = {
    "4 per class": dict(n=48, d=8, per_class=4),
    "2 per class": dict(n=30, d=6, per_class=2),
    "two big classes": dict(n=40, d=5, per_class=20),
    "one class": dict(n=12, d=4, per_class=12),
}


@pytest.mark.parametrize("term", TERMS)
@pytest.mark.parametrize("batch", BATCHES)
def test_backward_equals_autograd_with_the_straight_through_slope(term, batch):
    """The hand-written backward against plain autograd through the transcription, whose Heaviside
    passes 10 x the gradient to every entry (the official slope), in float64."""
    assert GAIN == 10.0
    transcription = load_transcription().contextual_loss
    settings = {**PRESETS["256px"], **TERMS[term]}
    for seed in range(2):
        embeddings, labels = random_batch(**BATCHES[batch], seed=seed, dtype=torch.float64)
        ours, grad = grad_of(ContextualLoss(**settings), embeddings.numpy(), labels)
        plain, plain_grad = grad_of(
            lambda z, y: transcription(z, y, **settings), embeddings.numpy(), labels
        )
        assert_close(ours, plain, f"{term} loss")
        assert_close(grad, plain_grad, f"{term} gradient")


def test_gram_backward_equals_autograd():
    X = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    G = torch.randn(5, 5, dtype=torch.float64)
    (gram(X) * G).sum().backward()
    expected = torch.autograd.grad((X @ X.T * G).sum(), X)[0]
    torch.testing.assert_close(X.grad, expected)


def test_explain_returns_the_documented_arrays():
    embeddings, labels = random_batch(n=12, d=6)
    explained = ContextualLoss().explain(embeddings, labels)
    matrices = ["S", "D", "Y", "N", "M", "A", "B", "W_tilde", "R", "W_hat", "W"]
    assert set(explained) == set(matrices) | {"L_ctx", "L_con", "L_reg", "loss"}
    for name in matrices:
        assert isinstance(explained[name], np.ndarray) and explained[name].shape == (12, 12)
    W, N = explained["W"], explained["N"]
    np.testing.assert_allclose(W, W.T)
    assert W.min() >= 0 and W.max() <= 1 + 1e-6
    assert (N.sum(1) >= 4).all() and (np.diag(N) == 1).all()
    np.testing.assert_allclose(np.diag(explained["W_tilde"]), 1, rtol=1e-6)
    assert explained["loss"].shape == ()
    assert float(explained["loss"]) == pytest.approx(float(ContextualLoss()(embeddings, labels)))


DEGENERATE = {
    "one class": (torch.randn(8, 5), torch.zeros(8, dtype=torch.long)),
    "a singleton class": (torch.randn(9, 5), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2])),
    "n < k": (torch.randn(3, 5), torch.tensor([0, 0, 1])),
    "n == k": (torch.randn(4, 5), torch.tensor([0, 0, 1, 1])),
    "n == 2": (torch.randn(2, 5), torch.tensor([0, 1])),
    "all identical": (torch.ones(8, 5), torch.arange(8) // 4),
    "a zero vector": (torch.cat([torch.zeros(1, 5), torch.randn(7, 5)]), torch.arange(8) // 4),
}


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_batches_give_finite_loss_and_gradient(name):
    embeddings, labels = DEGENERATE[name]
    leaf = embeddings.clone().requires_grad_(True)
    loss = ContextualLoss()(leaf, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(leaf.grad).all()


def test_bfloat16_and_half_inputs_compute_in_float32():
    embeddings, labels = random_batch()
    for dtype in (torch.bfloat16, torch.float16):
        leaf = embeddings.to(dtype).requires_grad_(True)
        loss = ContextualLoss()(leaf, labels)
        loss.backward()
        assert loss.dtype == torch.float32 and leaf.grad.dtype == dtype
        assert torch.isfinite(leaf.grad.float()).all()
        assert loss == ContextualLoss()(embeddings.to(dtype).float(), labels)


def test_autocast_does_not_lower_the_precision():
    embeddings, labels = random_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = ContextualLoss()(embeddings, labels)
    assert loss.dtype == torch.float32
    assert loss == ContextualLoss()(embeddings, labels)


def test_explain_under_autocast_computes_in_float32():
    embeddings, labels = random_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explained = ContextualLoss().explain(embeddings, labels)
    plain = ContextualLoss().explain(embeddings, labels)
    for name, value in plain.items():
        np.testing.assert_array_equal(explained[name], value, err_msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_without_host_tensors():
    embeddings, labels = random_batch()
    loss = ContextualLoss()(embeddings.cuda(), labels.cuda())
    assert loss.device.type == "cuda"
    torch.testing.assert_close(loss.cpu(), ContextualLoss()(embeddings, labels))


@pytest.mark.parametrize(
    "embeddings, labels, message",
    [
        (torch.randn(8), torch.zeros(8, dtype=torch.long), "2-D"),
        (torch.randn(8, 3), torch.zeros(7, dtype=torch.long), "8 embeddings but 7 labels"),
        (torch.randn(8, 3), torch.zeros(8), "integers"),
        (torch.full((8, 3), float("nan")), torch.zeros(8, dtype=torch.long), "NaN"),
        (torch.randn(1, 3), torch.zeros(1, dtype=torch.long), "at least 2"),
        (torch.randint(0, 3, (8, 3)), torch.zeros(8, dtype=torch.long), "floating point"),
    ],
)
def test_bad_batches_raise_a_clear_value_error(embeddings, labels, message):
    with pytest.raises(ValueError, match=message):
        ContextualLoss()(embeddings, labels)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 1}, "k=1 is invalid: must be an integer >= 2"),
        ({"k": 4.0}, "k=4.0 is invalid: must be an integer"),
        ({"eps": -0.1}, r"eps=-0.1 is invalid: must be a number in \[0, 4\]"),
        ({"ctx_weight": -1}, "ctx_weight"),
        ({"contrastive_weight": float("inf")}, "contrastive_weight"),
        ({"reg_weight": "0.1"}, "reg_weight"),
        ({"rho": 1.5}, r"rho=1.5 is invalid: must be a number in \[-1, 1\]"),
        ({"pos_margin": 2}, "pos_margin"),
        ({"neg_margin": -2}, "neg_margin"),
    ],
)
def test_bad_hyperparameters_name_the_argument_value_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ContextualLoss(**kwargs)
