"""A tuning trial: the settings it draws (the learning rate and the loss's registered search
space, ``dmlviz.registry.LossEntry.search``) and the objective that trains and scores them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dmlviz.experiments.folds import cross_validate
from dmlviz.experiments.study import TRIAL_FOLDER, TRIALS_DIR, open_study
from dmlviz.registry import LOSSES, SearchSpace

FOLD_SCORES = "fold_map@r"  # trial attribute: MAP@R of each fold run so far

# Each loss's search space (trial and base config -> loss_kwargs), as registered with the loss.
# The learning rate is searched for every loss, from a tenth to ten times the dataset's default.
SEARCH_SPACES: dict[str, SearchSpace] = {name: entry.search for name, entry in LOSSES.items()}


def suggest(trial, loss: str, config: dict[str, Any]) -> dict[str, Any]:
    """The trial's ``{"lr": ..., "loss_kwargs": {...}}`` for ``loss``: ``config``'s loss settings
    with the searched ones replaced (the learning rate from a tenth to ten times the default)."""
    lr = trial.suggest_float("lr", config["lr"] / 10, config["lr"] * 10, log=True)
    searched = SEARCH_SPACES[loss](trial, config)
    return {"lr": lr, "loss_kwargs": {**config["loss_kwargs"], **searched}}


def as_params(config: dict[str, Any]) -> dict[str, Any]:
    """The Optuna parameters that reproduce ``config``'s lr and loss settings (for enqueueing)."""
    import optuna

    probe = optuna.trial.FixedTrial({"lr": config["lr"], **config["loss_kwargs"]})
    suggest(probe, config["loss"], config)
    return probe.params


def settings_of(params: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``{"lr", "loss_kwargs"}`` that a trial with Optuna ``params`` trained with."""
    import optuna

    return suggest(optuna.trial.FixedTrial(params), config["loss"], config)


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


def trial_task(
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


def rounded(value: Any) -> Any:
    """``value`` to 4 significant digits if it is a float (as presets and logs show settings)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={rounded(v)}" for k, v in params.items())
