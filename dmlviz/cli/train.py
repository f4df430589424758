"""``dmlviz train``: train one run, then embed and evaluate it so ``dmlviz runs`` shows its metrics.

Every option is a key of the run's config.json (docs/run-format.md). Settings come from, in
increasing priority: the dataset's defaults, the ``--config`` file (YAML or JSON, config keys),
the command-line flags. Loss hyperparameters go in one JSON object: ``--loss-kwargs '{"k": 4}'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from dmlviz.registry import backbone_help, loss_help


def _json(text: str) -> Any:
    """``--loss-kwargs``'s value parsed as JSON (argparse names the option in the error)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid JSON ({error.msg} at character {error.pos + 1}); give one "
            """JSON object in single quotes, e.g. '{"k": 4, "eps": 0.05}'"""
        ) from None


# (flag, config key, argparse keyword arguments); booleans get --flag / --no-flag.
OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "--dataset",
        "dataset",
        {"help": "digits, omniglot, cub200, cars196, sop, inshop, folder or csv"},
    ),
    (
        "--dataset-root",
        "dataset_root",
        {
            "metavar": "DIR",
            "help": "where the dataset's files are; folder: <class>/<image>, or train/ and test/ "
            "(optionally val/; query/ and gallery/ instead of test/) of <class>/<image> used as "
            "given; csv: the folder of df.csv (Open Metric Learning's table: label, path, split, "
            "is_query, is_gallery [, category, x_1, x_2, y_1, y_2], paths relative to it) or the "
            "CSV file itself",
        },
    ),
    (
        "--test-root",
        "test_root",
        {
            "metavar": "DIR",
            "help": "folder, omniglot: test on the classes of this tree and train on all of "
            "--dataset-root's (e.g. omniglot's images_evaluation); classes are matched by name",
        },
    ),
    (
        "--protocol",
        "protocol",
        {
            "help": "split protocol (digits: samples, the default: half of every digit for training and half for test; classes: train on 0-4, test on 5-9)"
        },
    ),
    ("--image-size", "image_size", {"type": int, "help": "side in px of the model's input"}),
    ("--split-seed", "split_seed", {"type": int, "help": "seed of the class split"}),
    ("--val-fraction", "val_fraction", {"type": float, "help": "train classes held out as val"}),
    ("--val-fold", "val_fold", {"type": int, "help": "which disjoint val fold to hold out (0..)"}),
    (
        "--augment",
        "augment",
        {"action": argparse.BooleanOptionalAction, "help": "augment train images"},
    ),
    ("--num-workers", "num_workers", {"type": int, "help": "data-loading processes"}),
    (
        "--model",
        "model",
        {"help": backbone_help()},
    ),
    ("--embedding-dim", "embedding_dim", {"type": int, "help": "length of the embeddings"}),
    ("--pooling", "pooling", {"help": "gem, avg or max (convolutional models)"}),
    (
        "--freeze-bn",
        "freeze_bn",
        {"action": argparse.BooleanOptionalAction, "help": "keep BatchNorm fixed"},
    ),
    (
        "--layer-norm",
        "layer_norm",
        {"action": argparse.BooleanOptionalAction, "help": "LayerNorm in the head"},
    ),
    (
        "--pretrained",
        "pretrained",
        {
            "action": argparse.BooleanOptionalAction,
            "help": "start from ImageNet weights: torchvision's for resnet18/50, timm's for "
            "timm:<name>; read from the local cache only, never downloaded",
        },
    ),
    (
        "--weights",
        "weights",
        {"metavar": "FILE", "help": "start the backbone from a .safetensors or .pth state dict"},
    ),
    (
        "--init-from",
        "init_from",
        {"metavar": "RUN", "help": "start from a finished run's backbone and head (fine-tune)"},
    ),
    (
        "--projector-dim",
        "projector_dim",
        {"type": int, "help": "a training-only linear projector of this size for the loss"},
    ),
    ("--loss", "loss", {"help": loss_help()}),
    (
        "--loss-kwargs",
        "loss_kwargs",
        {
            "type": _json,
            "metavar": "JSON",
            "help": "loss hyperparameters as one JSON object, e.g. '{\"k\": 4}'",
        },
    ),
    (
        "--noise",
        "noise_rate",
        {"type": float, "metavar": "RATE", "help": "share of train labels to corrupt, in [0, 1)"},
    ),
    ("--noise-kind", "noise_kind", {"help": "symmetric, pair or nearest_class"}),
    ("--noise-seed", "noise_seed", {"type": int, "help": "seed of the label noise"}),
    ("--seed", "seed", {"type": int, "help": "seed of weights and batches"}),
    ("--epochs", "epochs", {"type": int, "help": "number of epochs"}),
    ("--batch-size", "batch_size", {"type": int, "help": "images per optimiser step"}),
    ("--m-per-class", "m_per_class", {"type": int, "help": "images of each class in a batch"}),
    ("--batches-per-epoch", "batches_per_epoch", {"type": int, "help": "batches per epoch"}),
    ("--optimizer", "optimizer", {"help": "adamw or sgd"}),
    ("--lr", "lr", {"type": float, "help": "learning rate of the embedding head"}),
    (
        "--backbone-lr",
        "backbone_lr",
        {"type": float, "help": "learning rate of the backbone (default: --lr)"},
    ),
    ("--weight-decay", "weight_decay", {"type": float, "help": "weight decay"}),
    ("--schedule", "schedule", {"help": "cosine, step or constant"}),
    ("--step-size", "step_size", {"type": int, "help": "epochs between decays (--schedule step)"}),
    ("--step-gamma", "step_gamma", {"type": float, "help": "decay factor (--schedule step)"}),
    ("--grad-clip", "grad_clip", {"type": float, "help": "max gradient norm"}),
    ("--device", "device", {"help": "auto, cpu, cuda, cuda:N or mps (default auto)"}),
    ("--num-threads", "num_threads", {"type": int, "help": "CPU threads for torch"}),
    ("--amp", "amp", {"help": "CUDA mixed precision: auto, bf16, fp16 or none"}),
    (
        "--compile",
        "compile",
        {"action": argparse.BooleanOptionalAction, "help": "torch.compile the model"},
    ),
    ("--eval-every", "eval_every", {"type": int, "help": "epochs between evaluations (0: never)"}),
    (
        "--replay-every",
        "replay_every",
        {
            "type": int,
            "help": "epochs between snapshots of the probe set for the replay (0: never)",
        },
    ),
    (
        "--tensorboard",
        "tensorboard",
        {"action": argparse.BooleanOptionalAction, "help": "TensorBoard scalars"},
    ),
    ("--name", "name", {"help": "the run's name (default: the --out folder's name)"}),
]
FLAG_OF = {key: flag for flag, key, _ in OPTIONS}


