"""Training configuration: one flat dict (the run's config.json), its defaults and its validation.

``default_config(dataset, loss)`` gives every key; ``resolve_config`` fills a partial config from
those defaults and validates it once, scikit-learn style: a ``ConfigError`` names the key, the
value it got and what is allowed.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from dmlviz.validate import InvalidValue, check_choice, check_flag, check_number

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "none")
USER = "user settings"
PRESET_SOURCES = ("tuned on validation", "paper defaults", USER)
USER_SETTINGS = ("loss_kwargs", "lr")  # a config setting either is labelled USER

# What the user may set. Per-dataset values below override these.
BASE_CONFIG: dict[str, Any] = {
    "name": None,  # None: the run folder's name
    # data
    "dataset": None,
    "dataset_root": None,
    "test_root": None,  # folder, omniglot: a second tree whose classes test (root's all train)
    "protocol": None,
    "image_size": None,  # None: the dataset's own size (written back once the data is loaded)
    "split_seed": 0,
    "val_fraction": None,
    "val_fold": 0,  # which disjoint validation fold val_fraction holds out (cross-validation)
    "augment": False,
    "num_workers": 0,
    # model
    "model": "resnet50",
    "embedding_dim": 128,
    "in_channels": None,  # None: from the dataset (written back once the data is loaded)
    "pooling": "gem",
    "freeze_bn": False,
    "layer_norm": False,
    "pretrained": False,
    "weights": None,  # a .safetensors/.pth state dict of the backbone (instead of pretrained)
    "init_from": None,  # a finished run whose backbone and head start this one (fine-tuning)
    "projector_dim": None,  # a training-only linear projector the loss sees (contextual R224)
    "recipe": None,  # the paper recipe the settings came from (dmlviz.presets.recipes)
    # loss
    "loss": None,
    "loss_kwargs": {},
    "preset_source": "paper defaults",
    # label noise on the train split
    "noise_kind": "symmetric",
    "noise_rate": 0.0,
    "noise_seed": 0,
    # optimisation
    "seed": 0,
    "epochs": 20,
    "batch_size": 64,
    "m_per_class": 4,
    "batches_per_epoch": None,  # None: the sampler's default (about one pass over the data)
    "optimizer": "adamw",
    "lr": 1e-3,  # the embedding head's learning rate
    "backbone_lr": None,  # None: same as lr
    "weight_decay": 1e-4,
    "schedule": "cosine",  # per batch; "step" multiplies by step_gamma every step_size epochs
    "step_size": 10,
    "step_gamma": 0.1,
    "grad_clip": None,  # max global gradient norm, None: no clipping
    # hardware
    "device": None,  # None or "auto": cuda, then mps, then cpu
    "num_threads": None,  # CPU threads for torch; None: leave torch's setting
    "amp": "auto",  # CUDA only: auto = bf16 where supported, else fp16 with a GradScaler
    "compile": False,
    # logging
    "eval_every": 1,  # epochs between evaluations on the held-out split; 0: never
    "replay_every": 5,  # epochs between snapshots of the probe set's embeddings; 0: never
    "tensorboard": True,  # write TensorBoard scalars when the tensorboard package is installed
}

_IMAGE_SETS = {
    "model": "resnet50",
    "pretrained": True,
    "freeze_bn": True,
    "embedding_dim": 512,
    "image_size": 224,
    "augment": True,
    "num_workers": min(
        4, os.cpu_count() or 1
    ),  # decoding JPEGs needs workers; never more than cores
    "epochs": 50,
    "batch_size": 128,
    "m_per_class": 4,
    "lr": 1e-4,
    "backbone_lr": 1e-5,
    "eval_every": 5,
    "replay_every": 10,
}
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    # Small enough to train in seconds on 2 cores. Protocol "samples" (every digit in both splits):
    # with "classes" (train 0-4, test 5-9) five training classes teach features that transfer
    # worse to the unseen digits than the untrained network's (test MAP@R falls from 0.47 to
    # about 0.3 for every loss), so nothing could be learnt from comparing losses there.
    "digits": {
        "protocol": "samples",
        "model": "mlp",
        "embedding_dim": 64,
        "epochs": 25,
        "batch_size": 60,
        "m_per_class": 12,
        "lr": 2e-3,
        "eval_every": 5,
        "replay_every": 2,  # 14 snapshots of 1,800 images: 3.3 MB, about 6 % of training time
        "num_threads": 1,  # a model this small gains nothing from more, and loses when cores are shared
    },
    "omniglot": {
        "model": "convnet",
        "embedding_dim": 64,
        "image_size": 28,
        "epochs": 20,
        "batch_size": 64,
        "m_per_class": 4,
        "eval_every": 5,
    },
    "cub200": _IMAGE_SETS,
    "cars196": _IMAGE_SETS,
    "sop": _IMAGE_SETS,
    "inshop": _IMAGE_SETS,
    "folder": {**_IMAGE_SETS, "model": "resnet18"},
    "csv": {**_IMAGE_SETS, "model": "resnet18"},
}

# What a run started with init_from takes from the run it starts from, unless set.
INHERITED_KEYS = ("model", "embedding_dim", "pooling", "layer_norm", "image_size", "in_channels")
# Written by train(), never set by the user: versions, where the starting weights came from, and
# how the data was split (the layout's name, e.g. "train/test folders", and how many test classes
# also occur in train).
RECORDED_KEYS = (
    "dmlviz_version",
    "torch_version",
    "weights_source",
    "split_layout",
    "test_classes_in_train",
)
# May differ when resuming a run; everything else must match its config.json.
RESUMABLE_CHANGES = (
    "epochs",
    "eval_every",
    "device",
    "num_workers",
    "num_threads",
    "amp",
    "compile",
    "tensorboard",
)


class ConfigError(InvalidValue):
    """A bad config value; ``key`` (the argument's ``name``), ``value`` and ``allowed`` say which,
    what and what instead."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(key, value, allowed)
        self.key = key


def default_config(dataset: str, loss: str, presets: str = "tuned") -> dict[str, Any]:
    """The full training config for ``dataset`` and ``loss`` with every default filled in.

    The loss settings and learning rate come from the dataset's presets: ``presets`` "tuned" uses
    the ones tuned on validation where they exist (else the paper defaults), "paper" the paper
    defaults (``dmlviz.presets``). Unknown names raise ``ConfigError``; the result passes
    ``validate_config``.
    """
    config = copy.deepcopy(BASE_CONFIG)
    config.update(copy.deepcopy(DATASET_DEFAULTS.get(dataset, {})))
    config["dataset"] = dataset
    config["loss"] = loss
    from dmlviz.data import DATASETS
    from dmlviz.losses import LOSSES
    from dmlviz.presets import KINDS, apply_preset

    if presets not in KINDS:
        raise ConfigError("presets", presets, f"choose one of {', '.join(KINDS)}")
    if dataset in DATASETS and loss in LOSSES:  # unknown names: validate_config says which
        config = apply_preset(config, kind=presets)
    return validate_config(config)


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill the keys ``config`` lacks from ``default_config(config["dataset"], config["loss"])``
    and validate the result; returns a new dict. ``preset_source`` is "user settings" when
    ``config`` sets ``loss_kwargs`` or ``lr`` and does not say where they came from."""
    if not isinstance(config, dict):
        raise ConfigError("config", type(config).__name__, "must be a dict of settings")
    for key in ("dataset", "loss"):
        if config.get(key) is None:
            raise ConfigError(key, None, "is required")
    _check_keys(config)
    full = default_config(config["dataset"], config["loss"])
    if config.get("init_from") and not all(key in config for key in INHERITED_KEYS):
        full.update(_init_from_settings(config["init_from"]))
    full.update(copy.deepcopy(config))
    if "preset_source" not in config and any(key in config for key in USER_SETTINGS):
        full["preset_source"] = USER  # the caller's loss settings replace the preset's
    return validate_config(_model_defaults(full, given=config))


def _model_defaults(config: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Defaults that follow the chosen model where the user (``given``) set none: no ImageNet
    weights for a model without any or when other weights (``weights``, ``init_from``) start it;
    BatchNorm frozen only when the model starts from trained weights; a timm model's own input
    size."""
    from dmlviz.models import check_model_name, has_pretrained, model_image_size

    try:
        check_model_name(config["model"])
    except ValueError:
        return config  # validate_config names the bad model
    other_weights = bool(config["weights"] or config["init_from"])
    if "pretrained" not in given and (other_weights or not has_pretrained(config["model"])):
        config["pretrained"] = False
    if "freeze_bn" not in given and not (config["pretrained"] or other_weights):
        config["freeze_bn"] = False
    if given.get("image_size") is None and "init_from" not in given:
        config["image_size"] = model_image_size(config["model"]) or config["image_size"]
    return config


def _init_from_settings(path: str) -> dict[str, Any]:
    """The model settings of the run ``path`` that a run starting from its weights inherits."""
    from dmlviz.runs import Run

    try:
        source = Run.load(path).config
    except (OSError, ValueError) as error:
        raise ConfigError(
            "init_from", path, f"must be a finished run directory ({error})"
        ) from None
    return {key: source[key] for key in INHERITED_KEYS if key in source}


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check every value of a full config; returns it unchanged or raises ``ConfigError``."""
    from dmlviz.data import DATASETS, NOISE_KINDS, TEST_ROOT_DATASETS
    from dmlviz.losses import LOSSES, build
    from dmlviz.models import POOLINGS, PRETRAINED, check_model_name, has_pretrained

    _check_keys(config)
    missing = [key for key in BASE_CONFIG if key not in config]
    if missing:
        raise ConfigError(missing[0], None, "is missing (start from default_config)")
    c = config
    _choice(c, "dataset", DATASETS)
    try:
        check_model_name(c["model"])
    except InvalidValue as error:
        raise ConfigError("model", c["model"], error.allowed) from None
    except ValueError as error:  # a timm name timm does not know: its message says why
        raise ConfigError("model", c["model"], str(error)) from None
    _choice(c, "loss", LOSSES)
    _choice(c, "pooling", POOLINGS)
    _choice(c, "noise_kind", NOISE_KINDS)
    _choice(c, "optimizer", OPTIMIZERS)
    _choice(c, "schedule", SCHEDULES)
    _choice(c, "amp", AMP_MODES)
    _choice(c, "preset_source", PRESET_SOURCES)
    for key in ("name", "dataset_root", "test_root", "protocol", "weights", "init_from", "recipe"):
        if c[key] is not None and not isinstance(c[key], str):
            raise ConfigError(key, c[key], "must be a string or None")
    if c["test_root"] is not None and c["dataset"] not in TEST_ROOT_DATASETS:
        raise ConfigError(
            "test_root",
            c["test_root"],
            f"only {', '.join(TEST_ROOT_DATASETS)} take a second tree to test on, not "
            f"{c['dataset']}",
        )
    if c["device"] is not None:
        _device_name(c["device"])
    for key in ("augment", "freeze_bn", "layer_norm", "pretrained", "compile", "tensorboard"):
        check_flag(key, c[key], error=ConfigError)
    for key in ("epochs", "batch_size", "m_per_class", "embedding_dim", "step_size"):
        _integer(c, key, minimum=1)
    for key in ("seed", "split_seed", "noise_seed", "num_workers", "eval_every", "val_fold",
                "replay_every"):  # fmt: skip
        _integer(c, key, minimum=0)
    for key in ("image_size", "in_channels", "batches_per_epoch", "num_threads", "projector_dim"):
        if c[key] is not None:
            _integer(c, key, minimum=1)
    if c["batch_size"] < 2:
        raise ConfigError("batch_size", c["batch_size"], "must be at least 2")
    if c["batch_size"] % c["m_per_class"]:
        raise ConfigError(
            "m_per_class",
            c["m_per_class"],
            f"must divide batch_size={c['batch_size']} (a batch holds batch_size / m_per_class "
            "classes with m_per_class images each)",
        )
    if c["batch_size"] // c["m_per_class"] < 2:
        raise ConfigError(
            "m_per_class",
            c["m_per_class"],
            f"leaves fewer than 2 classes per batch of {c['batch_size']}: metric learning "
            "needs negatives",
        )
    _number(c, "noise_rate", low=0.0, high=1.0, high_open=True)
    _number(c, "lr", low=0.0, low_open=True)
    if c["backbone_lr"] is not None:
        _number(c, "backbone_lr", low=0.0, low_open=True)
    _number(c, "weight_decay", low=0.0)
    _number(c, "step_gamma", low=0.0, high=1.0, low_open=True)
    if c["grad_clip"] is not None:
        _number(c, "grad_clip", low=0.0, low_open=True)
    if c["val_fraction"] is not None:
        _number(c, "val_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    elif c["val_fold"]:
        raise ConfigError("val_fold", c["val_fold"], "needs val_fraction (the fold's size)")
    for key in ("pretrained", "weights"):
        if c[key] and not has_pretrained(c["model"]):
            raise ConfigError(
                key,
                c[key],
                f"ImageNet weights exist for {', '.join(PRETRAINED)} and timm:<name>, "
                f"not {c['model']}",
            )
    if c["weights"] and c["pretrained"]:
        raise ConfigError("weights", c["weights"], "replaces pretrained weights: set one of them")
    if c["init_from"] and (c["weights"] or c["pretrained"]):
        raise ConfigError(
            "init_from", c["init_from"], "brings its own weights: unset pretrained and weights"
        )
    if not isinstance(c["loss_kwargs"], dict):
        raise ConfigError("loss_kwargs", c["loss_kwargs"], 'must be a dict such as {"k": 4}')
    try:
        build(c["loss"], **c["loss_kwargs"])
    except InvalidValue as error:  # one hyperparameter: say which and what it allows
        raise ConfigError(
            "loss_kwargs", c["loss_kwargs"], f"{error.name} {error.allowed}"
        ) from None
    except (TypeError, ValueError) as error:
        raise ConfigError("loss_kwargs", c["loss_kwargs"], str(error)) from None
    return config


def check_resume(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The stored config with the changes ``given`` may make on resume (``RESUMABLE_CHANGES``).

    Any other differing key raises ``ConfigError``: a resumed run must stay the same experiment.
    """
    merged = dict(stored)
    for key, value in given.items():
        if key in RECORDED_KEYS or stored.get(key) == value:
            continue
        if key in RESUMABLE_CHANGES:
            merged[key] = value
        elif key in ("image_size", "in_channels") and value is None:
            continue  # "from the dataset": the stored value is what the dataset gave
        else:
            raise ConfigError(
                key,
                value,
                f"the run being resumed has {key}={stored.get(key)!r}; only "
                f"{', '.join(RESUMABLE_CHANGES)} may change on resume (start a new run instead)",
            )
    return merged


def _check_keys(config: dict[str, Any]) -> None:
    unknown = [key for key in config if key not in BASE_CONFIG and key not in RECORDED_KEYS]
    if unknown:
        raise ConfigError(
            unknown[0], config[unknown[0]], f"unknown key; known keys: {', '.join(BASE_CONFIG)}"
        )


def _choice(config: dict[str, Any], key: str, allowed) -> None:
    check_choice(key, config[key], allowed, error=ConfigError)


def _integer(config: dict[str, Any], key: str, minimum: int) -> None:
    check_number(key, config[key], minimum, integer=True, error=ConfigError)


def _number(config: dict[str, Any], key: str, low: float | None = None, **bounds) -> None:
    check_number(key, config[key], low, error=ConfigError, **bounds)


def _device_name(name: str) -> None:
    import torch

    if name == "auto":
        return
    try:
        torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError("device", name, "choose auto, cpu, cuda, cuda:<index> or mps") from None
