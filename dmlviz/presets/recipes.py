"""The papers' training recipes as named configs: ``dmlviz train --recipe contextual-224-cub200``.

A recipe is a full experiment (dataset, model, loss settings, optimiser, schedule, batches) as
``docs/contextual.md`` §2 (the official 224 px code path, "R224") and ``docs/rll.md`` §2 (the
released Caffe configs) describe it. Each one's docstring says where it departs from the paper;
``docs/recipes.md`` has the commands and the papers' numbers to compare against. Flags and
``--config`` keys override a recipe's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dmlviz.registry import loss_entry

RECIPES: dict[str, Callable[[], dict[str, Any]]] = {}

_CONTEXTUAL_224 = {
    "loss": "contextual",
    "model": "resnet50",  # torchvision's IMAGENET1K_V1, as the official code loads it
    "pretrained": True,
    "pooling": "gem",
    "embedding_dim": 512,
    "freeze_bn": True,  # eval mode and requires_grad=False
    "image_size": 224,
    "augment": True,
    "m_per_class": 4,
    "optimizer": "adamw",
    "weight_decay": 1e-4,
    "backbone_lr": None,  # the same lr for backbone and embedding; the projector gets 2 x lr
    "schedule": "step",
    "preset_source": "paper defaults",
}
_CONTEXTUAL_LOSS = loss_entry("contextual").variant("224px")  # R224, Cars and SOP

_RLL = {
    "loss": "rll",
    # BN-Inception (GoogLeNet-V2) is not in timm; torchvision's Inception-v3 weights through timm
    "model": "timm:inception_v3.tv_in1k",
    "pretrained": True,
    "pooling": "avg",
    "freeze_bn": False,  # Caffe's BatchNorm ran in train mode
    "image_size": 227,
    "augment": True,
    "m_per_class": 3,
    "optimizer": "sgd",
    "lr": 0.1,  # the embedding FC's effective lr (base lr x lr_mult)
    "schedule": "step",
    "step_size": 1,  # one "epoch" = the iterations between two lr decays
    "preset_source": "paper defaults",
}


def recipe(function: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Register ``function`` under its name with ``_`` as ``-`` (``contextual_224_cub200`` ->
    ``contextual-224-cub200``)."""
    RECIPES[function.__name__.replace("_", "-")] = function
    return function


def recipe_config(name: str) -> dict[str, Any]:
    """The config keys of recipe ``name`` (one of ``RECIPES``), with ``recipe`` set to it."""
    if name not in RECIPES:
        raise ValueError(f"recipe={name!r} is unknown; choose one of {', '.join(RECIPES)}")
    return {**RECIPES[name](), "recipe": name}


@recipe
def contextual_224_cub200() -> dict[str, Any]:
    """Contextual loss, R224 on CUB-200 (``224x224/train.py``, README command).

    ResNet-50 (ImageNet), GeM, 512-d, frozen BatchNorm, a training-only 2048-d linear projector
    the loss sees (lr x 2); AdamW lr 1.4e-4, weight decay 1e-4; StepLR 10 epochs x 0.3; 60
    epochs of 45 batches of 128 (32 classes x 4); RandomResizedCrop 224 (scale 0.16-1) + flip;
    loss --lam 0.05 (contextual weight 0.95), eps 0.04, gamma 0.1, rho 0.3.

    Departs from the paper: batches come from dmlviz's m-per-class sampler (the code's
    BalancedSampler draws 96 classes per round from refilling pools); the embedding layer keeps
    PyTorch's default init (the code: Kaiming fan-out, bias 0); a fixed seed; the last epoch is
    reported (the code tests every 10 epochs and the README reports the end of training).
    """
    return {
        **_CONTEXTUAL_224,
        "dataset": "cub200",
        "loss_kwargs": {**_CONTEXTUAL_LOSS, "eps": 0.04, "ctx_weight": 0.95,
                        "contrastive_weight": 0.05},
        "projector_dim": 2048,
        "lr": 1.4e-4,
        "epochs": 60,
        "batch_size": 128,
        "batches_per_epoch": 45,
        "step_size": 10,
        "step_gamma": 0.3,
        "eval_every": 10,
    }  # fmt: skip


@recipe
def contextual_224_cars196() -> dict[str, Any]:
    """Contextual loss, R224 on Cars-196.

    As ``contextual-224-cub200`` but batch 64 (16 classes x 4, as the code's Cars command), lr
    8e-5, StepLR 20 epochs x 0.5, 160 epochs of 126 batches, loss --lam 0.2 (contextual weight
    0.8), eps 0.05.

    Departs from the paper as ``contextual-224-cub200`` does, and: RandomResizedCrop keeps
    dmlviz's scale 0.16-1 (the code uses 0.12-1 for Cars).
    """
    return {
        **_CONTEXTUAL_224,
        "dataset": "cars196",
        "loss_kwargs": dict(_CONTEXTUAL_LOSS),
        "projector_dim": 2048,
        "lr": 8e-5,
        "epochs": 160,
        "batch_size": 64,
        "batches_per_epoch": 126,
        "step_size": 20,
        "step_gamma": 0.5,
        "eval_every": 10,
    }


