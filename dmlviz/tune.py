"""Hyperparameter search for a fair comparison: each loss gets the same budget on a validation split.

``tune(dataset, loss, out)`` runs an Optuna study (TPE, seeded) over the learning rate and the
loss's own hyperparameters. Every trial trains on the train classes minus a held-out set of
validation classes (``val_fraction``; class-disjoint, never the test classes) and is scored by
MAP@R on those validation classes. The study lives in ``<out>/study.db`` (SQLite), so an
interrupted search resumes where it stopped; trial runs are ``<out>/trials/trial-<n>``. The first
trial is always the current preset, so the result says how much tuning gained over it. The best
configuration is written to ``<out>/preset.json`` and, on request, into the package's preset
table (``dmlviz/presets/<dataset>.json``).
"""

from __future__ import annotations

import datetime
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from dmlviz.runs import Run, atomic_write_json

STUDY_DB = "study.db"
PRESET_JSON = "preset.json"
TRIALS_DIR = "trials"
MIN_VAL_CLASSES = 2  # MAP@R over a single class is always 1: hold out at least two
# Protocols whose test split shares the train split's classes (load_dataset's docstring): tuning
# on them would score on test classes, so the search uses the dataset's class-disjoint protocol.
SHARED_CLASS_PROTOCOLS = {("digits", "samples"): "classes"}


def _contextual(trial, config: dict[str, Any]) -> dict[str, Any]:
    # The three weights sum to 1 as in the 256 px recipe (0.4 / 0.5 / 0.1); under AdamW only
    # their ratios matter, the learning rate sets the step.
    ctx_weight = trial.suggest_float("ctx_weight", 0.05, 0.95)
    reg_weight = trial.suggest_float("reg_weight", 0.0, 0.3)
    return {
        "k": trial.suggest_int("k", 2, max(2, config["m_per_class"])),
        "eps": trial.suggest_float("eps", 0.005, 0.5, log=True),
        "ctx_weight": ctx_weight,
        "contrastive_weight": max(0.0, 1.0 - ctx_weight - reg_weight),
        "reg_weight": reg_weight,
    }


def _rll(trial, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "margin": trial.suggest_float("margin", 0.1, 0.8),
        "alpha": trial.suggest_float("alpha", 0.8, 1.6),
        "tn": trial.suggest_float("tn", 0.0, 20.0),
    }


def _multisimilarity(trial, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "alpha": trial.suggest_float("alpha", 0.5, 10.0, log=True),
        "beta": trial.suggest_float("beta", 10.0, 100.0, log=True),
        "base": trial.suggest_float("base", 0.2, 1.2),
    }


def _contrastive(trial, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "pos_margin": trial.suggest_float("pos_margin", 0.0, 0.6),
        "neg_margin": trial.suggest_float("neg_margin", 0.6, 1.6),
    }


def _triplet(trial, config: dict[str, Any]) -> dict[str, Any]:
    return {"margin": trial.suggest_float("margin", 0.01, 0.5, log=True)}


# Each loss's search space: trial and base config -> loss_kwargs. The learning rate is searched
# for every loss, from a tenth to ten times the dataset's default.
SEARCH_SPACES: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "contextual": _contextual,
    "rll": _rll,
    "multisimilarity": _multisimilarity,
    "contrastive": _contrastive,
    "triplet": _triplet,
}


def suggest(trial, loss: str, config: dict[str, Any]) -> dict[str, Any]:
    """The trial's ``{"lr": ..., "loss_kwargs": {...}}`` for ``loss``: ``config``'s loss settings
    with the searched ones replaced (the learning rate from a tenth to ten times the default)."""
    lr = trial.suggest_float("lr", config["lr"] / 10, config["lr"] * 10, log=True)
    searched = SEARCH_SPACES[loss](trial, config)
    return {"lr": lr, "loss_kwargs": {**config["loss_kwargs"], **searched}}


def _as_params(config: dict[str, Any]) -> dict[str, Any]:
    """The Optuna parameters that reproduce ``config``'s lr and loss settings (for enqueueing)."""
    import optuna

    probe = optuna.trial.FixedTrial({"lr": config["lr"], **config["loss_kwargs"]})
    suggest(probe, config["loss"], config)
    return probe.params


