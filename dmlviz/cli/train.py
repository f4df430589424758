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

from dmlviz.registry import names_help
from dmlviz.registry.settings import SETTINGS, add_option, run_name

# (flag, config key, argparse keyword arguments) of every setting with a flag, as
# dmlviz.registry.settings declares them; booleans get --flag / --no-flag.
OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (setting.cli_flag, setting.key, setting.argument()[1])
    for setting in SETTINGS
    if setting.cli_flag
]
FLAG_OF = {key: flag for flag, key, _ in OPTIONS}


def register(subparsers) -> None:
    """Add the ``train`` command."""
    from dmlviz.presets.recipes import RECIPES

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
    add_preset(
        parser,
        "loss settings and lr: tuned on validation where shipped (default), or the paper's; "
        "--lr, --loss-kwargs and --config override them",
    )
    parser.add_argument(
        "--recipe",
        metavar="NAME",
        help=f"a paper's training recipe (docs/recipes.md): {names_help(list(RECIPES))}; "
        "--config and flags override it",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-eval", action="store_true", help="skip embedding and evaluating after training"
    )
    group = parser.add_argument_group("config keys (docs/run-format.md)")
    for _, key, _ in OPTIONS:
        add_option(group, key)
    parser.set_defaults(func=run_train)


def add_preset(parser: argparse.ArgumentParser, help: str) -> None:
    """``--preset``: which presets give the loss settings, as train, sweep and the noise lab
    take it (``dmlviz.presets.KINDS``, the first the default)."""
    from dmlviz.presets import KINDS

    parser.add_argument("--preset", choices=KINDS, default=KINDS[0], help=help)


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
    """``runs/<name>``, or ``runs/`` and the run's name from its dataset, loss, noise, train
    fraction and seed."""
    if resume:
        raise ValueError("argument --out is required with --resume (the run to continue)")
    if config.get("name"):
        return Path("runs") / str(config["name"])
    noise = float(config.get("noise_rate") or 0.0)
    fraction = float(config.get("train_fraction") or 1.0)
    return Path("runs") / run_name(config.get("loss"), noise, config.get("seed", 0),
                                   dataset=config.get("dataset"), train_fraction=fraction)  # fmt: skip
