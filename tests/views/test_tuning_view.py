"""The Runs page's tuning section: finding studies, the best trial, the figures."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from dmlviz.runs import Run
from dmlviz.tune import study_table
from dmlviz.views.tuning import (
    best_settings,
    best_trial,
    find_studies,
    importance_figure,
    study_info,
    study_label,
    trials_display,
    trials_figure,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from fixture_runs import build_study

    return build_study(tmp_path_factory.mktemp("tuning") / "tune-digits-rll", trials=4)


def test_find_studies_skips_runs_and_trials(tmp_path):
    for name in ("a", "b/deeper"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "study.db").touch()
    (tmp_path / "a" / "trials" / "inner").mkdir(parents=True)
    (tmp_path / "a" / "trials" / "inner" / "study.db").touch()  # inside a study: not searched
    config = {"dataset": "digits", "loss": "rll", "model": "mlp", "embedding_dim": 8}
    run = Run.create(tmp_path / "run", config)
    (run.path / "nested").mkdir()
    (run.path / "nested" / "study.db").touch()
    assert find_studies(tmp_path) == [tmp_path / "a", tmp_path / "b" / "deeper"]
    assert find_studies(tmp_path / "missing") == []


def test_study_info_and_label(study, tmp_path):
    info = study_info(study)
    assert info["loss"] == "rll" and info["dataset"] == "digits"
    assert study_label(study, info) == "tune-digits-rll · Ranked List Loss on digits"
    (tmp_path / "preset.json").write_text("{oops")
    assert study_info(tmp_path) == {} and study_label(tmp_path, {}) == tmp_path.name


def test_best_trial_and_tables(study):
    trials = study_table(study)
    best = best_trial(trials)
    assert best["value"] == trials["value"].max()
    assert best["value"] == pytest.approx(
        json.loads((study / "preset.json").read_text())["val_map@r"]
    )
    assert best_settings(best).startswith("lr ") and " · margin " in best_settings(best)
    shown = trials_display(trials)
    assert list(shown.columns[:4]) == ["Trial", "State", "Validation MAP@R", "Seconds"]
    assert best_trial(trials.assign(state="fail")) is None
    assert best_trial(pd.DataFrame()) is None


def test_figures(study):
    trials = study_table(study)
    figure = trials_figure(trials, "rll")
    assert [trace.name for trace in figure.data] == ["trial", "best so far"]
    assert list(figure.data[1].y) == list(trials["value"].cummax())
    bars = importance_figure({"lr": 0.7, "margin": 0.3}, "rll")
    assert list(bars.data[0].y) == ["margin", "lr"]  # largest on top
    assert not importance_figure({}).data
