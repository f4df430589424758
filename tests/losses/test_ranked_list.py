"""RankedListLoss against the official Caffe semantics (../shared/fixtures/rll_official), against
pytorch-metric-learning (../shared/fixtures/rll_pml and the installed library, live), against a
hand-computed query-only gradient, and on the batches that break naive implementations."""

import json
import warnings

import numpy as np
import pytest
import torch
from pytorch_metric_learning.losses import RankedListLoss as PMLRankedListLoss
from shared_files import SHARED, shared_path

from dmlviz.losses import RankedListLoss

FIXTURES = SHARED / "fixtures" / "rll_official"
CASES = (
    {
        case["name"]: case["hp"]
        for case in json.loads((FIXTURES / "cases.json").read_text())["cases"]
    }
    if (FIXTURES / "cases.json").exists()
    else {"fixtures-absent": {}}
)
PML_MODE = dict(gradient="symmetric", detach_weights=False, query_weighting="uniform")
PML_EPS = 1e-5  # PML adds this to every one of the n columns of each weight sum


def ours_kwargs(hp: dict) -> dict:
    return dict(
        margin=hp["margin"], alpha=hp["alpha"], tn=hp["Tn"], tp=hp["Tp"], imbalance=hp["imbalance"]
    )


def assert_close(actual, reference, what):
    """The fixtures' float64 rule: |impl - ref| <= 1e-6·|ref| + 1e-12, elementwise."""
    actual, reference = np.asarray(actual, dtype=np.float64), np.asarray(reference)
    excess = np.abs(actual - reference) - (1e-6 * np.abs(reference) + 1e-12)
    assert excess.max() <= 0, f"{what}: max |Δ| {np.abs(actual - reference).max():.3g}"


def grad_of(loss, raw, labels):
    leaf = torch.as_tensor(raw).clone().requires_grad_(True)
    value = loss(leaf, torch.as_tensor(labels))
    value.backward()
    return value.detach().numpy(), leaf.grad.numpy()


def pml_per_anchor_from(explained: dict, loss: RankedListLoss) -> np.ndarray:
    """PML's per-anchor loss rebuilt from our explain(): our L_P, L_N with PML's denominators.

    PML divides Σ w·l by Σ_j (w_j + 1e-5) over all n columns, i.e. by S + n·1e-5, where we divide by
    the weight sum S itself (the paper's normalisation). That is the only difference in value.
    """
    d, n = explained["distances"], len(explained["L_P"])
    alpha = 1 + loss.margin / 2 if loss.alpha is None else loss.alpha
    S_P = np.where(
        explained["positive_mask"], np.exp(loss.tp * (d - (alpha - loss.margin))), 0
    ).sum(1)
    S_N = np.where(explained["negative_mask"], np.exp(loss.tn * (alpha - d)), 0).sum(1)
    L_P = explained["L_P"] * S_P / (S_P + n * PML_EPS)
    L_N = explained["L_N"] * S_N / (S_N + n * PML_EPS)
    return (1 - loss.imbalance) * L_P + loss.imbalance * L_N


def pml_loss(margin=0.4, alpha=None, tn=10.0, tp=0.0, imbalance=0.5):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PML warns about Tn > 5; the paper uses 10
        return PMLRankedListLoss(margin=margin, Tn=tn, imbalance=imbalance, alpha=alpha, Tp=tp)


