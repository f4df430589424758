"""``dmlviz sweep``: train every loss x noise rate x seed on the same splits and noisy labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmlviz.cli.train import add_preset
from dmlviz.experiments.spec import DEMO_LOSSES
from dmlviz.registry.settings import SETTING, add_option


def register(subparsers) -> None:
    """Add the ``sweep`` command."""
    parser = subparsers.add_parser(
        "sweep",
        help="train and compare losses across label-noise rates and seeds",
        description=(
            "Train every combination of --losses, --noise, --train-fraction and --seeds on "
            "identical splits and identical noisy labels per (rate, fraction, seed), evaluate each run, compute its maps, and "
            "write runs.csv, summary.csv and summary.md into --out. Run it again to resume: "
            "finished runs are skipped, interrupted ones continue from their last epoch."
        ),
    )
    add_option(parser, "dataset", help="{help} (required without --spec)")
    losses = ",".join(DEMO_LOSSES)
    parser.add_argument(
        "--losses", default=losses, help=f"comma-separated losses (default {losses})"
    )
    parser.add_argument(
        "--noise", default="0", metavar="RATES", help="comma-separated noise rates in [0, 1)"
    )
    add_option(parser, "noise_kind", default=SETTING["noise_kind"].default)
    parser.add_argument(
        "--train-fraction",
        dest="train_fractions",
        default="1",
        metavar="FRACTIONS",
        help="comma-separated shares of each train class's images to train on, in (0, 1] "
        "(default 1: all; 0.25 keeps a quarter, inside the 0.5 one of the same seed)",
    )
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    add_option(parser, "epochs", help="epochs per run (default: the dataset's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    parser.add_argument("--no-umap", action="store_true", help="PCA maps only (no UMAP)")
    add_data_roots(parser)
    add_option(parser, "protocol")
    add_preset(
        parser, "each loss's settings: tuned on validation where shipped (default), or the paper's"
    )
    parser.add_argument(
        "--spec",
        type=Path,
        metavar="FILE",
        help="a JSON sweep spec (sweep.json's keys, or a noise-lab experiment.json) instead of "
        "the options above",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="the sweep folder (with --executor ray on a cluster: on a filesystem every node "
        "mounts at the same path)",
    )
    add_executor(parser, "run")
    parser.set_defaults(func=run_sweep_command)


def add_executor(parser: argparse.ArgumentParser, unit: str) -> None:
    """``--executor`` and ``--address``, as sweep and tune take them (``unit``: what one Ray task
    trains, "run" or "trial")."""
    from dmlviz.experiments.spec import EXECUTORS

    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        help=f"local: processes on this machine (default); ray: each {unit} a Ray task with the "
        "CPUs and GPU its config asks for, writing into --out directly, so --out must be on a "
        "filesystem every node shares (needs Ray: pip install -e '.[cluster]'; see docs/cluster.md)",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster's head, HOST:6379 (default: $RAY_ADDRESS, else a local Ray on "
        "this machine); only with --executor ray",
    )


def check_address(args: argparse.Namespace) -> None:
    """Refuse an ``--address`` whose port does not answer before the training code loads (the
    sweep or study checks it again, with ``$RAY_ADDRESS``, before writing anything)."""
    if args.executor == "ray" and args.address:
        from dmlviz.experiments.ray_executor import check_reachable

        check_reachable(args.address)


def add_data_roots(parser: argparse.ArgumentParser) -> None:
    """``--dataset-root`` (``--root`` kept as an alias) and ``--test-root``, as sweep and tune
    take them."""
    add_option(parser, "dataset_root", "--root")
    add_option(parser, "test_root")


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run the sweep the arguments describe; exit code 1 when a run failed."""
    check_address(args)
    from dmlviz.experiments.runner import install_sigterm_handler, run_sweep
    from dmlviz.experiments.spec import SweepSpec, read_spec_file

    if args.spec is not None:
        spec = read_spec_file(args.spec)
        if args.executor is not None or args.address is not None:  # the command says how to run
            spec.executor, spec.address = args.executor or spec.executor, args.address
    elif args.dataset is None:
        raise ValueError("argument --dataset is required (or give a --spec file)")
    else:
        spec = SweepSpec(
            dataset=args.dataset,
            losses=parse_list(args.losses, "--losses", str),
            noise_rates=parse_list(args.noise, "--noise", float),
            seeds=parse_list(args.seeds, "--seeds", int),
            train_fractions=parse_list(args.train_fractions, "--train-fraction", float),
            noise_kind=args.noise_kind,
            epochs=args.epochs,
            jobs=args.jobs,
            umap=not args.no_umap,
            dataset_root=args.dataset_root,
            test_root=args.test_root,
            protocol=args.protocol,
            presets=args.preset,
            executor=args.executor or "local",
            address=args.address,
        )
    install_sigterm_handler()
    frame = run_sweep(spec, args.out, log=lambda message: print(message, flush=True))
    print((args.out / "summary.md").read_text())
    failed = frame[frame["state"] == "failed"]
    if len(failed):
        print(f"{len(failed)} run(s) failed: {', '.join(failed['name'])}; see progress.jsonl")
        return 1
    return 0


def parse_list(text: str, option: str, kind: type) -> list:
    """Split a comma-separated option value into ``kind`` items; a ``ValueError`` names the
    option and the bad item, or says the list is empty."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"argument {option}: the list is empty")
    values = []
    for item in items:
        try:
            values.append(kind(item))
        except ValueError:
            raise ValueError(
                f"argument {option}: {item!r} is not a{'n integer' if kind is int else ' number'}"
            ) from None
    return values
