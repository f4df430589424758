"""The Runs page's tuning section: finding studies, the best trial, the figures."""

import json
import math

import pandas as pd
import pytest

from dmlviz.views.tuning import (
    best_settings,
    best_trial,
    chosen_scores,
    find_studies,
    importance_figure,
    presets_display,
    study_info,
    study_label,
    study_table,
    trials_display,
    trials_figure,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from fixture_runs import build_study

    return build_study(tmp_path_factory.mktemp("tuning") / "tune-digits-rll", trials=4)


def test_find_studies_skips_runs_and_trials(tmp_path, make_run):
    for name in ("a", "b/deeper"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "study.db").touch()
    (tmp_path / "a" / "trials" / "inner").mkdir(parents=True)
    (tmp_path / "a" / "trials" / "inner" / "study.db").touch()  # inside a study: not searched
    run = make_run(tmp_path / "run", splits=(), dim=8)
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
    searched_best = int(trials.loc[trials["value"].idxmax(), "trial"])
    assert searched_best != 0 and trials["confirmed"].notna().sum() == 2
    assert best["trial"] == 0  # the confirmation overturned the search's best
    assert trials.loc[searched_best, "confirmed"] == pytest.approx(
        trials.loc[searched_best, "value"] / 2
    )
    assert best["confirmed"] == pytest.approx(
        json.loads((study / "preset.json").read_text())["val_map@r"]
    )
    assert chosen_scores(trials, best) == (pytest.approx(best["confirmed"]), best["confirmed"])
    unconfirmed = trials.assign(confirmed=None)
    assert best_trial(unconfirmed)["trial"] == searched_best
    score, paper = chosen_scores(unconfirmed, best_trial(unconfirmed))
    assert score == trials["value"].max() and paper == trials.loc[0, "value"]
    assert best_settings(best).startswith("lr ") and " · margin " in best_settings(best)
    shown = trials_display(trials)
    assert list(shown.columns[:6]) == [
        "Trial", "State", "Validation MAP@R", "Folds scored", "With fresh seeds", "Seconds",
    ]  # fmt: skip
    assert list(shown["Folds scored"]) == [2, 2, 1, 2]
    assert (shown["Seconds"] % 1 == 0).all()  # whole seconds
    assert pd.api.types.is_float_dtype(shown["With fresh seeds"])  # blank, not "None", unretrained
    assert trials.loc[2, "state"] == "pruned" and pd.isna(trials.loc[2, "value"])
    lr, margin = trials.loc[2, "lr"], trials.loc[2, "margin"]
    first_fold = 0.8 + 0.05 * math.log10(lr) + 0.01 * margin - 0.01  # as fixture_runs scores
    assert trials.loc[2, "fold_mean"] == pytest.approx(first_fold)
    assert trials.loc[0, "fold_mean"] == pytest.approx(trials.loc[0, "value"])
    assert best_trial(trials.assign(state="fail", confirmed=None)) is None
    assert best_trial(pd.DataFrame()) is None


def test_figures(study):
    trials = study_table(study)
    figure = trials_figure(trials, "rll")
    assert [trace.name for trace in figure.data] == ["trial", "best so far", "stopped early"]
    scored = trials["value"].dropna()
    assert list(figure.data[1].y) == list(scored.cummax())
    assert list(figure.data[2].x) == [2] and figure.data[2].marker.symbol == "circle-open"
    assert list(figure.data[2].y) == [trials.loc[2, "fold_mean"]]
    empty = trials_figure(trials.iloc[:0], "rll")
    assert not empty.data and "no trial" in empty.layout.annotations[0].text
    bars = importance_figure({"lr": 0.7, "margin": 0.3}, "rll")
    assert list(bars.data[0].y) == ["margin", "lr"]  # largest on top
    assert not importance_figure({}).data


def test_presets_table_names_every_loss_and_its_source():
    table = presets_display(["digits", "omniglot"])
    assert list(table.columns[:5]) == ["Dataset", "Loss", "Source", "lr", "Settings"]
    assert len(table) == 10 and set(table["Dataset"]) == {"digits", "omniglot"}
    assert "Ranked List Loss" in set(table["Loss"])
    assert set(table["Source"]) <= {"tuned on validation", "paper defaults"}
    tuned = table[table["Source"] == "tuned on validation"]
    assert tuned["Validation MAP@R"].notna().all() and tuned["Trials"].notna().all()
    assert presets_display(["cub200"]).empty  # no presets of its own: the paper's, by loss