@recipe
def contextual_224_sop() -> dict[str, Any]:
    """Contextual loss, R224 on Stanford Online Products.

    As ``contextual-224-cub200`` but no projector (the code's ``identity``: the loss sees the
    512-d embedding), lr 6e-5, StepLR 15 epochs x 0.3, 80 epochs of 660 batches of 128, loss
    --lam 0.2 (contextual weight 0.8), eps 0.05.

    Departs from the paper as ``contextual-224-cub200`` does, and: batches mix classes of any
    super-category (the code's hierarchical sampler takes two half-batches from two different
    super-categories, which makes negatives harder); RandomResizedCrop keeps scale 0.16-1 (the
    code: 0.08-1).
    """
    return {
        **_CONTEXTUAL_224,
        "dataset": "sop",
        "loss_kwargs": dict(_CONTEXTUAL_LOSS),
        "projector_dim": None,
        "lr": 6e-5,
        "epochs": 80,
        "batch_size": 128,
        "batches_per_epoch": 660,
        "step_size": 15,
        "step_gamma": 0.3,
        "eval_every": 5,
    }


@recipe
def rll_cub200() -> dict[str, Any]:
    """Ranked List Loss on CUB-200, the CVPR code's config (``CUB_V01/60_n1.4_pn0.2_tp0_tn10``).

    alpha 1.4, margin 0.2, T_n 10, T_p 0; batch 60 (20 classes x 3); SGD momentum 0.9, backbone
    lr 1e-3, embedding lr 0.1 (lr_mult 100), weight decay 2e-5; lr x 0.5 every 2000 iterations,
    10,000 iterations (5 "epochs" of 2000 batches); 512-d, average pooling, BatchNorm trained.

    Departs from the paper: the backbone is Inception-v3 (timm's ``inception_v3.tv_in1k``,
    2048-d features) instead of BN-Inception / GoogLeNet-V2 (1024-d), which timm does not have,
    so the numbers are not the paper's network; one embedding head (the paper's RLL-H, not the
    L,M,H concatenation); the embedding layer has a bias and PyTorch's default init (Caffe: Xavier,
    no bias); SGD with Nesterov momentum; RGB ImageNet normalisation instead of
    Caffe's BGR mean subtraction; RandomResizedCrop 227 (scale 0.16-1) instead of the
    bounding-box crop to a 256 square and a random 227 crop.
    """
    return {
        **_RLL,
        "dataset": "cub200",
        "loss_kwargs": {"margin": 0.2, "alpha": 1.4, "tn": 10.0, "tp": 0.0},
        "embedding_dim": 512,
        "backbone_lr": 1e-3,
        "weight_decay": 2e-5,
        "batch_size": 60,
        "epochs": 5,
        "batches_per_epoch": 2000,
        "step_gamma": 0.5,
        "eval_every": 1,
    }


@recipe
def rll_sop() -> dict[str, Any]:
    """Ranked List Loss on SOP, the CVPR code's config (``SOP_GoogLeNet_Ori_V05/180_T10_m12``).

    alpha 1.2, margin 0.4, T_n 10; batch 180 (60 classes x 3); SGD, backbone lr 1e-2, embedding
    lr 0.1 (lr_mult 10), weight decay 1e-5; lr x 0.5 every 5000 iterations, 20,000 iterations
    (4 "epochs" of 5000 batches); 512-d.

    Departs from the paper as ``rll-cub200`` does (Inception-v3 for BN-Inception, one head,
    Nesterov, RGB normalisation); the augmentation is RandomResizedCrop 227 (scale 0.16-1; the
    TPAMI code: 0.5-1 of a 256 x 256 resize).
    """
    return {
        **_RLL,
        "dataset": "sop",
        "loss_kwargs": {"margin": 0.4, "alpha": 1.2, "tn": 10.0, "tp": 0.0},
        "embedding_dim": 512,
        "backbone_lr": 1e-2,
        "weight_decay": 1e-5,
        "batch_size": 180,
        "epochs": 4,
        "batches_per_epoch": 5000,
        "step_gamma": 0.5,
        "eval_every": 1,
    }


@recipe
def rll_inshop() -> dict[str, Any]:
    """Ranked List Loss on In-Shop, the TPAMI code's config (``InshopClothes_Simp_21042020``).

    alpha 1.2, margin 0.4, T_n 12; batch 66 (22 classes x 3); SGD, backbone lr 1e-2, embedding
    lr 0.1, weight decay 2e-5; lr x 0.2 at 12k and 24k iterations, 30,000 iterations (5
    "epochs" of 6000 batches, decay every 2); 128-d.

    Departs from the paper as ``rll-sop`` does; the paper reports its 26k-iteration checkpoint,
    this recipe the end of training.
    """
    return {
        **_RLL,
        "dataset": "inshop",
        "loss_kwargs": {"margin": 0.4, "alpha": 1.2, "tn": 12.0, "tp": 0.0},
        "embedding_dim": 128,
        "backbone_lr": 1e-2,
        "weight_decay": 2e-5,
        "batch_size": 66,
        "epochs": 5,
        "batches_per_epoch": 6000,
        "step_size": 2,
        "step_gamma": 0.2,
        "eval_every": 1,
    }
