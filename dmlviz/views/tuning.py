"""The Runs page's tuning section: the hyperparameter studies made by ``dmlviz tune`` in the runs
folder, each trial's validation MAP@R, the best trial and each hyperparameter's importance."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dmlviz.experiments.tune import (
    PRESET_JSON,
    STUDY_DB,
    choose_trial,
    optuna_storage,
    study_storage,
)
from dmlviz.runs import STUDY_FILES, study_folders
from dmlviz.views.style import annotate_empty, loss_color, loss_name


def find_studies(runs_dir: str | Path) -> list[Path]:
    """Every folder below ``runs_dir`` holding a tuning study (``study.db`` or ``study.journal``),
    sorted by path (``dmlviz.runs.study_folders``: run folders and a study's own fold runs are not
    searched)."""
    return study_folders(runs_dir)


def study_info(folder: str | Path) -> dict[str, Any]:
    """The study's ``preset.json`` (dataset, loss, best settings, validation MAP@R of the best
    trial and of the preset it started from), or ``{}`` while the search has not finished."""
    try:
        info = json.loads((Path(folder) / PRESET_JSON).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def study_label(folder: str | Path, info: dict[str, Any]) -> str:
    """``"tune-digits-rll · Ranked List Loss on digits"`` (the folder name alone without info)."""
    name = Path(folder).name
    if info.get("loss") and info.get("dataset"):
        return f"{name} · {loss_name(str(info['loss']))} on {info['dataset']}"
    return name


def best_trial(trials: pd.DataFrame) -> dict[str, Any] | None:
    """The trial the search chose, as a dict: the confirmed trial with the best mean over its
    search and confirmation runs, or while none is confirmed the completed trial with the
    highest validation MAP@R (None when no trial completed)."""
    if trials.empty or "value" not in trials:
        return None
    confirmed = {}
    if "confirmed" in trials:
        scored = trials[trials["confirmed"].notna()]
        confirmed = dict(zip(scored["trial"], scored["confirmed"].astype(float), strict=True))
    done = trials[(trials["state"] == "complete") & trials["value"].notna()]
    number = choose_trial(confirmed, dict(zip(done["trial"], done["value"], strict=True)))
    if number is None:
        return None
    return trials[trials["trial"] == number].iloc[0].to_dict()


def chosen_scores(trials: pd.DataFrame, best: dict[str, Any]) -> tuple[float, float | None]:
    """``(score of the chosen trial, score of the paper defaults (trial 0) or None)``, both the
    mean over search and confirmation runs once confirmed, else the search's value."""
    column = "confirmed" if pd.notna(best.get("confirmed")) else "value"
    first = trials.loc[trials["trial"] == 0, column] if column in trials else pd.Series()
    paper = None if first.empty or first.isna().all() else float(first.iloc[0])
    return float(best[column]), paper


def best_settings(best: dict[str, Any]) -> str:
    """The best trial's hyperparameters as ``"lr 0.0012 · margin 0.4"``."""
    fixed = ("trial", "state", "value", "folds", "fold_mean", "confirmed", "seconds")
    return " · ".join(
        f"{name} {float(f'{value:.4g}'):g}" if isinstance(value, float) else f"{name} {value}"
        for name, value in best.items()
        if name not in fixed and not pd.isna(value)
    )


