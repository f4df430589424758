"""The end of a search: the paper defaults and the best trials trained again with fresh seeds, and
the preset entry of the trial with the best mean over both sets of runs."""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dmlviz.experiments.folds import cross_validate
from dmlviz.experiments.study import finished_trials
from dmlviz.experiments.trials import FOLD_SCORES, rounded, settings_of
from dmlviz.runs.walk import STUDY_RUN_FOLDERS

CONFIRM_DIR = STUDY_RUN_FOLDERS[1]  # confirmation runs: not listed as runs (dmlviz.runs.walk)
CONFIRM_TOP = 3  # best trials retrained with fresh seeds, beside the paper defaults
CONFIRM_SEEDS = 50  # confirmation runs use seed + 50 + fold (the search: seed + fold)
CONFIRMED = "confirm_map@r"  # study attribute: {trial number: MAP@R of each confirmation run}


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
        "loss_kwargs": {k: rounded(v) for k, v in chosen["loss_kwargs"].items()},
        "lr": rounded(chosen["lr"]),
        "source": "tuned on validation",
        "date": datetime.date.today().isoformat(),
        "budget": len(finished_trials(study)),
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


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