def register(subparsers) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser(
        "train",
        help="train an embedding model and write a run directory",
        description=(
            "Train one run, then embed and evaluate it. Settings come from the dataset's "
            "defaults, then the --config file (YAML or JSON of config.json keys), then the flags."
        ),
    )
    parser.add_argument(
        "--config", metavar="FILE", type=Path, help="YAML or JSON file of config keys"
    )
    parser.add_argument(
        "--out", metavar="DIR", type=Path, help="the run directory (default runs/<name>)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last epoch"
    )
    parser.add_argument(
        "--preset",
        choices=("tuned", "paper"),
        default="tuned",
        help="loss settings and lr: tuned on validation where shipped (default), or the paper's; "
        "--lr, --loss-kwargs and --config override them",
    )
    parser.add_argument(
        "--recipe",
        metavar="NAME",
        help="a paper's training recipe (docs/recipes.md): "
        "contextual-224-{cub200,cars196,sop}, rll-{cub200,sop,inshop}; "
        "--config and flags override it",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-eval", action="store_true", help="skip embedding and evaluating after training"
    )
    group = parser.add_argument_group("config keys (docs/run-format.md)")
    for flag, key, kwargs in OPTIONS:
        group.add_argument(flag, dest=key, default=None, **kwargs)
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Train, embed and evaluate as the arguments say; returns the exit code."""
    from dmlviz.runs import CONFIG, DiskFullError, Run
    from dmlviz.train import ConfigError, finish_run, train

    file_config = _read_config_file(args.config) if args.config else {}
    flags = {key: getattr(args, key) for _, key, _ in OPTIONS if getattr(args, key) is not None}
    if "loss_kwargs" in flags and not isinstance(flags["loss_kwargs"], dict):
        raise ValueError(f"argument --loss-kwargs: {flags['loss_kwargs']!r} is not a JSON object")
    config = {**file_config, **flags}
    if args.recipe:
        from dmlviz.presets.recipes import recipe_config

        config = _under(recipe_config(args.recipe), config)
    if args.preset == "paper" and not args.resume and config.get("dataset") and config.get("loss"):
        config = _under(_paper_settings(config["dataset"], config["loss"]), config)
    out = args.out or _default_out(config, args.resume)
    if not args.resume:
        for key in ("dataset", "loss"):
            if config.get(key) is None:
                raise ValueError(f"argument {FLAG_OF[key]} is required (or set {key} in --config)")
    try:
        run = train(config or None, out, resume=args.resume, progress=not args.no_progress)
    except (DiskFullError, BrokenPipeError) as error:
        if not (Path(out) / CONFIG).exists():
            raise
        resume = f"dmlviz train --resume --out {shlex.quote(str(out))}"
        if isinstance(error, DiskFullError):
            raise DiskFullError(error.errno, f"{error}, then continue with: {resume}") from None
        epoch = Run.load(out).status().get("epoch")
        print(f"dmlviz train: stdout closed, so training stopped after epoch {epoch} (saved); "
              f"continue with: {resume}", file=sys.stderr)  # fmt: skip
        raise
    except ConfigError as error:
        if error.key in flags:
            where = f"argument {FLAG_OF.get(error.key, error.key)}"
        elif error.key in file_config:
            where = f"{args.config}: key {error.key}"
        else:
            where = f"config key {error.key}"
        raise ValueError(f"{where}: {error.value!r} is invalid: {error.allowed}") from None
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports, embeds and evaluates
    state = run.status().get("state")
    print(f"{run.path}: {state} after epoch {run.status().get('epoch')}")
    if state != "finished":
        print(f"continue with: dmlviz train --resume --out {shlex.quote(str(run.path))}")
        return 1
    if not args.no_eval:
        from dmlviz.cli.evaluate import lone_note

        metrics = finish_run(run, device=run.config.get("device"))
        if metrics:
            print(
                f"test MAP@R {_score(metrics['map@r'])}  R@1 {_score(metrics['recall@1'])}"
                + lone_note(metrics)
            )
        print(
            "embeddings written; see all runs with: "
            f"dmlviz runs {shlex.quote(str(run.path.parent))}"
        )
    return 0


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _under(base: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``config`` over ``base`` (a recipe or preset); ``base``'s preset_source goes when
    ``config`` sets loss settings of its own, so resolve_config labels them user settings."""
    from dmlviz.train.config import USER_SETTINGS

    if any(key in config for key in USER_SETTINGS):
        base = {key: value for key, value in base.items() if key != "preset_source"}
    return {**base, **config}


