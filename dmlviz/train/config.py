"""Training configuration: one flat dict (the run's config.json), its defaults and its validation.

``default_config(dataset, loss)`` gives every key; ``resolve_config`` fills a partial config from
those defaults and validates it once, scikit-learn style: a ``ConfigError`` names the key, the
value it got and what is allowed.
"""

from __future__ import annotations

import copy
from typing import Any

from dmlviz.registry import LOSSES
from dmlviz.registry.datasets import DATASET_ENTRIES, TEST_ROOT_DATASETS
from dmlviz.registry.settings import (
    AMP_MODES,
    NOISE_KINDS,
    OPTIMIZERS,
    POOLINGS,
    PRESET_SOURCES,
    SCHEDULES,
    SETTINGS,
    USER,
    ConfigError,
)
from dmlviz.validate import InvalidValue

__all__ = [
    "AMP_MODES",
    "BASE_CONFIG",
    "DATASET_DEFAULTS",
    "INHERITED_KEYS",
    "NOISE_KINDS",
    "OPTIMIZERS",
    "POOLINGS",
    "PRESET_SOURCES",
    "RECORDED_KEYS",
    "RESUMABLE_CHANGES",
    "SCHEDULES",
    "USER",
    "USER_SETTINGS",
    "ConfigError",
    "check_resume",
    "default_config",
    "resolve_config",
    "validate_config",
]

USER_SETTINGS = ("loss_kwargs", "lr")  # a config setting either is labelled USER

# What the user may set (dmlviz.registry.settings declares each key). Per-dataset values
# (DATASET_DEFAULTS, from dmlviz.registry.datasets) override these.
BASE_CONFIG: dict[str, Any] = {s.key: copy.deepcopy(s.default) for s in SETTINGS}
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {n: e.defaults for n, e in DATASET_ENTRIES.items()}

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
RESUMABLE_CHANGES: tuple[str, ...] = tuple(s.key for s in SETTINGS if s.resumable)


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
    from dmlviz.presets import KINDS, apply_preset

    if presets not in KINDS:
        raise ConfigError("presets", presets, f"choose one of {', '.join(KINDS)}")
    if dataset in DATASET_ENTRIES and loss in LOSSES:  # unknown names: validate_config says which
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
    """Check every value of a full config; returns it unchanged or raises ``ConfigError``.

    Each key's own type, range or choices are checked as ``dmlviz.registry.settings`` declares
    them, in config order; then the checks that involve several keys or the library."""
    _check_keys(config)
    missing = [key for key in BASE_CONFIG if key not in config]
    if missing:
        raise ConfigError(missing[0], None, "is missing (start from default_config)")
    for setting in SETTINGS:
        setting.check(config[setting.key])
    _check_model(config["model"])
    if config["device"] is not None:
        _device_name(config["device"])
    _check_data(config)
    _check_batches(config)
    _check_weights(config)
    _check_loss(config["loss"], config["loss_kwargs"])
    return config


def _check_model(model: str) -> None:
    from dmlviz.models import check_model_name

    try:
        check_model_name(model)
    except InvalidValue as error:
        raise ConfigError("model", model, error.allowed) from None
    except ValueError as error:  # a timm name timm does not know: its message says why
        raise ConfigError("model", model, str(error)) from None


def _check_data(c: dict[str, Any]) -> None:
    """The test tree and validation fold against the dataset and validation share."""
    if c["test_root"] is not None and c["dataset"] not in TEST_ROOT_DATASETS:
        raise ConfigError(
            "test_root",
            c["test_root"],
            f"only {', '.join(TEST_ROOT_DATASETS)} take a second tree to test on, not "
            f"{c['dataset']}",
        )
    if c["val_fraction"] is None and c["val_fold"]:
        raise ConfigError("val_fold", c["val_fold"], "needs val_fraction (the fold's size)")


def _check_batches(c: dict[str, Any]) -> None:
    """A batch of ``m_per_class`` images of each of at least two classes."""
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


def _check_weights(c: dict[str, Any]) -> None:
    """At most one source of starting weights, and ImageNet weights only where they exist."""
    from dmlviz.models import PRETRAINED, has_pretrained

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


def _check_loss(loss: str, loss_kwargs: dict[str, Any]) -> None:
    """The loss builds with these hyperparameters."""
    from dmlviz.losses import build

    try:
        build(loss, **loss_kwargs)
    except InvalidValue as error:  # one hyperparameter: say which and what it allows
        raise ConfigError("loss_kwargs", loss_kwargs, f"{error.name} {error.allowed}") from None
    except (TypeError, ValueError) as error:
        raise ConfigError("loss_kwargs", loss_kwargs, str(error)) from None


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


def _device_name(name: str) -> None:
    import torch

    if name == "auto":
        return
    try:
        torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError("device", name, "choose auto, cpu, cuda, cuda:<index> or mps") from None
