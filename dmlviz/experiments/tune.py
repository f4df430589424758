"""Hyperparameter search for a fair comparison: each loss gets the same budget on validation folds.

``tune(dataset, loss, out)`` runs an Optuna study (TPE, seeded) over the learning rate and the
loss's own hyperparameters, the way Musgrave et al. ("A Metric Learning Reality Check", ECCV 2020)
compare losses: every trial is scored by cross-validation on the TRAIN split. Its classes are
shuffled once and cut into ``folds`` disjoint validation folds of ``val_fraction`` of them; for
each fold the trial trains on the rest of the train split (seed ``seed + fold``) and is scored by
MAP@R on the fold, which it never saw. A trial's value is the mean over its folds. The test split
is never read. Trials whose running mean falls below the median of earlier trials at
the same fold are stopped early (Optuna's median pruner), so the budget goes to promising ones.

A search's best trial may be a lucky draw of seeds (the contextual loss's best digits settings
collapsed for 2 of 5 other seeds), so the search ends with a confirmation: the paper defaults and
the ``CONFIRM_TOP`` best trials are trained again on the same folds with fresh seeds, and the
preset is the one with the best mean over both sets of runs.

Every search starts from the loss's paper defaults (trial 0, ``dmlviz.presets`` kind "paper") and
is centred on them, so it is reproducible whatever presets ship, and its result says how much
tuning gained over the paper.

The folds mirror the test split. Under a class-disjoint protocol they are folds of the train
classes. Under a protocol whose test split holds other images of the train classes (digits'
"samples"), they are folds of each class's train images: there, held-out classes reward settings
that barely learn the trained ones (digits test MAP@R fell from 0.95 to 0.42-0.87 with presets
tuned that way).

The study lives in ``<out>/study.db`` (SQLite), so an interrupted search resumes where it
stopped (``<out>/study.journal`` when Ray tasks on several machines share it, or the storage named
by ``storage``: see ``study_storage`` and docs/cluster.md); fold runs are
``<out>/trials/trial-<n>/fold-<f>``. The best configuration is written to ``<out>/preset.json``
and, on request, into the package's tuned presets (``dmlviz/presets/<dataset>.json``).

Each step has its module: ``folds`` (the base config, the folds and a fold run's score),
``trials`` (the search space and the objective), ``study`` (where the study lives, resuming it)
and ``confirm`` (the confirmation and the chosen preset); their public names are importable here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dmlviz.experiments.confirm import (
    CONFIRM_DIR,
    CONFIRM_SEEDS,
    CONFIRM_TOP,
    CONFIRMED,
    best_entry,
    candidates,
    choose_trial,
    confirm,
    confirmed_scores,
)
from dmlviz.experiments.folder import PRESET_JSON, FolderLock, check_out
from dmlviz.experiments.folds import (
    MAX_FOLDS,
    MIN_VAL_CLASSES,
    base_config,
    cross_validate,
    default_val_fraction,
    fold_config,
    fold_count,
    map_at_r,
    train_classes,
)
from dmlviz.experiments.spec import executor_problems
from dmlviz.experiments.study import (
    PRUNE_AFTER,
    STORAGE_FORMS,
    STUDY_DB,
    TRIAL_FOLDER,
    TRIALS_DIR,
    check_same_study,
    check_settings,
    finished_states,
    finished_trials,
    open_study,
    optuna_storage,
    retire_stale_trials,
    study_name,
    study_storage,
)
from dmlviz.experiments.trials import (
    FOLD_SCORES,
    SEARCH_SPACES,
    as_params,
    objective,
    settings_of,
    suggest,
    trial_task,
)
from dmlviz.runs import atomic_write_json
from dmlviz.validate import InvalidValue, check_number, is_number

__all__ = [
    "CONFIRMED",
    "CONFIRM_DIR",
    "CONFIRM_SEEDS",
    "CONFIRM_TOP",
    "FOLD_SCORES",
    "MAX_FOLDS",
    "MIN_VAL_CLASSES",
    "PRESET_JSON",
    "PRUNE_AFTER",
    "SEARCH_SPACES",
    "STORAGE_FORMS",
    "STUDY_DB",
    "TRIALS_DIR",
    "TRIAL_FOLDER",
    "base_config",
    "best_entry",
    "candidates",
    "check_same_study",
    "choose_trial",
    "confirm",
    "confirmed_scores",
    "cross_validate",
    "default_val_fraction",
    "fold_config",
    "fold_count",
    "map_at_r",
    "objective",
    "open_study",
    "optuna_storage",
    "settings_of",
    "study_name",
    "study_storage",
    "suggest",
    "train_classes",
    "tune",
]


def tune(
    dataset: str,
    loss: str,
    out: str | Path,
    budget: int = 20,
    folds: int | None = None,
    epochs: int | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    noise_rate: float = 0.0,
    root: str | None = None,
    protocol: str | None = None,
    write_to_package: bool = False,
    test_root: str | None = None,
    log: Callable[[str], None] | None = print,
    storage: str | None = None,
    executor: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Search ``budget`` trials (in total, across resumptions) and return the best preset entry.

    ``folds`` None is every fold that fits, at most ``MAX_FOLDS``. The entry (``loss_kwargs``,
    ``lr``, ``source`` "tuned on validation", ``date``, ``budget``, ``folds``, ``val_map@r`` (the
    best trial's mean over folds) and ``val_map@r_folds``, ``paper_val_map@r`` (trial 0, the paper
    defaults), ``epochs``, ``val_fraction``, ``seed``, ``noise_rate``, ``protocol``, ``command``)
    is written to ``<out>/preset.json`` and, with ``write_to_package``, into
    ``dmlviz/presets/<dataset>.json``. ``test_root``: see ``base_config``.

    ``storage`` is where the study lives (``study_storage``); several ``tune`` processes given
    the same one, each with its own ``out``, search one study together, and the last to finish
    confirms. ``executor`` "ray" trains every trial and confirmation as a Ray task on the cluster
    at ``address`` (``dmlviz.experiments.ray_executor``), all writing into ``out``.
    """
    from dmlviz.presets import write_preset

    check_number("budget", budget, 1, integer=True)  # the number of trials
    problems = executor_problems(executor, address)
    if problems:
        raise ValueError("; ".join(problems))
    say = log or (lambda message: None)
    check_out(out, "study")  # before anything is written: a run, a sweep, a file are refused
    out = Path(out).resolve()  # trials record it: the same path on every node
    check_same_study(out, dataset, loss)
    config = base_config(
        dataset, loss, epochs, val_fraction, seed, noise_rate, root, protocol, test_root
    )
    folds = _checked_folds(folds, config, root, test_root)
    url = _opened_storage(out, storage, executor, address)
    with FolderLock(out):
        study = open_study(url, study_name(dataset, loss), seed)
        check_settings(study, _settings(config, folds), url)
        retire_stale_trials(study, out)
        if not study.trials:
            study.enqueue_trial(as_params(config))  # trial 0: the paper defaults
        _run_trials(study, budget, config, folds, out, say, url, executor, address)
        others = _running(study)
        if others:
            say(f"{len(others)} trial(s) still run in other workers of this study: the last "
                "worker to finish confirms and writes the preset")  # fmt: skip
            return {}
        confirm(study, config, folds, out, say, executor, address)
        entry = best_entry(study, config)
        entry["command"] = _command(dataset, loss, budget, folds, epochs, val_fraction, seed,
                                    noise_rate, protocol, root, test_root, executor)  # fmt: skip
        atomic_write_json(out / PRESET_JSON, {"dataset": dataset, "loss": loss, **entry})
        say(
            f"chosen: trial {entry['trial']}, val MAP@R {entry['val_map@r']:.4f} over "
            f"{2 * folds} runs (paper defaults: {entry['paper_val_map@r']})"
        )
        if write_to_package:
            say(f"wrote {write_preset(dataset, loss, entry)}")
        return entry


