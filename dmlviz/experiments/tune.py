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
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dmlviz.experiments.folder import PRESET_JSON, FolderLock, check_out
from dmlviz.experiments.spec import executor_problems
from dmlviz.registry import LOSSES, SearchSpace, loss_entry
from dmlviz.runs import Run, atomic_write_json
from dmlviz.runs.walk import STUDY_FILE, STUDY_JOURNAL, STUDY_RUN_FOLDERS
from dmlviz.validate import InvalidValue, check_number, is_number

STUDY_DB = STUDY_FILE
STORAGE_FORMS = ("journal:", "sqlite:", "postgresql", "mysql")  # what --storage accepts
TRIAL_FOLDER = "folder"  # trial attribute: the study folder whose process runs the trial
TRIALS_DIR, CONFIRM_DIR = STUDY_RUN_FOLDERS  # fold runs: not listed as runs (dmlviz.runs.walk)
MIN_VAL_CLASSES = 2  # MAP@R over a single class is always 1: hold out at least two
MAX_FOLDS = 4  # as Musgrave et al.: four class-disjoint folds of the train classes
PRUNE_AFTER = 5  # trials that always run every fold before the median pruner starts
FOLD_SCORES = "fold_map@r"  # trial attribute: MAP@R of each fold run so far
CONFIRM_TOP = 3  # best trials retrained with fresh seeds, beside the paper defaults
CONFIRM_SEEDS = 50  # confirmation runs use seed + 50 + fold (the search: seed + fold)
CONFIRMED = "confirm_map@r"  # study attribute: {trial number: MAP@R of each confirmation run}


# Each loss's search space (trial and base config -> loss_kwargs), as registered with the loss.
# The learning rate is searched for every loss, from a tenth to ten times the dataset's default.
SEARCH_SPACES: dict[str, SearchSpace] = {name: entry.search for name, entry in LOSSES.items()}


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
    dataset: str,
    root: str | None = None,
    split_seed: int = 0,
    protocol: str | None = None,
    test_root: str | None = None,
) -> float:
    """A validation share holding 20 % of the train classes, and at least two of them."""
    classes = _train_classes(dataset, root, split_seed, protocol, test_root=test_root)
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