def random_batch(n=24, d=16, per_class=3, seed=0, dtype=torch.float64, spread=1.0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) // per_class
    labels = labels[torch.randperm(n, generator=generator)]
    centres = torch.randn(n // per_class + 1, d, generator=generator, dtype=dtype)
    noise = torch.randn(n, d, generator=generator, dtype=dtype)
    return centres[labels] + spread * noise, labels


@pytest.mark.parametrize("name", CASES)
def test_matches_the_official_caffe_semantics(name):
    """loss/grad_uniform with the defaults; loss/grad_caffe_noeps with query_weighting="caffe"."""
    case = np.load(shared_path("fixtures", "rll_official", f"{name}.npz"))
    kwargs = ours_kwargs(CASES[name])
    loss, grad = grad_of(RankedListLoss(**kwargs), case["raw"], case["labels"])
    assert_close(loss, case["loss_uniform"], "loss_uniform")
    assert_close(grad, case["grad_uniform"], "grad_uniform")

    caffe = RankedListLoss(**kwargs, query_weighting="caffe")
    loss, grad = grad_of(caffe, case["raw"], case["labels"])
    assert_close(loss, case["loss_caffe_noeps"], "loss_caffe_noeps")
    assert_close(grad, case["grad_caffe_noeps"], "grad_caffe_noeps")

    explained = caffe.explain(torch.tensor(case["raw"]), torch.tensor(case["labels"]))
    assert_close(explained["L_P"], case["L_P"], "L_P")
    assert_close(explained["L_N"], case["L_N"], "L_N")
    assert (explained["positive_mask"].sum(1) == case["n_pos_active"]).all()
    assert (explained["negative_mask"].sum(1) == case["n_neg_active"]).all()
    # c_caffe seeds each weight sum with 1e-8; we do not, which moves c_i by ~1e-8 at most.
    np.testing.assert_allclose(explained["query_weights"], case["c_caffe"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", CASES)
def test_pml_mode_matches_pytorch_metric_learning(name):
    """gradient="symmetric", detach_weights=False is PML's RankedListLoss up to PML's +n·1e-5.

    PML divides each query's weighted sum by Σ_j (w_j + 1e-5) over all n columns, so by the weight
    sum plus n·1e-5, where the paper (and we) divide by the weight sum. With Tp = 0 the positive
    weight sum is |P*_i|, 1 to 3 here, so at n = 128 PML's L_P is smaller by up to 128e-5/1 ≈ 1e-3
    relative; its loss is lower by at most 6.4e-4 and its gradient moves by at most 7.6e-4 relative
    over these cases. Rebuilding PML's denominators from our explain() output reproduces PML's
    per-anchor losses to float64 precision, so nothing else differs.
    """
    case = np.load(shared_path("fixtures", "rll_pml", f"{name}.npz"))
    ours = RankedListLoss(**ours_kwargs(CASES[name]), **PML_MODE)
    loss, grad = grad_of(ours, case["raw"], case["labels"])
    assert abs(loss - case["loss"]) <= 1e-3 * abs(case["loss"])
    assert np.linalg.norm(grad - case["grad"]) <= 1e-3 * np.linalg.norm(case["grad"])

    explained = ours.explain(torch.tensor(case["raw"]), torch.tensor(case["labels"]))
    assert_close(pml_per_anchor_from(explained, ours), case["per_anchor_loss"], "per_anchor_loss")


@pytest.mark.parametrize(
    "hp",
    [
        dict(margin=0.4, tn=10.0),
        dict(margin=0.2, alpha=1.4, tn=10.0),
        dict(margin=0.4, tn=10.0, tp=2.0, imbalance=0.3),
        dict(margin=1.0, tn=1.0),
    ],
)
@pytest.mark.parametrize("spread", [0.5, 1.0])
def test_pml_mode_matches_the_installed_library_live(hp, spread):
    embeddings, labels = random_batch(n=30, spread=spread, seed=int(10 * spread))
    ours = RankedListLoss(**hp, **PML_MODE)
    theirs = pml_loss(**hp)
    loss, grad = grad_of(ours, embeddings, labels)
    loss_pml, grad_pml = grad_of(theirs, embeddings, labels)
    assert abs(loss - loss_pml) <= 1e-3 * abs(loss_pml)
    assert np.linalg.norm(grad - grad_pml) <= 1e-3 * np.linalg.norm(grad_pml)
    per_anchor = theirs.compute_loss(embeddings, labels, None, embeddings, labels)["loss"]["losses"]
    explained = ours.explain(embeddings, labels)
    assert_close(pml_per_anchor_from(explained, ours), per_anchor.numpy(), "per-anchor loss")


def test_float32_agrees_with_the_library_too():
    embeddings, labels = random_batch(n=64, d=32, dtype=torch.float32, spread=0.6)
    ours = RankedListLoss(**PML_MODE)(embeddings, labels)
    theirs = pml_loss()(embeddings, labels)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=0)


def caffe_gradient(
    raw, labels, margin=0.4, alpha=None, tn=10.0, tp=0.0, imbalance=0.5, both_ends=False
):
    """The official layer's gradient, written out pair by pair (the slow, obvious reference).

    Query i receives (1/n)·[(1-λ) Σ_{P*_i} w̄⁺ u_ij - λ Σ_{N*_i} w̄⁻ u_ij], u_ij = (e_i - e_j)/d_ij,
    with the normalised weights w̄ as constants and nothing sent to j (``both_ends``: j receives
    the opposite of its term, as plain autograd through d_ij does); then the Jacobian of the L2
    normalisation maps it to raw.
    """
    alpha = 1 + margin / 2 if alpha is None else alpha
    n = len(raw)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    e = raw / norms
    grad_e = np.zeros_like(e)
    for i in range(n):
        d = np.linalg.norm(e[i] - e, axis=1)
        others = np.arange(n) != i
        positives = np.flatnonzero(others & (labels == labels[i]) & (d > alpha - margin))
        negatives = np.flatnonzero((labels != labels[i]) & (d < alpha))
        for members, sign, weight, T, violation in [
            (positives, 1.0, 1 - imbalance, tp, d - (alpha - margin)),
            (negatives, -1.0, imbalance, tn, alpha - d),
        ]:
            if len(members):
                w = np.exp(T * violation[members])
                w /= w.sum()
                u = (e[i] - e[members]) / d[members, None]
                grad_e[i] += sign * weight * (w[:, None] * u).sum(0) / n
                if both_ends:
                    grad_e[members] -= sign * weight * w[:, None] * u / n
    return (grad_e - (grad_e * e).sum(1, keepdims=True) * e) / norms


@pytest.mark.parametrize("hp", [dict(), dict(tp=3.0, imbalance=0.7), dict(margin=0.2, alpha=1.4)])
def test_query_gradient_equals_the_hand_written_caffe_gradient(hp):
    embeddings, labels = random_batch(n=18, d=6, spread=0.7)
    _, grad = grad_of(RankedListLoss(**hp), embeddings, labels)
    expected = caffe_gradient(embeddings.numpy(), labels.numpy(), **hp)
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-14)


def test_the_value_does_not_depend_on_the_gradient_options():
    embeddings, labels = random_batch()
    values = {
        RankedListLoss(gradient=gradient, detach_weights=detach)(embeddings, labels).item()
        for gradient in ("query", "symmetric")
        for detach in (True, False)
    }
    assert max(values) - min(values) < 1e-15


def test_symmetric_gradient_moves_both_ends_of_every_pair():
    embeddings, labels = random_batch(n=18, d=6, spread=0.7)
    _, symmetric = grad_of(RankedListLoss(gradient="symmetric"), embeddings, labels)
    expected = caffe_gradient(embeddings.numpy(), labels.numpy(), both_ends=True)
    np.testing.assert_allclose(symmetric, expected, rtol=1e-9, atol=1e-14)


def test_alpha_none_is_one_plus_half_the_margin():
    embeddings, labels = random_batch()
    for margin in (0.2, 0.4, 1.0):
        default = RankedListLoss(margin=margin)(embeddings, labels)
        explicit = RankedListLoss(margin=margin, alpha=1 + margin / 2)(embeddings, labels)
        assert default == explicit


def test_explain_returns_the_documented_arrays():
    embeddings, labels = random_batch(n=12)
    explained = RankedListLoss(query_weighting="caffe").explain(embeddings, labels)
    square = ["distances", "positive_mask", "negative_mask", "positive_weights", "negative_weights"]
    assert set(explained) == set(square) | {"L_P", "L_N", "query_weights", "loss"}
    for name in square:
        assert explained[name].shape == (12, 12)
    assert (
        explained["positive_mask"].dtype == bool and not explained["positive_mask"].diagonal().any()
    )
    for kind in ("positive", "negative"):
        sums = explained[f"{kind}_weights"].sum(1)
        has_members = explained[f"{kind}_mask"].any(1)
        np.testing.assert_allclose(sums, has_members.astype(float), atol=1e-12)
        assert (explained[f"{kind}_weights"][~explained[f"{kind}_mask"]] == 0).all()
    assert explained["query_weights"].sum() == pytest.approx(1)
    assert explained["L_P"].shape == explained["L_N"].shape == (12,)


DEGENERATE = {
    "one class": (torch.randn(8, 5), torch.zeros(8, dtype=torch.long)),
    "all singletons": (torch.randn(6, 5), torch.arange(6)),
    "n == 2": (torch.randn(2, 5), torch.tensor([0, 1])),
    "all identical": (torch.ones(8, 5), torch.arange(8) // 4),
    "identical across classes": (torch.ones(6, 5), torch.tensor([0, 0, 0, 1, 1, 1])),
    "a zero vector": (torch.cat([torch.zeros(1, 5), torch.randn(7, 5)]), torch.arange(8) // 4),
}


@pytest.mark.parametrize("options", [{}, PML_MODE, {"query_weighting": "caffe"}])
@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_batches_give_finite_loss_and_gradient(name, options):
    embeddings, labels = DEGENERATE[name]
    leaf = embeddings.clone().requires_grad_(True)
    loss = RankedListLoss(**options)(leaf, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(leaf.grad).all()


def test_empty_sets_contribute_zero():
    embeddings, labels = random_batch(n=8)
    one_class = RankedListLoss().explain(embeddings, torch.zeros(8, dtype=torch.long))
    assert (one_class["L_N"] == 0).all() and not one_class["negative_mask"].any()
    singletons = RankedListLoss().explain(embeddings, torch.arange(8))
    assert (singletons["L_P"] == 0).all() and not singletons["positive_mask"].any()


def test_half_precision_and_huge_temperatures_stay_finite():
    base = torch.randn(1, 32)
    embeddings = (
        base + 0.01 * torch.randn(16, 32)
    ).half()  # nearly collapsed: e^(Tn·alpha) overflows fp16
    labels = torch.arange(16) // 4
    for loss in (
        RankedListLoss(),
        RankedListLoss(tn=1000.0, tp=1000.0),
        RankedListLoss(**PML_MODE),
    ):
        leaf = embeddings.clone().requires_grad_(True)
        value = loss(leaf, labels)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert leaf.grad.dtype == torch.float16 and torch.isfinite(leaf.grad).all()


def test_bfloat16_and_autocast_compute_in_float32():
    embeddings, labels = random_batch(dtype=torch.float32)
    reference = RankedListLoss()(embeddings.bfloat16().float(), labels)
    assert RankedListLoss()(embeddings.bfloat16(), labels) == reference
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert RankedListLoss()(embeddings, labels) == RankedListLoss()(embeddings, labels).float()
        assert RankedListLoss()(embeddings, labels).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_without_host_tensors():
    embeddings, labels = random_batch(dtype=torch.float32)
    for options in ({}, {"query_weighting": "caffe"}):
        loss = RankedListLoss(**options)(embeddings.cuda(), labels.cuda())
        assert loss.device.type == "cuda"
        expected = RankedListLoss(**options)(embeddings, labels)
        torch.testing.assert_close(loss.cpu(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "embeddings, labels, message",
    [
        (torch.randn(8, 3, 2), torch.zeros(8, dtype=torch.long), "2-D"),
        (torch.randn(8, 3), torch.zeros(9, dtype=torch.long), "8 embeddings but 9 labels"),
        (torch.randn(8, 3), torch.zeros(8, 1, dtype=torch.long), "1-D"),
        (torch.full((8, 3), float("inf")), torch.zeros(8, dtype=torch.long), "infinite"),
    ],
)
def test_bad_batches_raise_a_clear_value_error(embeddings, labels, message):
    with pytest.raises(ValueError, match=message):
        RankedListLoss()(embeddings, labels)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"margin": -0.1}, r"margin=-0.1 is invalid: must be a number in \[0, 2\]"),
        ({"alpha": 0}, r"alpha=0 is invalid: must be a number in \(0, 2\]"),
        ({"alpha": 2.5}, "alpha"),
        ({"tn": -1}, r"tn=-1 is invalid: must be a number in \[0, inf\)"),
        ({"tp": float("nan")}, "tp"),
        ({"imbalance": 1.5}, r"imbalance=1.5 is invalid: must be a number in \[0, 1\]"),
        ({"gradient": "both"}, "gradient='both' is invalid: choose one of query, symmetric"),
        ({"detach_weights": 1}, "detach_weights=1 is invalid: must be true or false"),
        (
            {"query_weighting": "mean"},
            "query_weighting='mean' is invalid: choose one of uniform, caffe",
        ),
    ],
)
def test_bad_hyperparameters_name_the_argument_value_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RankedListLoss(**kwargs)