def _checked_folds(
    folds: int | None, config: dict[str, Any], root: str | None, test_root: str | None
) -> int:
    """``folds``, or every fold that fits (at most ``MAX_FOLDS``) when None; ``InvalidValue``
    saying how many fit when more are asked for."""
    dataset = config["dataset"]
    available = fold_count(
        dataset, config["val_fraction"], root, config["split_seed"], config["protocol"], test_root
    )
    if folds is None:
        return min(MAX_FOLDS, available)
    if not is_number(folds, 1, available, integer=True):
        raise InvalidValue(
            "folds",
            folds,
            f"the train split of {dataset} holds {available} disjoint folds of val_fraction "
            f"{config['val_fraction']:.3g}; use 1 to {available}",
        )
    return folds


def _opened_storage(out: Path, storage: str | None, executor: str, address: str | None) -> str:
    """The study's storage URL (``study_storage``), refused before ``out`` is made when a given
    ``storage`` cannot be opened or a Ray ``address`` does not answer."""
    url = study_storage(out, storage, executor)
    if storage is not None:
        optuna_storage(url)
    if executor == "ray":
        from dmlviz.experiments.ray_executor import connect

        connect(address)
    return url


def _settings(config: dict[str, Any], folds: int) -> dict[str, Any]:
    """What a study records and a resumed search must repeat (``check_settings``)."""
    keys = ("dataset", "loss", "protocol", "epochs", "val_fraction")
    return {**{key: config[key] for key in keys}, "folds": folds, "seed": config["seed"],
            "noise_rate": config["noise_rate"]}  # fmt: skip