def _train_classes(
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
    train_classes = _train_classes(
        dataset, root, config["split_seed"], config["protocol"], val_fraction, test_root
    )
    if config["batch_size"] // config["m_per_class"] > train_classes:
        config["batch_size"] = train_classes * config["m_per_class"]
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
    import optuna

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
    available = fold_count(
        dataset, config["val_fraction"], root, config["split_seed"], config["protocol"], test_root
    )
    if folds is None:
        folds = min(MAX_FOLDS, available)
    if not is_number(folds, 1, available, integer=True):
        raise InvalidValue(
            "folds",
            folds,
            f"the train split of {dataset} holds {available} disjoint folds of val_fraction "
            f"{config['val_fraction']:.3g}; use 1 to {available}",
        )
    settings = {
        "dataset": dataset,
        "loss": loss,
        "protocol": config["protocol"],
        "epochs": config["epochs"],
        "val_fraction": config["val_fraction"],
        "folds": folds,
        "seed": seed,
        "noise_rate": float(noise_rate),
    }
    url = study_storage(out, storage, executor)  # a bad --storage is refused before --out is made
    if storage is not None:
        optuna_storage(url)  # one that cannot be opened too
    if executor == "ray":  # as is a Ray address that does not answer
        from dmlviz.experiments.ray_executor import connect

        connect(address)
    with FolderLock(out):
        study = open_study(url, study_name(dataset, loss), seed)
        _check_settings(study, settings, url)
        _retire_stale_trials(study, out)
        if not study.trials:
            study.enqueue_trial(_as_params(config))  # trial 0: the paper defaults
        spent = (*_finished_states(), optuna.trial.TrialState.RUNNING)  # others' running count
        left = budget - len(study.get_trials(deepcopy=False, states=spent))
        say(f"{out}: {len(_finished_trials(study))} trial(s) done, {max(left, 0)} to go")
        if left > 0 and executor == "ray":
            from dmlviz.experiments.ray_executor import run_tasks, task_resources

            first = len(study.trials)  # seeds each task's sampler apart from the others'
            trial = functools.partial(_trial_task, url=url, name=study.study_name, seed=seed,
                                      loss=loss, config=config, folds=folds, out=out)  # fmt: skip
            slots = list(range(first, first + left))
            run_tasks(trial, slots, lambda slot: task_resources(config), None, address, out)
        elif left > 0:
            study.optimize(
                objective(loss, config, folds, out, say),
                n_trials=left,
                catch=(FloatingPointError,),
                callbacks=[optuna.study.MaxTrialsCallback(budget, states=spent)],
            )
        others = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
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


def study_storage(out: Path, storage: str | None, executor: str = "local") -> str:
    """Where the study of ``out`` lives: ``storage`` when given (``journal:PATH``, a journal file
    that processes on several machines can share through NFS and the like, or an RDB URL such as
    ``postgresql://user:password@host/db``), else ``<out>/study.journal`` when it exists or when
    Ray trains the trials (SQLite's locks are unsafe for writers on several machines), else
    ``sqlite:///<out>/study.db``. ``ValueError`` for any other form, or for Ray and an existing
    ``study.db``."""
    if storage is not None:
        if not isinstance(storage, str) or not storage.startswith(STORAGE_FORMS):
            raise InvalidValue(
                "storage",
                storage,
                "give journal:PATH (a file on a shared filesystem) or an RDB URL such as "
                "postgresql://user:password@host/db",
            )
        return storage
    journal, sqlite = out / STUDY_JOURNAL, out / STUDY_DB
    if journal.exists() or (executor == "ray" and not sqlite.exists()):
        return f"journal:{journal}"
    if executor == "ray":
        raise ValueError(
            f"{sqlite} is an SQLite study, which Ray tasks on several machines cannot share: "
            "resume it with --executor local, or search anew with another --out"
        )
    return f"sqlite:///{sqlite}"


def open_study(url: str, name: str, seed: int):
    """The Optuna study ``name`` at ``url`` (``study_storage``), created when absent: TPE seeded
    with ``seed``, maximising, pruned by the median of earlier trials at each fold."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # multivariate TPE is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.create_study(
        study_name=name,
        storage=optuna_storage(url),
        direction="maximize",
        sampler=sampler,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER),
        load_if_exists=True,
    )


def optuna_storage(url: str):
    """The Optuna storage at ``url`` (``study_storage``), opened: a ``JournalStorage`` for
    ``journal:PATH``, an ``RDBStorage`` otherwise. ``ValueError`` naming the storage, the reason
    and the fix when it cannot be opened (a path that cannot be written, a missing database
    driver, a database that does not answer)."""
    import sqlalchemy.exc
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    try:
        if url.startswith("journal:"):
            return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        return RDBStorage(url)
    except ImportError:
        fix = "install the database driver for it (e.g. pip install psycopg2-binary)"
        reason = "its database driver is not installed"
    except OSError as error:
        fix, reason = "give a file in a folder you can write to", error.strerror or str(error)
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        fix = "check the URL, that its folder exists and that the database server answers"
    raise ValueError(f"cannot open --storage {_shown(url)}: {reason}; {fix}")


def study_name(dataset: str, loss: str) -> str:
    """The name of the study that tunes ``loss`` on ``dataset``."""
    return f"{dataset}-{loss}"


def check_same_study(out: Path, dataset: str, loss: str) -> None:
    """Refuse a study folder ``out`` that holds the search of another dataset or loss (by its
    study file, its ``preset.json`` or a fold run's config): ``ValueError`` saying what it holds,
    how to resume that, and to choose another ``--out`` otherwise. Reads only."""
    import optuna

    held: set[tuple[str, str]] = set()
    for path, url in [(out / STUDY_JOURNAL, f"journal:{out / STUDY_JOURNAL}"),
                      (out / STUDY_DB, f"sqlite:///{out / STUDY_DB}")]:  # fmt: skip
        if path.is_file():
            for summary in optuna.get_all_study_summaries(optuna_storage(url)):
                attrs = summary.user_attrs
                held.add((attrs.get("dataset", "?"), attrs.get("loss", summary.study_name)))
    for path in [out / PRESET_JSON, *sorted(out.glob(f"{TRIALS_DIR}/*/fold-*/config.json"))[:1]]:
        try:
            record = json.loads(path.read_text())
            held.add((str(record["dataset"]), str(record["loss"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    others = sorted(held - {(dataset, loss)})
    if others:
        other_dataset, other_loss = others[0]
        raise ValueError(
            f"--out {out} holds the study of --loss {other_loss} on --dataset {other_dataset}: "
            f"choose another --out for --loss {loss} on {dataset}, or resume that study with "
            f"--dataset {other_dataset} --loss {other_loss}"
        )


def objective(
    loss: str, config: dict[str, Any], folds: int, out: Path, say: Callable[[str], None]
) -> Callable[[Any], float]:
    """The Optuna objective: a trial's mean validation MAP@R over ``folds`` fold runs
    (``<out>/trials/trial-<n>``), reported fold by fold so the pruner can stop it early."""
    import optuna

    def score(trial) -> float:
        chosen = suggest(trial, loss, config)
        name = f"trial-{trial.number:03d}"
        trial.set_user_attr(TRIAL_FOLDER, str(out))

        def report(fold: int, score: float, scores: list[float]) -> None:
            mean = sum(scores) / len(scores)
            trial.set_user_attr(FOLD_SCORES, scores)
            trial.report(mean, fold)
            if fold < folds - 1 and trial.should_prune():
                say(f"{name}: pruned after fold {fold} (mean so far {mean:.4f})")
                raise optuna.TrialPruned()

        scores = cross_validate({**config, **chosen}, folds, out / TRIALS_DIR / name, report)
        value = sum(scores) / len(scores)
        say(f"{name}: val MAP@R {value:.4f}  {_describe(trial.params)}")
        return value

    return score


def _trial_task(
    slot: int,
    url: str,
    name: str,
    seed: int,
    loss: str,
    config: dict[str, Any],
    folds: int,
    out: Path,
) -> None:
    """One trial of the study ``name`` at ``url``, as a Ray task runs it: its sampler seeded
    ``seed + slot`` (tasks seeded alike would propose the same points)."""
    study = open_study(url, name, seed + slot)
    say = lambda message: print(message, flush=True)
    study.optimize(objective(loss, config, folds, out, say), n_trials=1,
                   catch=(FloatingPointError,))  # fmt: skip


def candidates(study) -> list:
    """The trials a confirmation retrains: trial 0 (the paper defaults) and the ``CONFIRM_TOP``
    completed trials of highest validation MAP@R, in that order."""
    complete = [t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None]
    complete = [t for t in complete if math.isfinite(t.value)]
    best = sorted((t for t in complete if t.number != 0), key=lambda t: -t.value)
    first = [t for t in complete if t.number == 0]
    return first + best[:CONFIRM_TOP]


def confirm(
    study,
    config: dict[str, Any],
    folds: int,
    out: Path,
    say: Callable[[str], None],
    executor: str = "local",
    address: str | None = None,
) -> dict[str, list[float]]:
    """Train each of ``candidates(study)`` again on the same ``folds`` with seeds
    ``seed + CONFIRM_SEEDS + fold`` (runs ``<out>/confirm/trial-<n>``; one after the other here,
    or as Ray tasks with ``executor`` "ray"); returns and stores ``{trial number: MAP@R of each
    run}`` in the study as each ends (a resumed search keeps them)."""
    from dmlviz.experiments.runner import train_many

    done = {str(k): list(v) for k, v in study.user_attrs.get(CONFIRMED, {}).items()}
    trials = {}
    for trial in candidates(study):
        if str(trial.number) in done:
            continue
        chosen = settings_of(trial.params, config)
        fresh = {**config, **chosen, "seed": config["seed"] + CONFIRM_SEEDS}
        fresh["noise_seed"] = config["noise_seed"] + CONFIRM_SEEDS
        fresh["name"] = f"trial-{trial.number:03d}"
        trials[fresh["name"]] = (trial, fresh)

    def record(fresh: dict[str, Any], scores: list[float]) -> None:
        trial = trials[fresh["name"]][0]
        done[str(trial.number)] = scores
        study.set_user_attr(CONFIRMED, done)
        both = [*trial.user_attrs.get(FOLD_SCORES, []), *scores]
        say(f"{fresh['name']} confirmed: val MAP@R {_mean(scores):.4f} with fresh seeds, "
            f"{_mean(both):.4f} over both")  # fmt: skip

    rerun = functools.partial(_confirm_one, folds=folds, out=out)
    train_many([fresh for _, fresh in trials.values()], 1, rerun, record, executor, address, out)
    return done


def _confirm_one(config: dict[str, Any], folds: int, out: Path) -> list[float]:
    """The validation MAP@R of each fold of one confirmation (``<out>/confirm/<config name>``)."""
    return cross_validate(config, folds, out / CONFIRM_DIR / config["name"])


def confirmed_scores(study) -> dict[int, list[float]]:
    """``{trial number: MAP@R of its search runs and of its confirmation runs}`` for every
    confirmed trial."""
    confirmations = study.user_attrs.get(CONFIRMED, {})
    trials = {t.number: t for t in study.trials}
    return {
        int(n): [*trials[int(n)].user_attrs.get(FOLD_SCORES, []), *scores]
        for n, scores in confirmations.items()
        if int(n) in trials
    }


def choose_trial(confirmed: dict[int, float | None], values: dict[int, float | None]) -> int | None:
    """The number of the trial a search chooses: of the ``confirmed`` trials (number -> mean MAP@R
    over its search and confirmation runs) the best, or while none is confirmed the completed
    trial of best validation MAP@R (``values``: number -> value); ties go to the earlier trial,
    None when there is neither. The one rule for the preset and the dashboard."""
    for scores in (confirmed, values):
        scored = {n: v for n, v in scores.items() if v is not None and math.isfinite(v)}
        if scored:
            return max(scored, key=lambda n: (scored[n], -n))
    return None


def best_entry(study, config: dict[str, Any]) -> dict[str, Any]:
    """The preset entry of the confirmed trial with the best mean over its search and
    confirmation runs (the search's best trial when none was confirmed); see ``tune``."""
    scores = confirmed_scores(study)
    values = {t.number: t.value for t in study.trials if t.state.name == "COMPLETE"}
    number = choose_trial({n: _mean(v) for n, v in scores.items()}, values)
    chosen_trial = next(t for t in study.trials if t.number == number)
    runs = scores.get(chosen_trial.number) or chosen_trial.user_attrs.get(FOLD_SCORES, [])
    paper = scores.get(0)
    chosen = settings_of(chosen_trial.params, config)
    return {
        "loss_kwargs": {k: _round(v) for k, v in chosen["loss_kwargs"].items()},
        "lr": _round(chosen["lr"]),
        "source": "tuned on validation",
        "date": datetime.date.today().isoformat(),
        "budget": len(_finished_trials(study)),
        "folds": study.user_attrs.get("folds"),
        "trial": chosen_trial.number,
        "val_map@r": round(_mean(runs), 4),
        "val_map@r_runs": [round(float(v), 4) for v in runs],
        "paper_val_map@r": round(_mean(paper), 4) if paper else None,
        "confirmed": {str(n): round(_mean(v), 4) for n, v in sorted(scores.items())},
        "epochs": config["epochs"],
        "val_fraction": config["val_fraction"],  # exact: it names the folds' classes
        "seed": config["seed"],
        "noise_rate": config["noise_rate"],
        "protocol": config["protocol"],
        "batch_size": config["batch_size"],
        "notes": (
            "Optuna TPE over lr and the loss's hyperparameters, from the paper defaults (trial 0); "
            f"each trial scored by its mean validation MAP@R over {_fold_kind(config)} (trained "
            "on the rest of the train split); the paper defaults and the 3 best trials were "
            "trained again with fresh seeds and the best mean over both sets of runs chosen "
            "(val_map@r, paper_val_map@r); the test split was never read."
        ),
    }


def _fold_kind(config: dict[str, Any]) -> str:
    from dmlviz.data.load import validation_by_samples

    if validation_by_samples(config["dataset"], config["protocol"]):
        return "folds of each train class's images (the test split holds other images of them)"
    return "class-disjoint folds of the train classes"


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


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_round(v)}" for k, v in params.items())


def _finished_states() -> tuple:
    """The trial states that count against a search's budget."""
    import optuna

    state = optuna.trial.TrialState
    return state.COMPLETE, state.PRUNED, state.FAIL


def _finished_trials(study) -> list:
    return [t for t in study.trials if t.state in _finished_states()]


def _check_settings(study, settings: dict[str, Any], url: str) -> None:
    """Record the search's settings on a new study; refuse to resume one made with others."""
    stored = study.user_attrs
    if not stored:
        for key, value in settings.items():
            study.set_user_attr(key, value)
        return
    for key, value in settings.items():
        if key in stored and stored[key] != value:
            raise ValueError(
                f"the study {study.study_name} in {_shown(url)} was searched with "
                f"{key}={stored[key]!r}, not {value!r}; use the same settings to resume it, or "
                "another --out (or --storage)"
            )


def _shown(url: str) -> str:
    """``url`` with an RDB password masked, for messages."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _retire_stale_trials(study, out: Path) -> None:
    """Mark trials left running by an interrupted search in ``out`` as failed, delete their
    partial runs and queue their parameters again so the search covers the same points. Trials
    that other folders' workers of a shared study run are left alone."""
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(TRIAL_FOLDER, str(out)) != str(out):
            continue
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        shutil.rmtree(out / TRIALS_DIR / f"trial-{trial.number:03d}", ignore_errors=True)
        if trial.params:
            study.enqueue_trial(trial.params)
