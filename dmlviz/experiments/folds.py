"""Cross-validation on the train split: the config every trial starts from, its folds, and a
fold run's score (MAP@R on the validation classes it never saw). See ``dmlviz.experiments.tune``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dmlviz.registry import loss_entry
from dmlviz.runs import Run
from dmlviz.validate import check_number

MIN_VAL_CLASSES = 2  # MAP@R over a single class is always 1: hold out at least two
MAX_FOLDS = 4  # as Musgrave et al.: four class-disjoint folds of the train classes


def default_val_fraction(
    dataset: str,
    root: str | None = None,
    split_seed: int = 0,
    protocol: str | None = None,
    test_root: str | None = None,
) -> float:
    """A validation share holding 20 % of the train classes, and at least two of them."""
    classes = train_classes(dataset, root, split_seed, protocol, test_root=test_root)
    if classes < MIN_VAL_CLASSES + 2:
        raise ValueError(
            f"{dataset} has {classes} train classes: too few to hold out {MIN_VAL_CLASSES} "
            "for validation and still train"
        )
    return max(MIN_VAL_CLASSES, round(0.2 * classes)) / classes


def fold_count(
    dataset: str,
    val_fraction: float,
    root: str | None = None,
    split_seed: int = 0,
    protocol: str | None = None,
    test_root: str | None = None,
) -> int:
    """How many disjoint validation folds of ``val_fraction`` the train split holds (the train
    split of ``root`` alone when ``test_root`` holds the test classes)."""
    from dmlviz.data.load import validation_folds

    return validation_folds(dataset, val_fraction, root, protocol, split_seed, test_root=test_root)


def train_classes(
    dataset: str,
    root: str | None,
    split_seed: int,
    protocol: str | None,
    val_fraction: float | None = None,
    test_root: str | None = None,
) -> int:
    """How many classes the train split holds (less a validation fold with ``val_fraction``)."""
    from dmlviz.data import load_dataset

    extra = {"test_root": test_root} if test_root is not None else {}
    train = load_dataset(dataset, root=root, split="train", seed=split_seed, protocol=protocol,
                         val_fraction=val_fraction, **extra)  # fmt: skip
    return train.num_classes


def base_config(
    dataset: str,
    loss: str,
    epochs: int | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    noise_rate: float = 0.0,
    root: str | None = None,
    protocol: str | None = None,
    test_root: str | None = None,
) -> dict[str, Any]:
    """The training config every trial starts from: the dataset's defaults and the loss's paper
    defaults, with ``val_fraction`` set (a fold's classes leave the train split) and a batch that
    fits the remaining train classes (``m_per_class`` kept, fewer classes per batch if needed).
    ``protocol`` None is the dataset's default; ``test_root`` a second tree that tests (the
    folds are then drawn from ``root``'s classes, all of which train)."""
    from dmlviz.data import PROTOCOLS
    from dmlviz.train import default_config
    from dmlviz.train.config import validate_config

    loss_entry(loss)  # an unknown loss: InvalidValue naming the choices
    config = default_config(dataset, loss, presets="paper")
    # Named, so the preset records the split it was tuned on: None means the dataset's first.
    config["protocol"] = protocol or config["protocol"] or PROTOCOLS[dataset][0]
    if val_fraction is None:
        val_fraction = default_val_fraction(
            dataset, root, config["split_seed"], config["protocol"], test_root
        )
    check_number("val_fraction", val_fraction, 0, 1, low_open=True, high_open=True)
    config.update(
        val_fraction=float(val_fraction),
        val_fold=0,
        seed=seed,
        noise_rate=float(noise_rate),
        noise_seed=seed,
        eval_every=0,  # trials are scored on validation below; the test split is never touched
        replay_every=0,  # nor replayed: a trial's fold runs are scored once, at the end
        tensorboard=False,
        preset_source="user settings",
    )
    if epochs is not None:
        config["epochs"] = epochs
    if root is not None:
        config["dataset_root"] = root
    if test_root is not None:
        config["test_root"] = test_root
    classes = train_classes(
        dataset, root, config["split_seed"], config["protocol"], val_fraction, test_root
    )
    if config["batch_size"] // config["m_per_class"] > classes:
        config["batch_size"] = classes * config["m_per_class"]
    return validate_config(config)  # a bad setting fails here, before a study is created


def fold_config(config: dict[str, Any], fold: int) -> dict[str, Any]:
    """``config`` for cross-validation fold ``fold``: that fold held out, seeds shifted by it (so
    a trial's score averages over initialisations too, and noisy labels when there are any)."""
    return {
        **config,
        "val_fold": fold,
        "seed": config["seed"] + fold,
        "noise_seed": config["noise_seed"] + fold,
    }


def map_at_r(run: Run, split: str = "val") -> float:
    """MAP@R of a run's model on its ``split`` (default: its validation classes), each image
    querying all the others of the split, by clean labels; embedded on the device the run
    trained on (its config's ``device``)."""
    import numpy as np

    from dmlviz.evaluate import retrieval_metrics
    from dmlviz.train import compute_embeddings
    from dmlviz.train.device import pick_device

    dataset = run.dataset(split)
    device = pick_device(run.config.get("device"))
    embeddings = compute_embeddings(run.load_model(device), dataset, device, batch_size=512)
    return float(
        retrieval_metrics(embeddings, np.asarray(dataset.labels), clustering="off").metrics["map@r"]
    )


def cross_validate(
    config: dict[str, Any],
    folds: int,
    out: str | Path,
    on_fold: Callable[[int, float, list[float]], None] | None = None,
) -> list[float]:
    """Train ``config`` on each of the first ``folds`` folds (runs ``<out>/fold-<f>``, replaced if
    present) and return each fold's validation MAP@R. ``on_fold(fold, score, scores so far)`` is
    called after each fold; it may raise to stop early (the pruner does)."""
    from dmlviz.train import train

    scores: list[float] = []
    for fold in range(folds):
        folder = Path(out) / f"fold-{fold}"
        shutil.rmtree(folder, ignore_errors=True)  # an interrupted attempt: train it afresh
        run = train({**fold_config(config, fold), "name": folder.name}, folder, progress=False)
        scores.append(map_at_r(run))
        if on_fold is not None:
            on_fold(fold, scores[-1], list(scores))
    return scores
