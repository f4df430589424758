"""``dmlviz tune``: search a loss's hyperparameters on validation classes and record a preset."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmlviz.cli.sweep import add_data_roots, add_executor, check_address
from dmlviz.registry.settings import add_option


def register(subparsers) -> None:
    """Add the ``tune`` command."""
    parser = subparsers.add_parser(
        "tune",
        help="search a loss's hyperparameters by cross-validation on train classes (Optuna)",
        description=(
            "Search the learning rate and the loss's hyperparameters with Optuna (TPE, seeded), "
            "starting from the loss's paper defaults. Each trial is scored by its mean MAP@R over "
            "validation folds of the train split (class-disjoint folds of the train classes; "
            "under digits' samples protocol, folds of each class's train images), training on "
            "the rest; the test split is never read. Weak trials stop early. The paper defaults "
            "and the 3 best trials are then retrained with fresh seeds and the best mean wins. "
            "The study is stored in <out>/study.db (<out>/study.journal with --executor ray, or "
            "--storage): run the same command again to resume it. The chosen setting goes to "
            "<out>/preset.json and, with --write-preset, into the package's tuned presets."
        ),
    )
    add_option(parser, "dataset", required=True)
    add_option(parser, "loss", required=True)
    parser.add_argument("--budget", type=int, default=20, help="trials in total (default 20)")
    parser.add_argument(
        "--folds",
        type=int,
        help="validation folds per trial (default: as many as fit, at most 4)",
    )
    add_option(parser, "epochs", help="epochs per trial (default: the dataset's)")
    add_option(
        parser,
        "val_fraction",
        help="share of train classes in each fold (default 20 %%, at least 2 classes)",
    )
    add_option(parser, "seed", default=0, help="seed of the sampler and the trials")
    add_option(parser, "noise_rate", default=0.0, help="tune under this label noise")
    add_data_roots(parser)
    add_option(parser, "protocol")
    parser.add_argument("--out", type=Path, help="the study folder (default runs/tune-<D>-<L>)")
    parser.add_argument(
        "--write-preset",
        action="store_true",
        help="also store the best setting in dmlviz/presets/<dataset>.json",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="where the study lives: journal:PATH (a file on a shared filesystem) or an RDB URL "
        "(postgresql://user:password@host/db); tune workers on several machines given the same "
        "--storage, each with its own --out, search one study together (default: in --out)",
    )
    add_executor(parser, "trial")
    parser.set_defaults(func=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    """Run or resume the search; prints the best setting."""
    check_address(args)
    from dmlviz.experiments.runner import install_sigterm_handler
    from dmlviz.experiments.tune import tune

    install_sigterm_handler()  # SIGTERM stops the search as Ctrl-C does; a rerun resumes it
    out = args.out or Path("runs") / f"tune-{args.dataset}-{args.loss}"
    entry = tune(
        args.dataset,
        args.loss,
        out,
        budget=args.budget,
        folds=args.folds,
        epochs=args.epochs,
        val_fraction=args.val_fraction,
        seed=args.seed,
        noise_rate=args.noise_rate,
        root=args.dataset_root,
        test_root=args.test_root,
        protocol=args.protocol,
        write_to_package=args.write_preset,
        log=lambda message: print(message, flush=True),
        storage=args.storage,
        executor=args.executor or "local",
        address=args.address,
    )
    if entry:  # empty while other workers of a shared study still search
        print(f"preset: {out / 'preset.json'}")
    return 0