def trials_display(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials table as shown: Trial, State, Validation MAP@R, Folds scored, With fresh seeds
    (the mean over search and confirmation runs; NaN where not retrained), Seconds (whole), then
    each searched hyperparameter (rounded to 4 significant digits)."""
    frame = trials.drop(columns=["fold_mean"], errors="ignore").rename(
        columns={
            "trial": "Trial",
            "state": "State",
            "value": "Validation MAP@R",
            "folds": "Folds scored",
            "confirmed": "With fresh seeds",
            "seconds": "Seconds",
        }
    )
    fixed = ["Trial", "State", "Validation MAP@R", "Folds scored", "With fresh seeds", "Seconds"]
    frame["Seconds"] = pd.to_numeric(frame["Seconds"], errors="coerce").round(0)
    frame["With fresh seeds"] = pd.to_numeric(frame["With fresh seeds"], errors="coerce")
    for column in frame.columns:
        if column not in fixed and pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: float(f"{v:.4g}") if pd.notna(v) else v)
    return frame


def importance_figure(importances: dict[str, float], loss: str | None = None) -> go.Figure:
    """Each hyperparameter's share of the variation in validation MAP@R as horizontal bars,
    largest on top (an explanatory empty chart with fewer than two completed trials)."""
    figure = go.Figure()
    if importances:
        names = list(importances)[::-1]
        values = [importances[name] for name in names]
        figure.add_trace(
            go.Bar(
                x=values,
                y=names,
                orientation="h",
                marker_color=loss_color(loss) if loss else None,
                hovertemplate="%{y}: %{x:.2f}<extra></extra>",
            )
        )
    else:
        annotate_empty(figure, "needs at least two completed trials")
    figure.update_layout(
        title="Hyperparameter importance (fANOVA)",
        xaxis_title="share of the variation in validation MAP@R",
        height=80 + 40 * max(3, len(importances)),
        margin=dict(l=10, r=10, t=50, b=10),
    )
    figure.update_xaxes(range=[0, 1])
    return figure


def trials_figure(trials: pd.DataFrame, loss: str | None = None) -> go.Figure:
    """Validation MAP@R of each trial in search order, with the best so far as a step line;
    trials stopped early (pruned) are hollow markers at the mean of the folds they ran."""
    figure = go.Figure()
    done = trials[trials["value"].notna()] if "value" in trials else trials.iloc[:0]
    pruned = trials.iloc[:0]
    if "state" in trials and "fold_mean" in trials:
        pruned = trials[(trials["state"] == "pruned") & trials["fold_mean"].notna()]
    color = loss_color(loss) if loss else None
    if not done.empty:
        figure.add_trace(
            go.Scatter(
                x=done["trial"],
                y=done["value"],
                mode="markers",
                name="trial",
                marker=dict(color=color, size=8),
                hovertemplate="trial %{x}<br>validation MAP@R %{y:.4f}<extra></extra>",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=done["trial"],
                y=done["value"].cummax(),
                mode="lines",
                name="best so far",
                line=dict(shape="hv", color=color, dash="dot"),
            )
        )
    if not pruned.empty:
        figure.add_trace(
            go.Scatter(
                x=pruned["trial"],
                y=pruned["fold_mean"],
                mode="markers",
                name="stopped early",
                marker=dict(color=color, size=8, symbol="circle-open"),
                customdata=pruned["folds"],
                hovertemplate=(
                    "trial %{x}: stopped early<br>mean over its %{customdata} fold(s) %{y:.4f}"
                    "<extra></extra>"
                ),
            )
        )
    if done.empty and pruned.empty:
        annotate_empty(figure, "no trial has been scored yet")
    figure.update_layout(
        title="Validation MAP@R per trial",
        xaxis_title="trial",
        yaxis_title="validation MAP@R (mean over folds)",
        height=340,
        margin=dict(l=10, r=10, t=80, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, title=""),
    )
    return figure


def presets_display(datasets: list[str] | None = None) -> pd.DataFrame:
    """The presets dmlviz trains with by default, one row per (dataset, loss) of ``datasets``
    (None: every dataset that ships presets): Dataset, Loss, Source, lr, Settings, then for tuned
    ones the validation MAP@R of the tuned settings and of the paper defaults, Trials, Folds and
    Tuned on (the date)."""
    from dmlviz.presets import preset_table

    rows = preset_table(tuple(datasets) if datasets is not None else None)
    columns = {
        "dataset": "Dataset",
        "loss": "Loss",
        "source": "Source",
        "lr": "lr",
        "settings": "Settings",
        "val_map@r": "Validation MAP@R",
        "paper_val_map@r": "Paper defaults' validation MAP@R",
        "budget": "Trials",
        "folds": "Folds",
        "date": "Tuned on",
    }
    frame = pd.DataFrame(rows, columns=list(columns)).rename(columns=columns)
    frame["Loss"] = frame["Loss"].map(loss_name)
    return frame


# -- reading a study ---------------------------------------------------------------------------------


def load_study(out_dir: str | Path):
    """The Optuna study stored in ``<out_dir>/study.db`` or ``<out_dir>/study.journal``
    (``ValueError`` when there is none)."""
    import optuna

    folder = Path(out_dir)
    if not any((folder / name).exists() for name in STUDY_FILES):
        raise ValueError(
            f"{folder / STUDY_DB} does not exist: run `dmlviz tune ... --out {out_dir}` first"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=None, storage=optuna_storage(study_storage(folder, None)))


def study_table(out_dir: str | Path) -> pd.DataFrame:
    """One row per trial of the study in ``out_dir``: trial, state (complete, pruned, ...), value
    (mean validation MAP@R over the folds; None for a pruned trial), folds (how many were
    scored), fold_mean (the mean over those, also for a pruned trial), confirmed (the mean over
    its search and confirmation runs, for the confirmed trials; else None), seconds, then one
    column per searched parameter (NaN where a trial lacks it)."""
    from dmlviz.experiments.tune import FOLD_SCORES, confirmed_scores

    study = load_study(out_dir)
    confirmed = confirmed_scores(study)
    rows = []
    for trial in study.trials:
        scores = trial.user_attrs.get(FOLD_SCORES, [])
        seconds = None
        if trial.datetime_start and trial.datetime_complete:
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                "value": trial.value,
                "folds": len(scores),
                "fold_mean": sum(scores) / len(scores) if scores else trial.value,
                "confirmed": _mean(confirmed.get(trial.number)),
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


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