def settings_of(params: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``{"lr", "loss_kwargs"}`` that a trial with Optuna ``params`` trained with."""
    import optuna

    return suggest(optuna.trial.FixedTrial(params), config["loss"], config)


def default_val_fraction(
    dataset: str, root: str | None = None, split_seed: int = 0, protocol: str | None = None
) -> float:
    """A validation share holding 20 % of the train classes, and at least two of them."""
    from dmlviz.data import load_dataset

    classes = load_dataset(
        dataset, root=root, split="train", seed=split_seed, protocol=protocol
    ).num_classes
    if classes < MIN_VAL_CLASSES + 2:
        raise ValueError(
            f"{dataset} has {classes} train classes: too few to hold out {MIN_VAL_CLASSES} "
            "for validation and still train"
        )
    return max(MIN_VAL_CLASSES, round(0.2 * classes)) / classes


def base_config(
    dataset: str,
    loss: str,
    epochs: int | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    noise_rate: float = 0.0,
    root: str | None = None,
    protocol: str | None = None,
) -> dict[str, Any]:
    """The training config every trial starts from: the dataset's defaults and the current
    preset, with ``val_fraction`` set (its classes leave the train split) and a batch that fits
    the remaining train classes (``m_per_class`` kept, fewer classes per batch if needed).

    ``protocol`` None is the dataset's default, replaced by its class-disjoint protocol when the
    default's test split shares the train classes (digits: ``samples`` -> ``classes``), so the
    validation classes are never test classes."""
    from dmlviz.data import load_dataset
    from dmlviz.train import default_config

    if loss not in SEARCH_SPACES:
        raise ValueError(
            f"no search space for loss {loss!r}; choose one of {', '.join(SEARCH_SPACES)}"
        )
    config = default_config(dataset, loss)
    if protocol is None:
        key = (dataset, config["protocol"])
        protocol = SHARED_CLASS_PROTOCOLS.get(key, config["protocol"])
    config["protocol"] = protocol
    if val_fraction is None:
        val_fraction = default_val_fraction(dataset, root, config["split_seed"], protocol)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction {val_fraction!r} must be in (0, 1)")
    config.update(
        val_fraction=float(val_fraction),
        seed=seed,
        noise_rate=float(noise_rate),
        noise_seed=seed,
        eval_every=0,  # trials are scored on validation below; the test split is never touched
        tensorboard=False,
    )
    if epochs is not None:
        config["epochs"] = epochs
    if root is not None:
        config["dataset_root"] = root
    train_classes = load_dataset(
        dataset,
        root=root,
        split="train",
        seed=config["split_seed"],
        protocol=protocol,
        val_fraction=val_fraction,
    ).num_classes
    if config["batch_size"] // config["m_per_class"] > train_classes:
        config["batch_size"] = train_classes * config["m_per_class"]
    return config


def validation_map_at_r(run: Run) -> float:
    """MAP@R of a run's model on its validation classes (each image queries all the others)."""
    import numpy as np

    from dmlviz.evaluate import retrieval_metrics
    from dmlviz.train import compute_embeddings

    dataset = run.dataset("val")
    embeddings = compute_embeddings(run.load_model(), dataset, "cpu", batch_size=512)
    return float(retrieval_metrics(embeddings, np.asarray(dataset.labels)).metrics["map@r"])


def tune(
    dataset: str,
    loss: str,
    out: str | Path,
    budget: int = 20,
    epochs: int | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    noise_rate: float = 0.0,
    root: str | None = None,
    protocol: str | None = None,
    write_to_package: bool = False,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Search ``budget`` trials (in total, across resumptions) and return the best preset entry.

    The entry (``loss_kwargs``, ``lr``, ``source`` "tuned on validation", ``date``, ``budget``,
    ``val_map@r``, ``default_val_map@r`` (trial 0, the preset searched from), ``epochs``,
    ``val_fraction``, ``seed``, ``protocol``) is written to ``<out>/preset.json`` and, with
    ``write_to_package``, into ``dmlviz/presets/<dataset>.json``.
    """
    import optuna

    from dmlviz.presets import write_preset
    from dmlviz.sweep import FolderLock
    from dmlviz.train import train

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget {budget!r} must be an integer >= 1 (the number of trials)")
    say = log or (lambda message: None)
    out = Path(out)
    config = base_config(dataset, loss, epochs, val_fraction, seed, noise_rate, root, protocol)
    settings = {
        "dataset": dataset,
        "loss": loss,
        "protocol": config["protocol"],
        "epochs": config["epochs"],
        "val_fraction": config["val_fraction"],
        "seed": seed,
        "noise_rate": float(noise_rate),
    }
    with FolderLock(out):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=f"{dataset}-{loss}",
            storage=f"sqlite:///{out / STUDY_DB}",
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            load_if_exists=True,
        )
        _check_settings(study, settings, out)
        # The search is centred on the preset it started from, even if presets changed since.
        if "base_lr" not in study.user_attrs:
            study.set_user_attr("base_lr", config["lr"])
            study.set_user_attr("base_loss_kwargs", config["loss_kwargs"])
        config["lr"] = study.user_attrs["base_lr"]
        config["loss_kwargs"] = dict(study.user_attrs["base_loss_kwargs"])
        _retire_stale_trials(study, out)
        if not study.trials:
            study.enqueue_trial(_as_params(config))
        finished = _finished_trials(study)
        left = budget - len(finished)
        say(f"{out}: {len(finished)} trial(s) done, {max(left, 0)} to go")

        def objective(trial) -> float:
            chosen = suggest(trial, loss, config)
            name = f"trial-{trial.number:03d}"
            trial_config = {**config, **chosen, "name": name}
            trial_config["preset_source"] = "user settings"
            folder = out / TRIALS_DIR / name
            shutil.rmtree(folder, ignore_errors=True)  # left by a deleted study: not this trial
            run = train(trial_config, folder, progress=False)
            score = validation_map_at_r(run)
            say(f"{name}: val MAP@R {score:.4f}  {_describe(trial.params)}")
            return score

        if left > 0:
            study.optimize(objective, n_trials=left, catch=(FloatingPointError,))
        entry = best_entry(study, config)
        atomic_write_json(out / PRESET_JSON, {"dataset": dataset, "loss": loss, **entry})
        say(
            f"best: trial {study.best_trial.number}, val MAP@R {entry['val_map@r']:.4f} "
            f"(preset searched from: {entry['default_val_map@r']})"
        )
        if write_to_package:
            say(f"wrote {write_preset(dataset, loss, entry)}")
        return entry


def best_entry(study, config: dict[str, Any]) -> dict[str, Any]:
    """The preset entry of ``study``'s best trial (see ``tune``)."""
    best = study.best_trial
    chosen = settings_of(best.params, config)
    first = study.trials[0]
    return {
        "loss_kwargs": {k: _round(v) for k, v in chosen["loss_kwargs"].items()},
        "lr": _round(chosen["lr"]),
        "source": "tuned on validation",
        "date": datetime.date.today().isoformat(),
        "budget": len(_finished_trials(study)),
        "val_map@r": round(float(best.value), 4),
        "default_val_map@r": round(float(first.value), 4) if first.value is not None else None,
        "epochs": config["epochs"],
        "val_fraction": round(config["val_fraction"], 4),
        "seed": config["seed"],
        "noise_rate": config["noise_rate"],
        "protocol": config["protocol"],
        "batch_size": config["batch_size"],
        "notes": (
            "Optuna TPE over lr and the loss's hyperparameters; each trial trained on the train "
            "classes minus the validation classes and scored by MAP@R on those; trial 0 is the "
            "preset searched from."
        ),
    }


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_round(v)}" for k, v in params.items())


def _finished_trials(study) -> list:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return [t for t in study.trials if t.state in done]


def _check_settings(study, settings: dict[str, Any], out: Path) -> None:
    """Record the search's settings on a new study; refuse to resume one made with others."""
    stored = study.user_attrs
    if not stored:
        for key, value in settings.items():
            study.set_user_attr(key, value)
        return
    for key, value in settings.items():
        if key in stored and stored[key] != value:
            raise ValueError(
                f"{out / STUDY_DB} was searched with {key}={stored[key]!r}, not {value!r}; "
                "use the same settings to resume it, or another --out"
            )


def _retire_stale_trials(study, out: Path) -> None:
    """Mark trials left running by an interrupted search as failed, delete their partial runs and
    queue their parameters again so the search covers the same points."""
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        shutil.rmtree(out / TRIALS_DIR / f"trial-{trial.number:03d}", ignore_errors=True)
        if trial.params:
            study.enqueue_trial(trial.params)


# -- views for the dashboard --------------------------------------------------------------------------


def load_study(out_dir: str | Path):
    """The Optuna study stored in ``<out_dir>/study.db`` (``ValueError`` when there is none)."""
    import optuna

    path = Path(out_dir) / STUDY_DB
    if not path.exists():
        raise ValueError(f"{path} does not exist: run `dmlviz tune ... --out {out_dir}` first")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=None, storage=f"sqlite:///{path}")


def study_table(out_dir: str | Path) -> pd.DataFrame:
    """One row per trial of the study in ``out_dir``: trial, state, value (validation MAP@R),
    seconds, then one column per searched parameter (NaN where a trial lacks it)."""
    study = load_study(out_dir)
    rows = []
    for trial in study.trials:
        seconds = None
        if trial.datetime_start and trial.datetime_complete:
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                "value": trial.value,
                "seconds": seconds,
                **trial.params,
            }
        )
    return pd.DataFrame(rows)


def param_importances(out_dir: str | Path) -> dict[str, float]:
    """Each parameter's share of the variation in validation MAP@R (fANOVA, seeded), largest
    first; empty when fewer than two trials completed."""
    import optuna

    study = load_study(out_dir)
    complete = [
        t
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and t.value is not None
        and math.isfinite(t.value)
    ]
    if len(complete) < 2:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError):
        return {}
    return {name: float(value) for name, value in importances.items()}
