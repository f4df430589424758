"""``dmlviz embed --dataset D --model M --out DIR``: a model as it starts (ImageNet, a weights
file, a run) embedded without training and written as a run directory, a zero-shot baseline to
compare trained runs against. ``dmlviz embed RUN`` (``dmlviz.cli.runs``) re-embeds a run."""

from __future__ import annotations

import argparse

from dmlviz.cli.train import FLAG_OF, OPTIONS

KEYS = (
    "dataset", "dataset_root", "protocol", "image_size", "split_seed", "num_workers", "model",
    "embedding_dim", "pooling", "layer_norm", "pretrained", "weights", "init_from", "name",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The config-key flags of a zero-shot baseline (``--dataset``, ``--model``, ...)."""
    group = parser.add_argument_group(
        "zero-shot baseline (with --dataset, instead of RUN)",
        "embed and evaluate every split with the model as it starts; without --embedding-dim "
        "the embeddings are the backbone's own features",
    )
    group.add_argument("--out", metavar="DIR", help="the baseline's run directory")
    for flag, key, kwargs in OPTIONS:
        if key in KEYS:
            group.add_argument(flag, dest=key, default=None, **kwargs)


def run(args: argparse.Namespace) -> int:
    """Write the zero-shot baseline the arguments describe; returns the exit code."""
    from dmlviz.train import ConfigError
    from dmlviz.train.embed import embed_untrained

    config = {key: getattr(args, key) for key in KEYS if getattr(args, key) is not None}
    if args.out is None:
        raise ValueError("argument --out is required with --dataset (the baseline's run folder)")
    try:
        baseline, metrics = embed_untrained(config, args.out, device=args.device)
    except ConfigError as error:
        where = f"argument {FLAG_OF.get(error.key, error.key)}"
        raise ValueError(f"{where}: {error.value!r} is invalid: {error.allowed}") from None
    if metrics:
        print(f"test MAP@R {metrics['map@r']:.4f}  R@1 {metrics['recall@1']:.4f}")
    print(f"{baseline.path}: {baseline.config['weights_source']}")
    print(f"compare it with trained runs: dmlviz dashboard {baseline.path.parent}")
    return 0