def _run_trials(
    study,
    budget: int,
    config: dict[str, Any],
    folds: int,
    out: Path,
    say: Callable[[str], None],
    url: str,
    executor: str,
    address: str | None,
) -> None:
    """Run the trials left of ``budget`` (trials other workers of the study run count), one after
    the other here or as Ray tasks with ``executor`` "ray"."""
    import optuna

    spent = (*finished_states(), optuna.trial.TrialState.RUNNING)
    left = budget - len(study.get_trials(deepcopy=False, states=spent))
    say(f"{out}: {len(finished_trials(study))} trial(s) done, {max(left, 0)} to go")
    if left > 0 and executor == "ray":
        from dmlviz.experiments.ray_executor import run_tasks, task_resources

        first = len(study.trials)  # seeds each task's sampler apart from the others'
        trial = functools.partial(trial_task, url=url, name=study.study_name,
                                  seed=config["seed"], loss=config["loss"], config=config,
                                  folds=folds, out=out)  # fmt: skip
        slots = list(range(first, first + left))
        run_tasks(trial, slots, lambda slot: task_resources(config), None, address, out)
    elif left > 0:
        study.optimize(
            objective(config["loss"], config, folds, out, say),
            n_trials=left,
            catch=(FloatingPointError,),
            callbacks=[optuna.study.MaxTrialsCallback(budget, states=spent)],
        )


def _running(study) -> list:
    """The study's trials still running (in other workers, once this one's are done)."""
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))


def _command(
    dataset: str,
    loss: str,
    budget: int,
    folds: int,
    epochs: int | None,
    val_fraction: float | None,
    seed: int,
    noise_rate: float,
    protocol: str | None,
    root: str | None,
    test_root: str | None = None,
    executor: str = "local",
) -> str:
    """The ``dmlviz tune`` command line that repeats this search (the dataset roots and the Ray
    address left out; on Ray, trials run at once draw from differently seeded samplers)."""
    words = ["dmlviz tune", f"--dataset {dataset}", f"--loss {loss}", f"--budget {budget}"]
    if root is not None:
        words.append("--dataset-root DIR")  # where the dataset lies differs between machines
    if test_root is not None:
        words.append("--test-root DIR")
    words.append(f"--folds {folds}")
    optional = {"--epochs": epochs, "--val-fraction": val_fraction, "--protocol": protocol}
    words += [f"{flag} {value}" for flag, value in optional.items() if value is not None]
    if seed:
        words.append(f"--seed {seed}")
    if noise_rate:
        words.append(f"--noise {noise_rate:g}")
    if executor != "local":
        words.append(f"--executor {executor}")
    return " ".join(words)
