"""Every training setting declared once: the keys of a run's config.json.

Each ``Setting`` holds a key's default, what values it takes (a type and range, or choices), its
help line and command-line flag, and whether a resumed run may change it. From these come
``BASE_CONFIG`` and ``RESUMABLE_CHANGES`` (``dmlviz.train.config``), the per-key checks of
``validate_config`` (``Setting.check``) and the options of ``dmlviz train`` (``Setting.argument``);
``dmlviz sweep`` and ``dmlviz tune`` take their flags of the same settings from here too.

A frozen dataclass rather than a pydantic model: the checks must raise the project's one
message form (``lr=0 is invalid: must be a number in (0.0, inf)``, ``dmlviz.validate``), which a
pydantic ``ValidationError`` would have to be translated back into, and nothing here needs
parsing beyond what ``dmlviz.validate`` does. Like the rest of ``dmlviz.registry`` it imports no
torch.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from dmlviz.registry import LOSSES, backbone_help, names_help
from dmlviz.registry.datasets import DATASETS, TEST_ROOT_DATASETS
from dmlviz.validate import InvalidValue, check_choice, check_flag, check_number

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "none")
POOLINGS = ("gem", "avg", "max")
NOISE_KINDS = ("symmetric", "pair", "nearest_class", "small_cluster")
USER = "user settings"
PRESET_SOURCES = ("tuned on validation", "paper defaults", USER)


class ConfigError(InvalidValue):
    """A bad config value; ``key`` (the argument's ``name``), ``value`` and ``allowed`` say which,
    what and what instead."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(key, value, allowed)
        self.key = key


@dataclass(frozen=True)
class Setting:
    """One config key. ``kind`` is the type its values have (``None``: checked by
    ``validate_config`` itself); ``choices``, or ``low``/``high`` (``low_open``/``high_open``
    exclude an end), narrow it; ``optional``: ``None`` is allowed too. ``help`` is the flag's help
    line, with ``{choices}`` standing for the choices in words. ``flag`` is ``--<key>`` with
    hyphens unless given ("" for none); ``resumable``: a resumed run may change it."""

    key: str
    default: Any
    help: str
    kind: type | None = None
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    flag: str | None = None
    metavar: str | None = None
    resumable: bool = False

    @property
    def cli_flag(self) -> str:
        """The command-line flag ("" when the setting has none)."""
        return f"--{self.key.replace('_', '-')}" if self.flag is None else self.flag

    def help_text(self) -> str:
        """The help line, its ``{choices}`` filled in from ``choices``."""
        return self.help.format(choices=names_help(list(self.choices or ("",))))

    def check(self, value: Any) -> None:
        """Raise ``ConfigError`` (naming the key, the value and what is allowed) unless ``value``
        is one this setting takes."""
        if (value is None and self.optional) or self.kind is None:
            return
        if self.choices is not None:
            check_choice(self.key, value, self.choices, error=ConfigError)
        elif self.kind is bool:
            check_flag(self.key, value, error=ConfigError)
        elif self.kind in (int, float):
            bounds = dict(low_open=self.low_open, high_open=self.high_open)
            check_number(self.key, value, self.low, self.high, integer=self.kind is int,
                         error=ConfigError, **bounds)  # fmt: skip
        elif not isinstance(value, self.kind):
            raise ConfigError(self.key, value, _MUST_BE[self.kind])

    def argument(self) -> tuple[str, dict[str, Any]]:
        """``(flag, keyword arguments)`` for ``argparse``'s ``add_argument``: a ``--flag`` /
        ``--no-flag`` pair for a yes/no setting, the value's type otherwise. The choices are
        listed in the help, not given to argparse: a bad value then gets the config check's
        message, which names the flag the same way for flags, config files and Python callers."""
        kwargs: dict[str, Any] = {"help": self.help_text()}
        if self.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif self.kind is dict:
            kwargs["type"] = parse_json
        elif self.kind in (int, float):
            kwargs["type"] = self.kind
        if self.metavar:
            kwargs["metavar"] = self.metavar
        return self.cli_flag, kwargs


_MUST_BE = {str: "must be a string or None", dict: 'must be a dict such as {"k": 4}'}


def add_option(
    parser: argparse.ArgumentParser | Any,
    key: str,
    *aliases: str,
    help: str | None = None,
    **kwargs: Any,
) -> None:
    """Add setting ``key``'s flag to ``parser`` (or an argument group) as ``dmlviz train`` has it,
    its value stored under ``key``: commands that take a setting take it the same way. ``help``
    replaces the help line (``{help}`` in it stands for the setting's own); ``aliases`` are more
    flags for it; ``kwargs`` add to or override argparse's keyword arguments (default: None)."""
    setting = SETTING[key]
    flag, arguments = setting.argument()
    if help is not None:
        arguments["help"] = help.format(help=arguments["help"])
    parser.add_argument(flag, *aliases, dest=key, **{"default": None, **arguments, **kwargs})


def run_name(
    loss: str,
    noise_rate: float,
    seed: int,
    dataset: str | None = None,
    train_fraction: float = 1.0,
) -> str:
    """A run's folder name, e.g. ``rll-noise20-seed0`` for 20 % noise (``noise12.5`` for 12.5 %),
    ``rll-noise0-train25-seed0`` when it trains on 25 % of its train data, with ``<dataset>-`` in
    front when ``dataset`` is given: a lone run's default folder (a sweep's runs all share its
    dataset)."""
    withheld = f"-train{train_fraction * 100:g}" if train_fraction != 1 else ""
    return (
        f"{dataset + '-' if dataset else ''}{loss}-noise{noise_rate * 100:g}{withheld}-seed{seed}"
    )


def parse_json(text: str) -> Any:
    """A flag's value parsed as JSON (argparse names the option in the error)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid JSON ({error.msg} at character {error.pos + 1}); give one "
            """JSON object in single quotes, e.g. '{"k": 4, "eps": 0.05}'"""
        ) from None


def _text(key: str, help: str, **facts: Any) -> Setting:
    """A setting whose value is a string or None (by default None)."""
    return Setting(key, None, help, kind=str, optional=True, **facts)


def _integer(key: str, default: int | None, help: str, low: int, **facts: Any) -> Setting:
    return Setting(key, default, help, kind=int, low=low, optional=default is None, **facts)


def _flag(key: str, default: bool, help: str, **facts: Any) -> Setting:
    return Setting(key, default, help, kind=bool, **facts)


def _choice(key: str, default: Any, choices: tuple, help: str = "{choices}", **facts) -> Setting:
    return Setting(key, default, help, kind=str, choices=tuple(choices), **facts)


_ROOT_HELP = (
    "where the dataset's files are; folder: <class>/<image>, or train/ and test/ (optionally "
    "val/; query/ and gallery/ instead of test/) of <class>/<image> used as given; csv: the "
    "folder of df.csv (Open Metric Learning's table: label, path, split, is_query, is_gallery "
    "[, category, x_1, x_2, y_1, y_2], paths relative to it) or the CSV file itself"
)
# In the order of config.json. Comments say what a None default means where it is not "unset".
SETTINGS: tuple[Setting, ...] = (
    _text("name", "the run's name (default: the --out folder's name)"),  # None: the folder's
    # data
    _choice("dataset", None, DATASETS),
    _text("dataset_root", _ROOT_HELP, metavar="DIR"),
    _text(
        "test_root",
        f"{', '.join(TEST_ROOT_DATASETS)}: test on the classes of this tree and train on all of "
        "--dataset-root's (e.g. omniglot's images_evaluation); classes are matched by name",
        metavar="DIR",
    ),
    _text(
        "protocol",
        "split protocol (digits: samples, the default: half of every digit for training and half "
        "for test; classes: train on 0-4, test on 5-9)",
    ),
    # None: the dataset's own size (written back once the data is loaded)
    _integer("image_size", None, "side in px of the model's input", 1),
    _integer("split_seed", 0, "seed of the class split", 0),
    Setting(
        "val_fraction",
        None,
        "train classes held out as val",
        kind=float,
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
        optional=True,
    ),  # fmt: skip
    _integer("val_fold", 0, "which disjoint val fold to hold out (0..)", 0),
    # withheld training data: the run's seed draws the kept images (dmlviz.data.load_dataset)
    Setting(
        "train_fraction",
        1.0,
        "share of each train class's images to train on, in (0, 1] (at least --m-per-class of "
        "them; val and test splits keep all theirs)",
        kind=float,
        low=0.0,
        high=1.0,
        low_open=True,
        metavar="F",
    ),  # fmt: skip
    _flag("augment", False, "augment train images"),
    _integer("num_workers", 0, "data-loading processes", 0, resumable=True),
    # model
    Setting("model", "resnet50", backbone_help()),  # dmlviz.models.check_model_name checks it
    _integer("embedding_dim", 128, "length of the embeddings", 1),
    _integer(
        "in_channels",
        None,
        "image channels; None: from the dataset (written back once the data is loaded)",
        1,
        flag="",
    ),
    _choice("pooling", "gem", POOLINGS, "{choices} (convolutional models)"),
    _flag("freeze_bn", False, "keep BatchNorm fixed"),
    _flag("layer_norm", False, "LayerNorm in the head"),
    _flag(
        "pretrained",
        False,
        "start from ImageNet weights: torchvision's for resnet18/50, timm's for timm:<name>; "
        "read from the local cache only, never downloaded",
    ),
    _text("weights", "start the backbone from a .safetensors or .pth state dict", metavar="FILE"),
    _text("init_from", "start from a finished run's backbone and head (fine-tune)", metavar="RUN"),
    # a training-only linear projector the loss sees (contextual R224)
    _integer(
        "projector_dim", None, "a training-only linear projector of this size for the loss", 1
    ),  # fmt: skip
    _text(
        "recipe",
        "the paper recipe the settings came from (docs/recipes.md); set by `dmlviz train --recipe`",
        flag="",
    ),
    # loss
    _choice("loss", None, tuple(LOSSES)),
    # checked against the loss's own hyperparameters by validate_config
    Setting(
        "loss_kwargs",
        {},
        "loss hyperparameters as one JSON object, e.g. '{{\"k\": 4}}'",
        kind=dict,
        metavar="JSON",
    ),  # fmt: skip
    _choice(
        "preset_source",
        "paper defaults",
        PRESET_SOURCES,
        "{choices}: where `lr` and `loss_kwargs` came from; set by `--preset` and by giving "
        "either yourself",
        flag="",
    ),
    # label noise on the train split
    _choice("noise_kind", "symmetric", NOISE_KINDS),
    Setting(
        "noise_rate",
        0.0,
        "share of train labels to corrupt, in [0, 1)",
        kind=float,
        low=0.0,
        high=1.0,
        high_open=True,
        flag="--noise",
        metavar="RATE",
    ),  # fmt: skip
    _integer("noise_seed", 0, "seed of the label noise", 0),
    # optimisation
    _integer("seed", 0, "seed of weights and batches", 0),
    _integer("epochs", 20, "number of epochs", 1, resumable=True),
    _integer("batch_size", 64, "images per optimiser step", 1),
    _integer("m_per_class", 4, "images of each class in a batch", 1),
    # None: the sampler's default (about one pass over the data)
    _integer("batches_per_epoch", None, "batches per epoch", 1),
    _choice("optimizer", "adamw", OPTIMIZERS),
    Setting(
        "lr", 1e-3, "learning rate of the embedding head", kind=float, low=0.0, low_open=True
    ),  # fmt: skip
    Setting(
        "backbone_lr",
        None,
        "learning rate of the backbone (default: --lr)",
        kind=float,
        low=0.0,
        low_open=True,
        optional=True,
    ),  # fmt: skip
    Setting("weight_decay", 1e-4, "weight decay", kind=float, low=0.0),
    # per batch; "step" multiplies by step_gamma every step_size epochs
    _choice("schedule", "cosine", SCHEDULES),
    _integer("step_size", 10, "epochs between decays (--schedule step)", 1),
    Setting(
        "step_gamma",
        0.1,
        "decay factor (--schedule step)",
        kind=float,
        low=0.0,
        high=1.0,
        low_open=True,
    ),  # fmt: skip
    Setting(
        "grad_clip", None, "max gradient norm", kind=float, low=0.0, low_open=True, optional=True
    ),  # fmt: skip
    # hardware; device None or "auto": cuda, then mps, then cpu (validate_config checks the name)
    Setting("device", None, "auto, cpu, cuda, cuda:N or mps (default auto)", resumable=True),
    _integer("num_threads", None, "CPU threads for torch", 1, resumable=True),  # None: torch's
    # CUDA only: auto = bf16 where supported, else fp16 with a GradScaler
    _choice("amp", "auto", AMP_MODES, "CUDA mixed precision: {choices}", resumable=True),
    _flag("compile", False, "torch.compile the model", resumable=True),
    # logging; 0: never
    _integer("eval_every", 1, "epochs between evaluations (0: never)", 0, resumable=True),
    _integer(
        "replay_every", 5, "epochs between snapshots of the probe set for the replay (0: never)", 0
    ),  # fmt: skip
    # written only when the tensorboard package is installed
    _flag("tensorboard", True, "TensorBoard scalars", resumable=True),
)
SETTING: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}