def _paper_settings(dataset: str, loss: str) -> dict[str, Any]:
    """The config keys the paper-default preset sets (unknown names: train's check says so)."""
    from dmlviz.train import ConfigError, default_config

    try:
        config = default_config(dataset, loss, presets="paper")
    except ConfigError:
        return {}
    return {key: config[key] for key in ("loss_kwargs", "lr", "preset_source")}


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"argument --config: file not found: {path}")
    text = path.read_text(encoding="utf-8-sig")  # editors on Windows may start it with a BOM
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else _load_yaml(text)
    except (json.JSONDecodeError, ValueError) as error:
        raise ValueError(f"argument --config: {path} is not valid JSON/YAML: {error}") from None
    except Exception as error:  # yaml.YAMLError and its subclasses
        raise ValueError(f"argument --config: {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"argument --config: {path} must hold a mapping of config keys")
    return data


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a mapping with the same key twice, naming the key."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            lines: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if isinstance(key, (str, int, float, bool)) and key in lines:
                    raise yaml.constructor.ConstructorError(
                        problem=f"key {key!r} appears twice (lines {lines[key]} and {line}); "
                        "keep one"
                    )
                lines[key] = line
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=UniqueKeyLoader)


def _default_out(config: dict[str, Any], resume: bool) -> Path:
    if resume:
        raise ValueError("argument --out is required with --resume (the run to continue)")
    if config.get("name"):
        return Path("runs") / str(config["name"])
    noise = float(config.get("noise_rate") or 0.0)
    name = f"{config.get('dataset')}-{config.get('loss')}-noise{round(noise * 100)}-seed{config.get('seed', 0)}"
    return Path("runs") / name
